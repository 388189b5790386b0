"""Model Studio: train, evaluate, compare and try models from the browser.

``store`` keeps the runs table (in the suite's database, :mod:`apps.common.database`),
``worker`` trains one run in its own process, and the pages' logic lives in ``datafiles``
(samples, uploads, reading), ``summary`` (what a data set holds), ``runconfig`` (run configs
and their starting values), ``runs`` (starting runs, curves), ``reports`` (evaluation,
worst errors, highlighting), ``artifacts`` (an artifact's spec, label fit, zip), ``inputs``
(the Try page's inputs) and ``compare`` (runs side by side); none of them imports
streamlit. The pages (``pages/``) are views over them.
"""

"""Customer-service bot: logic only (no Streamlit here), so the CLI, HTTP API and tests share it.

Understanding a message: :mod:`apps.support.understanding` (``SupportNLU``), built on
:mod:`apps.support.calibration`, :mod:`apps.support.entities`, :mod:`apps.support.sentiment`
and :mod:`apps.support.language`.
"""

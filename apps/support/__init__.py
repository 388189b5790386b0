"""Customer-service bot: logic only (no Streamlit here), so the CLI, HTTP API and tests share it.

Understanding a message: :mod:`apps.support.understanding` (``SupportNLU``), built on
:mod:`apps.support.calibration`, :mod:`apps.support.entities`, :mod:`apps.support.sentiment`
and :mod:`apps.common.language`. The conversation: :mod:`apps.support.dialogue`
(``SupportBot``), kept by :mod:`apps.support.store`, served by :mod:`apps.support.api`
(Rasa-compatible routes), driven from :mod:`apps.support.cli` (``lepton-support``) and the
page :mod:`apps.support.pages.chat`; :mod:`apps.support.analytics` counts its traffic.
"""

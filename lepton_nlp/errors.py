"""Every exception type lepton-nlp raises on purpose, in one module that imports nothing else.

Each message says what was received and how to fix it. The modules that raise these
import them from here; their old homes (``lepton_nlp.config.ConfigError``,
``lepton_nlp.data.DataError``...) re-export them, so older imports keep working.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "BackendError",
    "BatchError",
    "BatcherClosed",
    "ConfigError",
    "DataError",
    "LimitError",
    "ModelNotFoundError",
    "MultiAdapterError",
    "QueueFull",
    "UnsafePathError",
]


class ConfigError(ValueError):
    """A run configuration that cannot work; the message says which key and how to fix it."""


class DataError(ValueError):
    """A dataset file that cannot be read as asked; the message names the file and line."""


class ArtifactError(ValueError):
    """A folder that is not a complete artifact, or one that would be overwritten."""


class ModelNotFoundError(LookupError):
    """A model name that is neither a local folder, a packaged model, nor reachable on the hub."""


class BatchError(ValueError):
    """Input or output that cannot be scored as asked; the message says how to fix it."""


class BackendError(ValueError):
    """A backend that cannot run this model; the message says which ones can."""


class MultiAdapterError(ValueError):
    """Artifacts that cannot share one base model, or an unknown adapter name."""


class LimitError(ValueError):
    """Input over a size limit (text length, item count, upload size, audio duration); the
    message names the limit's setting. The HTTP API answers it with 413."""

    status_code = 413

    def __init__(self, message: str, limit: str = ""):
        super().__init__(message)
        self.limit = limit
        """The setting that was exceeded (``max_text_chars``...)."""


class UnsafePathError(ValueError):
    """A file or folder name from outside that would lead out of the folder it belongs in
    (``..``, an absolute path, a symlink pointing elsewhere)."""


class QueueFull(RuntimeError):
    """More items are waiting for this model than ``max_queue_items``; try again shortly."""


class BatcherClosed(RuntimeError):
    """The server is shutting down and takes no new work."""

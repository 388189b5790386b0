"""Speech: decoding, bad input, the VAD gate, progress, the CLI, and the CTranslate2 converter.

Fast and offline: audio is synthesized here (tones and silence, encoded with PyAV), the
recognizer is a stand-in where the test is about the plumbing, and the converter runs on a
tiny random Whisper written with CTranslate2's own model writer. The real packaged models
are exercised in tests/integration/test_speech_whisper.py.
"""

from __future__ import annotations

import io
import json
import math

import av
import numpy as np
import pytest

from lepton_nlp import speech
from lepton_nlp.cli import main
from lepton_nlp.speech import SAMPLE_RATE, Segment, SpeechError

# --- synthesized audio -------------------------------------------------------------------


def tone(seconds: float = 1.0, rate: int = SAMPLE_RATE, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def encode(path, samples: np.ndarray, rate: int, codec: str, fmt=None, layout="mono", opts=None):
    """Write ``samples`` (float32 mono at ``rate``) with PyAV's encoder ``codec``."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if opts:
            stream.codec_context.options = opts
        sample_format = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate)
        step = stream.codec_context.frame_size or 1024
        for i in range(0, len(samples), step):
            frame = av.AudioFrame.from_ndarray(
                samples[i : i + step].reshape(1, -1), format="flt", layout="mono"
            )
            frame.sample_rate = rate
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# name: (codec, container format, sample rate, channel layout, codec options)
CONTAINERS = {
    "wav": ("pcm_s16le", None, 16000, "mono", None),
    "flac": ("flac", None, 44100, "mono", None),
    "ogg": ("libopus", "ogg", 48000, "mono", None),  # ogg/opus, as Firefox records
    "webm": ("libopus", "webm", 48000, "mono", None),  # webm/opus, as Chrome records
    "mp3": ("libmp3lame", None, 44100, "mono", None),
    "m4a": ("aac", "ipod", 44100, "mono", None),  # AAC in MP4, as phones record
    "oga": ("vorbis", "ogg", 44100, "stereo", {"strict": "experimental"}),  # ogg/vorbis
}


def _has_encoder(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(samples))


@pytest.mark.parametrize("suffix", sorted(CONTAINERS))
def test_decodes_each_container_to_16k_mono(tmp_path, suffix):
    codec, fmt, rate, layout, opts = CONTAINERS[suffix]
    if not _has_encoder(codec):
        pytest.skip(f"this PyAV build has no {codec} encoder")
    path = encode(tmp_path / f"tone.{suffix}", tone(1.0, rate), rate, codec, fmt, layout, opts)
    samples = speech.decode_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    # Lossy codecs add priming samples (AAC ~1024 at 44.1 kHz): about a second, not exactly.
    assert abs(len(samples) / SAMPLE_RATE - 1.0) < 0.08
    assert abs(dominant_hz(samples) - 440) < 5
    assert 0.2 < np.abs(samples).max() < 0.4
    # The same bytes, uploaded rather than saved, and as a file object, decode the same.
    data = path.read_bytes()
    np.testing.assert_array_equal(speech.decode_audio(data), samples)
    np.testing.assert_array_equal(speech.decode_audio(io.BytesIO(data)), samples)


@pytest.mark.parametrize("suffix", ["wav", "flac", "mp3"])
def test_decoding_matches_faster_whisper(tmp_path, suffix):
    from faster_whisper import decode_audio

    codec, fmt, rate, layout, opts = CONTAINERS[suffix]
    path = encode(tmp_path / f"tone.{suffix}", tone(2.0, rate), rate, codec, fmt, layout, opts)
    np.testing.assert_array_equal(speech.decode_audio(path), decode_audio(str(path)))


def test_array_input_is_taken_as_16k_samples():
    stereo = np.stack([tone(), tone()])
    mono = speech.decode_audio(stereo)
    assert mono.shape == (SAMPLE_RATE,)
    np.testing.assert_allclose(mono, tone(), atol=1e-6)
    with pytest.raises(SpeechError, match="1-D"):
        speech.decode_audio(np.zeros((2, 2, 2)))


# --- bad input ----------------------------------------------------------------------------


@pytest.fixture
def wav(tmp_path):
    return encode(tmp_path / "tone.wav", tone(3.0), SAMPLE_RATE, "pcm_s16le")


def test_empty_input_says_nothing_arrived(tmp_path):
    with pytest.raises(SpeechError, match=r"empty \(0 bytes\).*record again"):
        speech.decode_audio(b"")
    empty = tmp_path / "empty.webm"
    empty.touch()
    with pytest.raises(SpeechError, match=r"empty.webm is empty \(0 bytes\)"):
        speech.decode_audio(empty)


def test_renamed_and_corrupt_files_are_refused_clearly(tmp_path, wav):
    renamed = tmp_path / "notes.wav"
    renamed.write_text("these are meeting notes, not audio\n" * 20)
    with pytest.raises(SpeechError, match=r"notes.wav cannot be read as audio.*renamed file"):
        speech.decode_audio(renamed)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(wav.read_bytes()[:40])  # half a RIFF header
    with pytest.raises(SpeechError, match="truncated.wav cannot be read as audio"):
        speech.decode_audio(truncated)
    noise = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    with pytest.raises(SpeechError, match=r"audio bytes \(4000 bytes\) cannot be read"):
        speech.decode_audio(noise)
    flac = encode(tmp_path / "tone.flac", tone(2.0), SAMPLE_RATE, "flac").read_bytes()
    garbled = tmp_path / "garbled.flac"  # the header survives, the frames do not
    garbled.write_bytes(flac[:120] + bytes(len(flac) - 120))
    with pytest.raises(SpeechError, match="garbled.flac .*(no decodable audio|cannot be)"):
        speech.decode_audio(garbled)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(SpeechError, match="nope.wav: no such file"):
        speech.decode_audio(tmp_path / "nope.wav")
    with pytest.raises(SpeechError, match="it is a folder"):
        speech.decode_audio(tmp_path)


def test_duration_limit_names_the_limit_and_how_to_raise_it(wav, monkeypatch):
    with pytest.raises(SpeechError, match=r"3.0 s long, over the limit of 2.0 s.*max_seconds"):
        speech.decode_audio(wav, max_seconds=2)
    with pytest.raises(speech.AudioTooLong) as too_long:  # a SpeechError an API can tell apart
        speech.decode_audio(wav, max_seconds=2)
    assert (too_long.value.seconds, too_long.value.limit) == (3.0, 2.0)
    monkeypatch.setenv("LEPTON_SPEECH_MAX_SECONDS", "1.5")
    with pytest.raises(SpeechError, match="over the limit of 1.5 s.*LEPTON_SPEECH_MAX_SECONDS"):
        speech.decode_audio(wav)
    assert len(speech.decode_audio(wav, max_seconds=3.5)) == 3 * SAMPLE_RATE
    with pytest.raises(SpeechError, match=r"11:40 min \(700 s\) long, over the limit of 10:00"):
        speech.decode_audio(np.zeros(700 * SAMPLE_RATE, np.float32), max_seconds=600)
    monkeypatch.setenv("LEPTON_SPEECH_MAX_SECONDS", "ten minutes")
    with pytest.raises(SpeechError, match="not a number of seconds"):
        speech.decode_audio(wav)


def test_stream_without_declared_duration_stops_decoding_at_the_limit(tmp_path):
    # A WebM written to a pipe (as MediaRecorder streams it) states no duration up front.
    class Pipe(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def seekable(self):
            return False

        def write(self, chunk):
            self.data += bytes(chunk)
            return len(chunk)

    pipe = Pipe()
    with av.open(pipe, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48000, layout="mono")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
        samples = tone(20.0, 48000)
        for i in range(0, len(samples), 960):
            frame = av.AudioFrame.from_ndarray(samples[i : i + 960].reshape(1, -1), "flt", "mono")
            frame.sample_rate = 48000
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    recording = bytes(pipe.data)
    with av.open(io.BytesIO(recording)) as container:
        assert container.duration is None
    with pytest.raises(speech.AudioTooLong, match="is longer than the limit of 5.0 s"):
        speech.decode_audio(recording, max_seconds=5)
    assert abs(len(speech.decode_audio(recording)) / SAMPLE_RATE - 20.0) < 0.1


# --- transcribe() with a stand-in recognizer --------------------------------------------


class Parrot:
    """A recognizer that 'hears' one fixed sentence per 30 s window, Whisper-style."""

    name = "faster-whisper"
    model = "parrot"

    def __init__(self, multilingual: bool = True, said: str = "Thank you."):
        self.multilingual, self.said, self.calls = multilingual, said, 0

    def recognize(self, audio, language, progress, beam_size):
        self.calls += 1
        duration = len(audio) / SAMPLE_RATE
        segments = []
        for start in range(0, math.ceil(duration), 30):
            end = min(start + 30.0, duration)
            segments.append(Segment(float(start), end, self.said, -0.1, 0.01))
            progress(end, duration)
        return segments, language or "en", None if language else 0.97


@pytest.fixture
def parrot(monkeypatch):
    fake = Parrot()
    monkeypatch.setitem(speech._backends, ("faster-whisper", "parrot"), fake)
    return fake


def test_silence_gives_empty_text_without_running_the_model(parrot):
    for quiet in (
        np.zeros(5 * SAMPLE_RATE, np.float32),
        (0.005 * np.random.default_rng(1).standard_normal(5 * SAMPLE_RATE)).astype(np.float32),
        tone(5.0),
    ):
        result = speech.transcribe(quiet, model="parrot")
        assert result.text == "" and result.segments == () and result.confidence == 0.0
        assert result.duration == 5.0
    assert parrot.calls == 0  # Whisper would have said "Thank you." to the silence
    # Without VAD, whatever Whisper says is kept.
    assert speech.transcribe(np.zeros(SAMPLE_RATE, np.float32), model="parrot", vad=False).text


def test_long_audio_reports_progress_window_by_window(parrot):
    calls = []
    result = speech.transcribe(
        tone(95.0), model="parrot", vad=False, progress=lambda d, t: calls.append((d, t))
    )
    assert [d for d, _ in calls] == [30.0, 60.0, 90.0, 95.0, 95.0]
    assert {t for _, t in calls} == {95.0}
    assert len(result.segments) == 4 and result.duration == 95.0


def test_openai_whisper_progress_bar_counts_mel_frames_as_seconds():
    calls = []
    bar = speech._ProgressBar(lambda d, t: calls.append(d), 95.0, total=9500)
    with bar:
        bar.update(3000)
        bar.update(6500)
    assert calls == [30.0, 95.0]


def test_transcript_fields_and_confidence(parrot):
    result = speech.transcribe(tone(2.0), model="parrot", vad=False, language=None)
    assert result.text == "Thank you." and result.language == "en"
    assert result.language_probability == 0.97  # detected, so a probability
    assert result.confidence == round(math.exp(-0.1), 4)
    assert result.backend == "faster-whisper" and result.model == "parrot"
    record = result.to_dict()
    assert json.loads(json.dumps(record))["segments"][0]["text"] == "Thank you."
    assert set(record) >= {"text", "language", "segments", "duration", "confidence"}
    given = speech.transcribe(tone(2.0), model="parrot", vad=False, language="de")
    assert given.language == "de" and given.language_probability is None
    # Confidence weighs segments by their length and stays in [0, 1].
    segments = [Segment(0, 9, "a", -0.05, 0.0), Segment(9, 10, "b", -3.0, 0.0)]
    assert speech._confidence(segments) == round(math.exp((9 * -0.05 + 1 * -3.0) / 10), 4)
    assert speech._confidence([]) == 0.0


def test_segments_outside_speech_are_dropped():
    spans = [(1.0, 4.0)]
    assert speech._overlaps(Segment(0.0, 1.5, "x", 0, 0), spans)
    assert not speech._overlaps(Segment(5.0, 8.0, "x", 0, 0), spans)


def test_bad_options_are_refused_with_the_choices(parrot, monkeypatch):
    with pytest.raises(SpeechError, match=r"backend 'whisperx'.*faster-whisper"):
        speech.transcribe(tone(), backend="whisperx")
    with pytest.raises(SpeechError, match=r"Unknown speech model 'large-v3'.*base.*tiny.en"):
        speech.model_folder("large-v3")
    with pytest.raises(SpeechError, match=r"Unknown language 'eng' \(did you mean en"):
        speech.transcribe(tone(), model="parrot", language="eng")
    monkeypatch.setitem(speech._backends, ("faster-whisper", "parrot"), Parrot(multilingual=False))
    with pytest.raises(SpeechError, match="English-only.*'fr'.*base"):
        speech.transcribe(tone(), model="parrot", language="fr")


def test_model_folder_takes_a_local_ctranslate2_folder(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"")
    assert speech.model_folder(str(tmp_path)) == tmp_path
    with pytest.raises(SpeechError, match="holds no model.bin"):
        speech.model_folder(str(tmp_path / ".."))


# --- the command line ---------------------------------------------------------------------


def test_cli_prints_text_or_json_lines_and_reports_bad_files(parrot, wav, tmp_path, capsys):
    assert main(["transcribe", str(wav), "--model", "parrot", "--no-vad"]) == 0
    assert capsys.readouterr().out == "Thank you.\n"
    bad = tmp_path / "bad.mp3"
    bad.write_text("not audio")
    code = main(["transcribe", str(wav), str(bad), "--model", "parrot", "--no-vad", "--json"])
    captured = capsys.readouterr()
    assert code == 3
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["file"] for r in lines] == [str(wav)]
    assert lines[0]["text"] == "Thank you." and lines[0]["segments"][0]["end"] == 3.0
    assert "bad.mp3 cannot be read as audio" in captured.err
    assert main(["transcribe", str(bad), "--model", "parrot"]) == 2
    assert main(["transcribe", str(wav), "--model", "parrot", "--language", "xx"]) == 2
    assert "Unknown language 'xx'" in capsys.readouterr().err
    code = main(["transcribe", str(wav), "--model", "parrot", "--max-duration", "1"])
    assert code == 2 and "over the limit of 1.0 s" in capsys.readouterr().err


# --- the converter ------------------------------------------------------------------------


def _random_whisper(n_vocab: int = 64):
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=12,
        n_audio_state=16,
        n_audio_head=2,
        n_audio_layer=2,
        n_vocab=n_vocab,
        n_text_ctx=8,
        n_text_state=16,
        n_text_head=2,
        n_text_layer=2,
    )
    torch.manual_seed(0)
    model = Whisper(dims)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.2)
    return model.eval()


def _save_as_ctranslate2(model, folder) -> None:
    """Write ``model`` with CTranslate2's own writer, fused the way its converters fuse."""
    from ctranslate2.specs import whisper_spec

    d = model.dims
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    spec = whisper_spec.WhisperSpec(d.n_audio_layer, d.n_audio_head, d.n_text_layer, d.n_text_head)

    def linear(target, name, bias=True):
        target.weight = sd[f"{name}.weight"]
        if bias:
            target.bias = sd[f"{name}.bias"]

    def norm(target, name):
        target.gamma, target.beta = sd[f"{name}.weight"], sd[f"{name}.bias"]

    def fused(target, name, parts):
        target.weight = np.concatenate([sd[f"{name}.{p}.weight"] for p in parts])
        zeros = np.zeros_like(sd[f"{name}.query.bias"])
        target.bias = np.concatenate([sd.get(f"{name}.{p}.bias", zeros) for p in parts])

    def block(target, name, cross):
        fused(target.self_attention.linear[0], f"{name}.attn", ("query", "key", "value"))
        linear(target.self_attention.linear[1], f"{name}.attn.out")
        norm(target.self_attention.layer_norm, f"{name}.attn_ln")
        if cross:
            linear(target.attention.linear[0], f"{name}.cross_attn.query")
            fused(target.attention.linear[1], f"{name}.cross_attn", ("key", "value"))
            linear(target.attention.linear[2], f"{name}.cross_attn.out")
            norm(target.attention.layer_norm, f"{name}.cross_attn_ln")
        linear(target.ffn.linear_0, f"{name}.mlp.0")
        linear(target.ffn.linear_1, f"{name}.mlp.2")
        norm(target.ffn.layer_norm, f"{name}.mlp_ln")

    linear(spec.encoder.conv1, "encoder.conv1")
    linear(spec.encoder.conv2, "encoder.conv2")
    spec.encoder.position_encodings.encodings = sd["encoder.positional_embedding"]
    for i, layer in enumerate(spec.encoder.layer):
        block(layer, f"encoder.blocks.{i}", cross=False)
    norm(spec.encoder.layer_norm, "encoder.ln_post")
    spec.decoder.embeddings.weight = sd["decoder.token_embedding.weight"]
    spec.decoder.position_encodings.encodings = sd["decoder.positional_embedding"]
    for i, layer in enumerate(spec.decoder.layer):
        block(layer, f"decoder.blocks.{i}", cross=True)
    norm(spec.decoder.layer_norm, "decoder.ln")
    spec.decoder.projection.weight = sd["decoder.token_embedding.weight"]
    spec.register_vocabulary([f"<t{i}>" for i in range(d.n_vocab)])
    spec.validate()
    spec.optimize(quantization="float16")  # as the packaged models are: fp16, tied weights aliased
    spec.save(str(folder))


def test_converter_round_trips_a_ctranslate2_whisper(tmp_path):
    import torch
    from whisper.model import ModelDimensions, Whisper

    from lepton_nlp.speech_convert import convert_to_openai_whisper, read_ctranslate2

    original = _random_whisper()
    _save_as_ctranslate2(original, tmp_path)
    spec, variables = read_ctranslate2(tmp_path / "model.bin")
    assert spec == "WhisperSpec"
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]

    path = convert_to_openai_whisper(tmp_path, tmp_path / "ckpt" / "whisper.pt")
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["dims"] == vars(original.dims)
    converted = Whisper(ModelDimensions(**checkpoint["dims"]))
    converted.load_state_dict(checkpoint["model_state_dict"], strict=True)
    expected = original.state_dict()
    for name, tensor in converted.state_dict().items():
        # fp16 storage: equal to the original rounded to half precision.
        torch.testing.assert_close(tensor, expected[name].half().float(), msg=name)
    # And it computes what the original computes (up to fp16 rounding of the weights).
    mel = torch.randn(1, 80, 24)
    tokens = torch.tensor([[1, 5, 9]])
    with torch.no_grad():
        torch.testing.assert_close(
            converted(mel, tokens), original(mel, tokens), atol=0.05, rtol=0.05
        )
    assert not list(path.parent.glob(".*tmp"))  # written atomically, no temporary left


def test_converter_refuses_what_it_cannot_read(tmp_path):
    from lepton_nlp.speech_convert import CTranslate2FormatError, read_ctranslate2

    bad = tmp_path / "model.bin"
    bad.write_bytes((9).to_bytes(4, "little") + b"\0" * 16)
    with pytest.raises(CTranslate2FormatError, match="binary version 9"):
        read_ctranslate2(bad)
    original = _random_whisper()
    _save_as_ctranslate2(original, tmp_path)
    whole = (tmp_path / "model.bin").read_bytes()
    (tmp_path / "model.bin").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CTranslate2FormatError, match="ends early"):
        read_ctranslate2(tmp_path / "model.bin")

"""Word error rate and real-time factor of speech-to-text, both backends and both models.

One run transcribes every clip of ``speech_samples`` (jfk.flac and four LibriSpeech
test-clean clips, 32 s in all, from LEPTON_DATASETS) with each (backend, model) pair through
``lepton_nlp.speech.transcribe`` with its defaults (faster-whisper: int8, 5 beams;
openai-whisper: fp32 on weights converted from the same files, greedy; language "en"; VAD on),
side by side:

- WER: word-level edit distance over all clips (errors / reference words, jiwer), after
  Whisper's English text normaliser (``whisper.normalizers.EnglishTextNormalizer``: case,
  punctuation, spelled-out numbers, British/American spellings), applied to reference and
  hypothesis alike, as Whisper's own evaluations do. Without openai-whisper installed, a
  plain one (lower case, punctuation removed) and the figures say which;
- real-time factor (RTF): seconds spent in ``transcribe`` (decoding the file, VAD and
  recognition; the model already loaded) over seconds of audio; below 1 is faster than real
  time. Each pair is warmed up on one clip, then timed over all clips in ``--repeats``
  interleaved rounds (the host's speed drifts); a pair's figure is its best round, its median
  round is recorded too. Model load times are recorded apart.

Targets: the default (faster-whisper base) at WER <= 5% and RTF <= 0.15. The machine's load
average at the start and the end is recorded: RTF measured on shared cores is pessimistic.

    python bench/speech_wer.py [--repeats 3] [--pairs faster-whisper:base,openai-whisper:tiny.en]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time

from common import datasets_root, write_result

TARGET_WER = 0.05
TARGET_RTF = 0.15
PAIRS = "faster-whisper:base,faster-whisper:tiny.en,openai-whisper:base,openai-whisper:tiny.en"


def normaliser():
    """Whisper's English normaliser, or a plain one where openai-whisper is not installed."""
    try:
        from whisper.normalizers import EnglishTextNormalizer
    except ImportError:
        return "plain", lambda text: " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())
    return "whisper-english", EnglishTextNormalizer()


def read_clips(folder) -> list[tuple[str, str, float]]:
    """(path, reference transcript, duration) per line of ``transcripts.tsv``."""
    with open(folder / "transcripts.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(str(folder / r["file"]), r["transcript"], float(r["duration_s"])) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--pairs", default=PAIRS, help="backend:model pairs, comma-separated")
    parser.add_argument("--name", default="speech_wer", help="results file name")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = datasets_root() / "speech_samples"
    load_start = os.getloadavg()

    import jiwer

    from lepton_nlp import speech

    clips = read_clips(folder)
    norm_name, normalise = normaliser()
    references = [normalise(ref) for _, ref, _ in clips]
    pairs = [tuple(p.split(":", 1)) for p in args.pairs.split(",")]
    figures: dict = {
        "clips": len(clips),
        "normaliser": norm_name,
        "threads": speech._threads(),
        "repeats": args.repeats,
    }
    for backend, model in pairs:
        started = time.perf_counter()
        speech.get_backend(backend, model)
        key = f"{backend.replace('-', '_')}_{model.replace('.', '_')}"
        figures[f"{key}_load_seconds"] = round(time.perf_counter() - started, 2)
        speech.transcribe(clips[0][0], backend=backend, model=model)  # warm-up
    outputs: dict = {}
    seconds: dict = {pair: [] for pair in pairs}
    for r in range(args.repeats):
        for pair in pairs:
            backend, model = pair
            results = [
                speech.transcribe(path, backend=backend, model=model) for path, _, _ in clips
            ]
            seconds[pair].append(sum(t.processing_seconds for t in results))
            outputs[pair] = results
            print(f"round {r + 1}: {backend} {model} {seconds[pair][-1]:.2f} s", file=sys.stderr)
    audio = sum(t.duration for t in outputs[pairs[0]])
    figures["audio_seconds"] = round(audio, 2)
    for pair in pairs:
        backend, model = pair
        key = f"{backend.replace('-', '_')}_{model.replace('.', '_')}"
        hypotheses = [normalise(t.text) for t in outputs[pair]]
        error = jiwer.wer(references, hypotheses)
        times = sorted(seconds[pair])
        figures.update(
            {
                f"{key}_wer": round(error, 4),
                f"{key}_rtf": round(times[0] / audio, 4),
                f"{key}_rtf_median_round": round(times[len(times) // 2] / audio, 4),
                f"{key}_beam_size": speech.DEFAULT_BEAM_SIZES[backend],
                f"{key}_mean_confidence": round(
                    sum(t.confidence for t in outputs[pair]) / len(clips), 4
                ),
                f"{key}_texts": [t.text for t in outputs[pair]],
            }
        )
        print(
            f"{backend} {model}: WER {100 * error:.1f}%, RTF {times[0] / audio:.3f}",
            file=sys.stderr,
        )
    default = f"{speech.DEFAULT_BACKEND.replace('-', '_')}_{speech.DEFAULT_MODEL}"
    if f"{default}_wer" in figures:
        figures["default"] = f"{speech.DEFAULT_BACKEND} {speech.DEFAULT_MODEL}"
        figures["target_wer"] = TARGET_WER
        figures["target_rtf"] = TARGET_RTF
        figures["target_wer_met"] = figures[f"{default}_wer"] <= TARGET_WER
        figures["target_rtf_met"] = figures[f"{default}_rtf"] <= TARGET_RTF
    figures["references"] = [ref for _, ref, _ in clips]
    figures["load_average_start"] = [round(x, 2) for x in load_start]
    figures["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    write_result(args.name, figures)


if __name__ == "__main__":
    main()

"""The ``lepton-nlp transcribe`` command: audio files to text (or JSON lines) on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["EXIT_BAD_AUDIO", "add_transcribe_parser", "run_transcribe"]

#: Exit status when some files could not be transcribed (the others were); 2 when none could.
EXIT_BAD_AUDIO = 3


def add_transcribe_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``transcribe`` to the ``lepton-nlp`` subcommands."""
    from lepton_nlp.speech import BACKENDS, DEFAULT_BACKEND, DEFAULT_MODEL, MODELS

    p = sub.add_parser(
        "transcribe",
        help="speech to text with Whisper (offline)",
        description="Transcribe audio files (wav, flac, mp3, m4a, ogg, webm, ...) with Whisper. "
        "Prints the text (FILE<TAB>text with several files) or, with --json, one JSON object a "
        "line: text, language, segments with times, duration, confidence. A file that cannot "
        f"be transcribed is reported on stderr and the others go on (exit {EXIT_BAD_AUDIO}; "
        "2 when none could be).",
        epilog="examples:\n  lepton-nlp transcribe call.webm\n"
        "  lepton-nlp transcribe *.flac --model tiny.en --json > transcripts.jsonl\n"
        "  lepton-nlp transcribe message.m4a --language auto --backend openai-whisper",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files ('-': standard input)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help=f"Whisper implementation (default {DEFAULT_BACKEND})",
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"{' or '.join(sorted(MODELS))} (packaged), or a faster-whisper model folder "
        f"(default {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--language",
        default="en",
        help="language code of the speech (default en); 'auto' detects it (model base)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object a line, with segments")
    p.add_argument(
        "--max-duration",
        type=float,
        metavar="SECONDS",
        help="refuse longer audio (default LEPTON_SPEECH_MAX_SECONDS or 600)",
    )
    p.add_argument("--beam-size", type=int, help="beam search width (default: the backend's)")
    p.add_argument(
        "--no-vad",
        dest="vad",
        action="store_false",
        help="do not look for speech first (Whisper may then invent text over silence)",
    )
    p.set_defaults(func=run_transcribe)
    return p


def run_transcribe(args: argparse.Namespace) -> int:
    """Transcribe each file in ``args.audio`` and print the results; returns the exit status."""
    from tqdm import tqdm

    from lepton_nlp import speech

    try:
        engine = speech.get_backend(args.backend, args.model)
        language = speech.check_language(args.language, engine)
    except speech.SpeechError as exc:
        print(f"lepton-nlp transcribe: error: {exc}", file=sys.stderr)
        return 2
    done = bad = 0
    for name in args.audio:
        audio = sys.stdin.buffer.read() if name == "-" else name
        with tqdm(
            total=1.0, unit="s", desc=name, leave=False, disable=None, file=sys.stderr
        ) as bar:

            def progress(seconds: float, total: float, bar: Any = bar) -> None:
                bar.total = round(total, 1)
                bar.n = round(seconds, 1)
                bar.refresh()

            try:
                result = speech.transcribe(
                    audio,
                    backend=args.backend,
                    model=args.model,
                    language=language,
                    progress=progress,
                    max_seconds=args.max_duration,
                    vad=args.vad,
                    beam_size=args.beam_size,
                )
            except speech.SpeechError as exc:
                bad += 1
                print(f"lepton-nlp transcribe: {exc}", file=sys.stderr)  # names the file
                continue
        done += 1
        if args.json:
            print(json.dumps({"file": name, **result.to_dict()}, ensure_ascii=False))
        elif len(args.audio) > 1:
            print(f"{name}\t{result.text}")
        else:
            print(result.text)
        sys.stdout.flush()
    if bad:
        return EXIT_BAD_AUDIO if done else 2
    return 0

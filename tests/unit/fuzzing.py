"""Shared pieces of the fuzz tests: hypothesis settings, the typed-error check, case counts.

Every fuzz test calls :func:`check` with a target name, the project's error classes the
target may raise, and a call. The call must return or raise one of those classes within
:data:`TIME_LIMIT` seconds and allocate under :data:`MEMORY_LIMIT` bytes above its input;
anything else fails the test with the input that caused it.

``LEPTON_FUZZ_EXAMPLES`` (default 25) sets how many cases each test tries; the CI default
keeps the fuzz files well under a minute. ``LEPTON_FUZZ_REPORT`` names a JSON file that
receives the per-target counts when the session ends (``bench/reliability.py`` reads it).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import string
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("LEPTON_FUZZ_EXAMPLES", "25"))
#: Seconds one call may take before it counts as a hang.
TIME_LIMIT = float(os.environ.get("LEPTON_FUZZ_TIME_LIMIT", "20"))
#: Bytes one call may allocate (Python heap) beyond its input.
MEMORY_LIMIT = 64 * 2**20

FUZZ = settings(
    max_examples=EXAMPLES,
    # One slow case on a loaded CI machine is not a bug; a hang is caught by TIME_LIMIT.
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

TRIED: Counter[str] = Counter()
FAILED: Counter[str] = Counter()


class Hang(AssertionError):
    """A call ran past :data:`TIME_LIMIT`."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang(f"the call ran past {TIME_LIMIT:g} s")


def check(
    target: str,
    allowed: tuple[type[BaseException], ...],
    call: Callable[[], Any],
    *,
    measure_memory: bool = True,
) -> Any:
    """Run ``call``: a result, or one of ``allowed`` raised, within the time and memory bounds.

    Returns:
        The call's result, or the allowed exception it raised.
    """
    TRIED[target] += 1
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    if measure_memory:
        tracemalloc.start()
    try:
        result = call()
    except allowed as exc:
        message = str(exc)
        if not message.strip():
            FAILED[target] += 1
            raise AssertionError(f"{target}: {type(exc).__name__} without a message") from exc
        return exc
    except BaseException:
        FAILED[target] += 1
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if measure_memory:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    if measure_memory and peak > MEMORY_LIMIT:
        FAILED[target] += 1
        raise AssertionError(f"{target}: allocated {peak / 2**20:.0f} MiB for one small input")
    return result


def _write_report() -> None:
    out = os.environ.get("LEPTON_FUZZ_REPORT")
    if not out or not TRIED:
        return
    path = Path(out)
    data = json.loads(path.read_text()) if path.is_file() else {}
    for target, tried in TRIED.items():
        entry = data.setdefault(target, {"cases": 0, "failures": 0})
        entry["cases"] += tried
        entry["failures"] += FAILED[target]
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


atexit.register(_write_report)


# --- strategies -----------------------------------------------------------------------------

#: JSON values of any shape, small.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

#: Text that looks like file content: printable, separators, quotes, odd unicode.
file_text = st.text(
    alphabet=st.sampled_from([*string.printable, "\u00e9", "\u2028", "\ufeff", "\x00", "@"]),
    max_size=400,
)

#: Bytes that may be anything, or text in a random encoding.
file_bytes = (
    st.binary(max_size=600)
    | file_text.map(lambda t: t.encode("utf-8"))
    | file_text.map(lambda t: t.encode("utf-16", errors="replace"))
)


@st.composite
def near_miss(draw: st.DrawFn, valid: dict) -> dict:
    """``valid`` with one field broken: replaced by any JSON value, removed, or a key added."""
    record = json.loads(json.dumps(valid))
    how = draw(st.sampled_from(["replace", "remove", "add"]))
    key = draw(st.sampled_from(sorted(record)))
    if how == "replace":
        record[key] = draw(json_values)
    elif how == "remove":
        del record[key]
    else:
        record[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    return record


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` truncated, with bytes flipped, or with bytes inserted."""
    how = draw(st.sampled_from(["truncate", "flip", "insert"]))
    if how == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    blob = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, max(len(blob) - 1, 0)))
        if how == "flip" and blob:
            blob[at] = draw(st.integers(0, 255))
        else:
            blob[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(blob)

"""BlockingBatcher: the core's micro-batcher for callers on threads (the support bot's turns)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lepton_nlp.serve.batching import BlockingBatcher


class Recorder:
    """``predict`` that records each call's items and how many calls ever overlapped."""

    def __init__(self, delay: float = 0.02):
        self.delay = delay
        self.calls: list[list] = []
        self.threads: set[str] = set()
        self.active = self.most = 0
        self._lock = threading.Lock()

    def __call__(self, items: list) -> list:
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(self.delay)
            if "boom" in items:
                raise ValueError("boom is not an input")
            self.calls.append(list(items))
            self.threads.add(threading.current_thread().name)
            return [f"{x}!" for x in items]
        finally:
            with self._lock:
                self.active -= 1


def _together(n: int, fn) -> list:
    """``fn(k)`` for k in range(n), started at once on n threads; results or exceptions."""
    start = threading.Barrier(n)

    def call(k: int):
        start.wait()
        try:
            return fn(k)
        except Exception as error:  # the caller's own error is the result under test
            return error

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(call, range(n)))


def test_threads_share_calls_and_each_gets_its_own_results_in_order():
    predict = Recorder()
    batcher = BlockingBatcher("m", predict, max_batch_size=8, max_wait_ms=30)
    try:
        results = _together(16, lambda k: batcher.predict([k, k + 100]))
    finally:
        batcher.close()
    assert results == [[f"{k}!", f"{k + 100}!"] for k in range(16)]
    assert len(predict.calls) < 16  # merged, not one call per thread
    assert max(len(c) for c in predict.calls) <= 8
    assert sum(len(c) for c in predict.calls) == 32
    assert predict.most == 1  # the model never runs twice at once
    assert len(predict.threads) == 1  # and always on its own thread


def test_an_error_reaches_only_the_caller_whose_items_caused_it():
    predict = Recorder()
    batcher = BlockingBatcher("m", predict, max_batch_size=8, max_wait_ms=30)
    try:
        results = _together(4, lambda k: batcher.predict(["boom"] if k == 2 else [k]))
    finally:
        batcher.close()
    assert isinstance(results[2], ValueError) and "boom" in str(results[2])
    assert [results[k] for k in (0, 1, 3)] == [["0!"], ["1!"], ["3!"]]


def test_nothing_to_predict_calls_nothing_and_close_then_predict_starts_again():
    predict = Recorder(delay=0)
    batcher = BlockingBatcher("m", predict)
    assert batcher.predict([]) == [] and predict.calls == []
    assert batcher.predict(["a"]) == ["a!"]
    batcher.close()
    assert batcher.predict(["b"]) == ["b!"]  # fresh threads
    batcher.close()
    batcher.close()  # closing twice is harmless


def test_a_misspelt_option_fails_at_construction():
    with pytest.raises(TypeError, match="max_wait"):
        BlockingBatcher("m", Recorder(), max_wait=5)

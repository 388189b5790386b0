"""Micro-batching: merge concurrent requests to one model into one predict call.

Each model has one :class:`MicroBatcher`: requests put their items in its queue and await a
future; one worker collects queued requests until ``max_batch_size`` items or ``max_wait_ms``,
runs ``predict`` in the model's own thread (one call at a time per model, so the model never
runs twice at once), and hands each request its slice of the results. While a batch runs,
new requests pile up, so under load batches fill without waiting at all.

:class:`BlockingBatcher` offers the same to code that runs on threads rather than on an
event loop (a thread-pool web route, the support bot's turns): ``predict(items)`` blocks
until the batch holding the items has run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lepton_nlp.errors import BatcherClosed, QueueFull

__all__ = ["BatcherClosed", "BlockingBatcher", "MicroBatcher", "QueueFull"]

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    items: list[Any]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Collects items from concurrent requests into batches for one model.

    Args:
        name: the model's name (thread name, logs).
        predict: ``list of inputs -> list of dicts``, one per input, in order; runs in a
            worker thread.
        max_batch_size: most items per batch; one request larger than this runs alone.
        max_wait_ms: longest the first item of a batch waits for company.
        enabled: False runs each request on its own (still one at a time per model).
        max_queue_items: most items waiting; :meth:`submit` raises :class:`QueueFull` above it.
        on_batch: called with ``(items, requests, seconds)`` after each batch.
    """

    def __init__(
        self,
        name: str,
        predict: Callable[[list[Any]], list[dict]],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        enabled: bool = True,
        max_queue_items: int = 8192,
        on_batch: Callable[[int, int, float], None] | None = None,
    ):
        self.name = name
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = enabled
        self.max_queue_items = max_queue_items
        self.on_batch = on_batch
        self.queued_items = 0
        self._pending: collections.deque[_Pending] = collections.deque()
        self._arrived: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    async def start(self) -> None:
        """Start the worker (call from the event loop that will submit)."""
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"predict-{self.name}"
        )
        self._worker = asyncio.create_task(self._run(), name=f"batcher-{self.name}")

    async def submit(self, items: list[Any]) -> list[dict]:
        """Queue ``items`` and wait for their predictions (in order).

        Raises:
            QueueFull: too many items already waiting for this model.
            BatcherClosed: the server is shutting down.
            Exception: whatever ``predict`` raised for these items.
        """
        if self._closing or self._worker is None:
            raise BatcherClosed(f"model {self.name!r} is shutting down")
        if self.queued_items + len(items) > self.max_queue_items:
            raise QueueFull(
                f"{self.queued_items} items are already waiting for model {self.name!r} "
                f"(max_queue_items {self.max_queue_items})"
            )
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(list(items), future))
        self.queued_items += len(items)
        self._idle.clear()
        self._arrived.set()
        return await future

    async def close(self, timeout: float | None = None) -> None:
        """Stop taking work, finish what is queued (up to ``timeout`` s), then stop the worker."""
        self._closing = True
        if self._worker is None:
            return
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("model %s: queued work unfinished after %.0f s", self.name, timeout)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        for pending in self._pending:
            if not pending.future.done():
                pending.future.set_exception(BatcherClosed(f"model {self.name!r} shut down"))
        self._pending.clear()
        self._executor.shutdown(wait=True)
        self._worker = None

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            try:
                await self._execute(batch)
            except Exception:  # a bug here must not stop the model's worker
                log.exception("model %s: batch failed", self.name)
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(RuntimeError("internal error in batching"))
            finally:
                self.queued_items -= sum(len(p.items) for p in batch)
                if not self._pending:
                    self._idle.set()

    async def _next_batch(self) -> list[_Pending]:
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        batch = [self._pending.popleft()]
        size = len(batch[0].items)
        if not self.enabled:
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while size < self.max_batch_size:
            if self._pending:
                if size + len(self._pending[0].items) > self.max_batch_size:
                    break  # it leads the next batch
                nxt = self._pending.popleft()
                batch.append(nxt)
                size += len(nxt.items)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
        return batch

    async def _execute(self, batch: list[_Pending]) -> None:
        # A request whose client went away is not worth computing.
        live = [p for p in batch if not p.future.done()]
        if not live:
            return
        loop = asyncio.get_running_loop()
        items = [item for p in live for item in p.items]
        start = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self.predict, items)
            if len(results) != len(items):
                raise RuntimeError(
                    f"predict returned {len(results)} results for {len(items)} items"
                )
        except Exception as exc:
            if len(live) == 1:
                if not live[0].future.done():
                    live[0].future.set_exception(exc)
                return
            # One bad request must not fail the others it was batched with: run each alone.
            for pending in live:
                try:
                    alone = await loop.run_in_executor(self._executor, self.predict, pending.items)
                except Exception as single:
                    if not pending.future.done():
                        pending.future.set_exception(single)
                else:
                    if not pending.future.done():
                        pending.future.set_result(alone)
            return
        finally:
            if self.on_batch is not None:
                self.on_batch(len(items), len(live), time.perf_counter() - start)
        offset = 0
        for pending in live:
            part = results[offset : offset + len(pending.items)]
            offset += len(pending.items)
            if not pending.future.done():
                pending.future.set_result(part)


class BlockingBatcher:
    """A :class:`MicroBatcher` for callers on threads: ``predict(items)`` blocks for the results.

    Concurrent calls from several threads share one ``predict`` call, and ``predict`` only
    ever runs on the batcher's own thread, one call at a time: the model is never run twice
    at once (nor its tokenizer, which a fast tokenizer does not survive), and under load one
    batched pass replaces several single ones. The batcher's event loop runs in a daemon
    thread started on the first call (again in a forked child); the results are the
    :class:`MicroBatcher`'s, an exception of ``predict`` is raised to the callers whose items
    caused it.

    Args:
        name: the model's name (thread names, logs).
        predict: ``list of inputs -> list of outputs``, one per input, in order.
        options: :class:`MicroBatcher` keywords (``max_batch_size``, ``max_wait_ms``...).
    """

    def __init__(self, name: str, predict: Callable[[list[Any]], list[Any]], **options: Any):
        self.name = name
        self._predict = predict
        self._options = options
        MicroBatcher(name, predict, **options)  # checks the keywords now, not on first use
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._batcher: MicroBatcher | None = None
        self._pid: int | None = None

    def _started(self) -> tuple[asyncio.AbstractEventLoop, MicroBatcher]:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name=f"batcher-{self.name}", daemon=True
                )
                thread.start()
                batcher = MicroBatcher(self.name, self._predict, **self._options)
                asyncio.run_coroutine_threadsafe(batcher.start(), loop).result()
                self._loop, self._thread, self._batcher = loop, thread, batcher
                self._pid = os.getpid()
            return self._loop, self._batcher

    def predict(self, items: list[Any]) -> list[Any]:
        """The outputs for ``items``, in order, computed in a batch with other callers' items.

        Raises:
            RuntimeError: called from the batcher's own thread (from ``predict`` itself).
            QueueFull: too many items already waiting.
            Exception: whatever ``predict`` raised for these items.
        """
        items = list(items)
        if not items:
            return []
        loop, batcher = self._started()
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"BlockingBatcher {self.name!r}: predict called from its own loop.")
        return asyncio.run_coroutine_threadsafe(batcher.submit(items), loop).result()

    def close(self, timeout: float | None = None) -> None:
        """Finish what is queued (up to ``timeout`` s), then stop the threads; a later
        :meth:`predict` starts them again."""
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop = None
                return
            loop, thread = self._loop, self._thread
            asyncio.run_coroutine_threadsafe(self._batcher.close(timeout), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            self._loop = self._thread = self._batcher = None

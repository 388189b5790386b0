"""Soak a running HTTP API: concurrent clients over a weighted endpoint mix, bounded in time
and count, with per-endpoint latency, errors and the server's memory sampled throughout.

The API runs in its own process (:class:`ServerProcess` starts one on loopback and waits
for it), so what is measured is the server: its resident memory is read with psutil while
the clients run. A soak has two phases. The **warm-up** sends each endpoint once, one after another (what builds on first use is
built), then the same mix for a while
without counting latency or memory (its errors do count): models load lazily, thread pools
and caches fill, the allocator takes its working set. The **measured** phase follows; :func:`memory_growth` judges it:

- the RSS samples of the measured phase are split in thirds; the growth is the median of
  the last third minus the median of the first third (medians, so that one collection or
  one burst of large allocations at either end does not decide), in MiB;
- the least-squares slope over all measured samples (MiB per minute) and the growth per
  request (KiB) are reported beside it, to tell a steady leak from a step;
- the soak **holds** when that growth is at most ``max_growth_mib``.

A response is *ok* when its status is one the endpoint lists as ok (2xx unless told),
*expected* when it is one of the endpoint's expected refusals (a 4xx the mix provokes on
purpose, such as an empty text), and an **error** otherwise: any other status, a timeout
or a broken connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Endpoint",
    "ServerProcess",
    "SoakResult",
    "memory_growth",
    "run_soak",
]

#: A request: ``(method, path, query params or None, JSON body or None)``.
Request = tuple[str, str, Mapping[str, Any] | None, Any]


@dataclass(frozen=True)
class Endpoint:
    """One kind of request in the mix.

    Args:
        name: how the results name it.
        weight: its share of the mix (relative to the others' weights).
        build: ``n -> (method, path, params, json)``: the n-th request of this kind (n counts
            from 0 across all clients), so that bodies can vary (new senders, new articles).
        ok: statuses that count as success.
        expected: statuses the request is meant to provoke (refusals); neither ok nor error.
    """

    name: str
    weight: float
    build: Callable[[int], Request]
    ok: frozenset[int] = frozenset(range(200, 300))
    expected: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise ValueError(f"Endpoint {self.name!r}: weight must be > 0, got {self.weight}.")


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    expected: int = 0
    errors: Counter = field(default_factory=Counter)

    def figures(self) -> dict[str, Any]:
        values = sorted(self.latencies)
        if len(values) > 1:
            q = statistics.quantiles(values, n=100, method="inclusive")
            p50, p95, p99 = q[49], q[94], q[98]
        else:
            p50 = p95 = p99 = values[0] if values else 0.0
        return {
            "requests": len(values),
            "ok": self.ok,
            "expected_refusals": self.expected,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(sorted(self.errors.items())),
            "p50_ms": round(p50 * 1000, 1),
            "p95_ms": round(p95 * 1000, 1),
            "p99_ms": round(p99 * 1000, 1),
            "max_ms": round(values[-1] * 1000, 1) if values else 0.0,
        }


@dataclass
class SoakResult:
    """What one soak measured (``to_dict`` for JSON)."""

    clients: int
    warmup_seconds: float
    seconds: float
    requests: int
    errors: int
    expected_refusals: int
    endpoints: dict[str, dict[str, Any]]
    overall: dict[str, Any]
    memory: dict[str, Any]
    rss_samples: list[tuple[float, float]]
    error_examples: list[str]
    stopped_by: str
    warmup: dict[str, Any] = field(default_factory=dict)

    @property
    def held(self) -> bool:
        """No errors (warm-up included) and the memory growth within its limit."""
        return self.errors == 0 and not self.warmup.get("errors") and bool(self.memory.get("held"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "warmup_seconds": self.warmup_seconds,
            "seconds": self.seconds,
            "requests": self.requests,
            "requests_per_second": round(self.requests / self.seconds, 2) if self.seconds else 0,
            "errors": self.errors,
            "expected_refusals": self.expected_refusals,
            "stopped_by": self.stopped_by,
            "held": self.held,
            "warmup": self.warmup,
            "overall": self.overall,
            "endpoints": self.endpoints,
            "memory": self.memory,
            "rss_samples_mib": [[round(t, 1), round(m, 1)] for t, m in self.rss_samples],
            "error_examples": self.error_examples,
        }


def memory_growth(
    samples: Sequence[tuple[float, float]], requests: int, max_growth_mib: float
) -> dict[str, Any]:
    """Judge the measured phase's RSS samples (``(seconds, MiB)``) as the module docstring
    says: growth = median of the last third - median of the first third.

    Raises:
        ValueError: fewer than 6 samples (too few to split in thirds with any confidence).
    """
    if len(samples) < 6:
        raise ValueError(
            f"{len(samples)} memory samples: need at least 6; soak longer or sample more often."
        )
    third = len(samples) // 3
    early = statistics.median(m for _, m in samples[:third])
    late = statistics.median(m for _, m in samples[-third:])
    times = [t for t, _ in samples]
    values = [m for _, m in samples]
    mean_t, mean_m = statistics.fmean(times), statistics.fmean(values)
    spread = sum((t - mean_t) ** 2 for t in times)
    slope = sum((t - mean_t) * (m - mean_m) for t, m in samples) / spread * 60 if spread else 0.0
    growth = late - early
    return {
        "rule": "median RSS of the last third of the measured samples minus that of the first "
        "third, after the warm-up",
        "start_mib": round(values[0], 1),
        "early_mib": round(early, 1),
        "late_mib": round(late, 1),
        "end_mib": round(values[-1], 1),
        "peak_mib": round(max(values), 1),
        "growth_mib": round(growth, 2),
        "slope_mib_per_min": round(slope, 3),
        "growth_kib_per_request": round(growth * 1024 / requests, 3) if requests else None,
        "max_growth_mib": max_growth_mib,
        "samples": len(samples),
        "held": growth <= max_growth_mib,
    }


def _rss_mib(pid: int, children: bool) -> float:
    import psutil

    process = psutil.Process(pid)
    rss = process.memory_info().rss
    if children:
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                rss += child.memory_info().rss
    return rss / 2**20


class _Sampler(threading.Thread):
    """Reads the server's RSS every ``interval`` seconds while ``recording`` is set."""

    def __init__(self, pid: int, interval: float, children: bool):
        super().__init__(daemon=True, name="soak-rss")
        self.pid, self.interval, self.children = pid, interval, children
        self.samples: list[tuple[float, float]] = []
        self.recording = threading.Event()
        self.done = threading.Event()
        self.origin = time.monotonic()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            if self.recording.is_set():
                try:
                    rss = _rss_mib(self.pid, self.children)
                except Exception:  # the server is gone: the clients' errors will say so
                    return
                self.samples.append((time.monotonic() - self.origin, rss))


def _send(
    http: Any, endpoint: Endpoint, counters: dict[str, Any]
) -> tuple[str, str, int | None, str | None]:
    """One request of ``endpoint`` (sync client): (method, path, status, problem or None)."""
    import httpx

    method, path, params, body = endpoint.build(next(counters[endpoint.name]))
    try:
        response = http.request(method, path, params=params, json=body)
    except httpx.HTTPError as error:
        return method, path, None, f"{type(error).__name__}: {error}"
    status = response.status_code
    if status in endpoint.ok or status in endpoint.expected:
        return method, path, status, None
    return method, path, status, f"{status} {response.text[:300]}"


def _prime(
    url: str,
    endpoints: Sequence[Endpoint],
    counters: dict[str, Any],
    tallies: dict[str, _Tally],
    examples: list[str],
    headers: Mapping[str, str] | None,
    timeout: float,
) -> None:
    """Each endpoint once, one after another: what builds on first use (the apps' models)
    is built before the timed warm-up, whatever the mix's weights."""
    import httpx

    with httpx.Client(base_url=url, timeout=timeout, headers=headers) as http:
        for endpoint in endpoints:
            start = time.perf_counter()
            method, path, status, problem = _send(http, endpoint, counters)
            tally = tallies[endpoint.name]
            tally.latencies.append(time.perf_counter() - start)
            if problem is None:
                tally.ok += 1
            else:
                tally.errors[str(status) if status is not None else problem.split(":")[0]] += 1
                examples.append(f"{endpoint.name} {method} {path}: {problem}")


async def _clients(
    url: str,
    endpoints: Sequence[Endpoint],
    *,
    clients: int,
    seconds: float,
    max_requests: int | None,
    tallies: dict[str, _Tally] | None,
    counters: dict[str, Any],
    examples: list[str],
    seed: int,
    headers: Mapping[str, str] | None,
    timeout: float,
) -> int:
    """Send the mix from ``clients`` keep-alive connections until ``seconds`` pass or
    ``max_requests`` are sent; tally into ``tallies`` (None: send, do not count)."""
    import httpx

    deadline = time.monotonic() + seconds
    weights = [e.weight for e in endpoints]
    sent = itertools.count()
    total = 0

    async def client(index: int) -> None:
        nonlocal total
        rng = random.Random(seed * 1009 + index)
        async with httpx.AsyncClient(base_url=url, timeout=timeout, headers=headers) as http:
            while time.monotonic() < deadline:
                if max_requests is not None and next(sent) >= max_requests:
                    return
                endpoint = rng.choices(endpoints, weights)[0]
                method, path, params, body = endpoint.build(next(counters[endpoint.name]))
                start = time.perf_counter()
                status, problem = None, None
                try:
                    response = await http.request(method, path, params=params, json=body)
                    status = response.status_code
                    if status not in endpoint.ok and status not in endpoint.expected:
                        problem = f"{status} {response.text[:300]}"
                except httpx.HTTPError as error:
                    problem = f"{type(error).__name__}: {error}"
                elapsed = time.perf_counter() - start
                total += 1
                if tallies is None:
                    continue
                tally = tallies[endpoint.name]
                tally.latencies.append(elapsed)
                if problem is None:
                    if status in endpoint.ok:
                        tally.ok += 1
                    else:
                        tally.expected += 1
                else:
                    tally.errors[str(status) if status is not None else problem.split(":")[0]] += 1
                    if len(examples) < 20:
                        examples.append(f"{endpoint.name} {method} {path}: {problem}")

    await asyncio.gather(*(client(i) for i in range(clients)))
    return total


def run_soak(
    url: str,
    endpoints: Sequence[Endpoint],
    *,
    pid: int,
    clients: int = 4,
    seconds: float = 60.0,
    max_requests: int | None = None,
    warmup_seconds: float = 10.0,
    sample_interval: float = 0.5,
    max_growth_mib: float = 32.0,
    include_children: bool = False,
    seed: int = 0,
    headers: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> SoakResult:
    """Warm up, then soak ``url`` with the mix; see the module docstring for the rules.

    Args:
        url: the API's base URL (loopback).
        endpoints: the mix.
        pid: the server's process id, for its RSS.
        clients: concurrent keep-alive connections.
        seconds: length of the measured phase (it stops earlier at ``max_requests``).
        max_requests: most requests in the measured phase (None: no count limit).
        warmup_seconds: the warm-up's length (its requests are not counted).
        sample_interval: seconds between RSS samples.
        max_growth_mib: the memory growth the soak tolerates (see :func:`memory_growth`).
        include_children: add the RSS of the server's child processes.
        seed: the clients' random choice of endpoints.
        headers: sent with every request (e.g. an API key).
        timeout: seconds one request may take before it counts as an error.

    Raises:
        ValueError: an empty mix, or fewer than one client.
    """
    if not endpoints:
        raise ValueError("The soak needs at least one endpoint in its mix.")
    if clients < 1:
        raise ValueError(f"clients must be >= 1, got {clients}.")
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise ValueError(f"Endpoint names must be unique: {names}.")
    sampler = _Sampler(pid, sample_interval, include_children)
    sampler.start()
    tallies = {e.name: _Tally() for e in endpoints}
    # One numbering across both phases: the measured phase sends new senders and articles,
    # not the warm-up's again.
    counters = {e.name: itertools.count() for e in endpoints}
    examples: list[str] = []
    # The warm-up's answers are checked too (a model that fails to build on its first
    # requests is an error), but its latencies and memory are not the steady state's.
    warm = {e.name: _Tally() for e in endpoints}
    warm_examples: list[str] = []
    try:
        common = {"clients": clients, "counters": counters, "headers": headers, "timeout": timeout}
        if warmup_seconds > 0:
            _prime(url, endpoints, counters, warm, warm_examples, headers, timeout)
            asyncio.run(
                _clients(
                    url,
                    endpoints,
                    seconds=warmup_seconds,
                    max_requests=None,
                    tallies=warm,
                    examples=warm_examples,
                    seed=seed + 1,
                    **common,
                )
            )
        sampler.recording.set()
        start = time.monotonic()
        sent = asyncio.run(
            _clients(
                url,
                endpoints,
                seconds=seconds,
                max_requests=max_requests,
                tallies=tallies,
                examples=examples,
                seed=seed,
                **common,
            )
        )
        elapsed = time.monotonic() - start
        time.sleep(sample_interval)  # one sample after the last answer
    finally:
        sampler.done.set()
        sampler.join(timeout=5)
    everything = _Tally()
    for tally in tallies.values():
        everything.latencies += tally.latencies
        everything.ok += tally.ok
        everything.expected += tally.expected
        everything.errors.update(tally.errors)
    overall = everything.figures()
    warm_errors = Counter()
    for tally in warm.values():
        warm_errors.update(tally.errors)
    warmup = {
        "requests": sum(len(t.latencies) for t in warm.values()),
        "errors": sum(warm_errors.values()),
        "error_kinds": dict(sorted(warm_errors.items())),
        "error_examples": warm_examples,
    }
    return SoakResult(
        warmup=warmup,
        clients=clients,
        warmup_seconds=warmup_seconds,
        seconds=round(elapsed, 1),
        requests=sent,
        errors=overall["errors"],
        expected_refusals=overall["expected_refusals"],
        endpoints={e.name: {"weight": e.weight, **tallies[e.name].figures()} for e in endpoints},
        overall=overall,
        memory=memory_growth(sampler.samples, sent, max_growth_mib),
        rss_samples=sampler.samples,
        error_examples=examples,
        stopped_by="max_requests" if max_requests is not None and sent >= max_requests else "time",
    )


class ServerProcess:
    """A server command run as a child process, ready once ``ready_path`` answers 200.

    Use it as a context manager: on exit the server gets SIGTERM (a graceful drain), then
    SIGKILL after ``stop_timeout`` seconds. Its output goes to ``log``.

    Raises:
        RuntimeError: the process ended, or was not ready within ``ready_timeout`` seconds
            (the message holds the end of its log).
    """

    def __init__(
        self,
        command: Sequence[str],
        url: str,
        log: str | Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        ready_path: str = "/readyz",
        ready_timeout: float = 300.0,
        stop_timeout: float = 60.0,
    ):
        self.command, self.url, self.log = list(command), url.rstrip("/"), Path(log)
        self.env = dict(env) if env is not None else dict(os.environ)
        self.cwd, self.ready_path = cwd, ready_path
        self.ready_timeout, self.stop_timeout = ready_timeout, stop_timeout
        self.process: subprocess.Popen | None = None
        self.started_seconds: float | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not started"
        return self.process.pid

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        import httpx

        self.log.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"The server exited with code {self.process.returncode} before it was "
                        f"ready; its log ends:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                        break
                if time.monotonic() - start > self.ready_timeout:
                    raise RuntimeError(
                        f"The server was not ready within {self.ready_timeout:g} s; its log "
                        f"ends:\n{self.log_tail()}"
                    )
                time.sleep(0.3)
        except BaseException:
            self.stop()
            raise
        self.started_seconds = round(time.monotonic() - start, 1)
        return self

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=30)

    def __exit__(self, *exc: object) -> None:
        self.stop()

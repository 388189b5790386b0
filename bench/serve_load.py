"""Load test of `lepton-nlp serve` on loopback: throughput and latency with micro-batching on and off.

Starts the server itself (the shipped finance-sentiment adapter on the packaged MiniLM),
then N concurrent clients (each a keep-alive HTTP/1.1 connection) send one-headline
requests back to back for a fixed time. Once per mode (batching on, then off; with
--padded-too also batching on with padded batches): requests/s, p50/p95/p99 latency,
errors, and the server's mean micro-batch size (from /metrics).
Writes bench/results/serve_load.json.

    python bench/serve_load.py --clients 32 --seconds 60 --padded-too

Traffic goes to 127.0.0.1 only, and stops by itself after --seconds per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, latency_figures, write_result

MODEL = ROOT / "data" / "models" / "finance-sentiment"
TEXTS = ROOT / "data" / "samples" / "finance_sentiment.csv"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    port: int, batching: bool, args: argparse.Namespace, packing: bool = True
) -> subprocess.Popen:
    command = [sys.executable, "-m", "lepton_nlp.cli", "serve", "--port", str(port)]
    command += ["-m", f"finance-sentiment={MODEL}", "--torch-threads", str(args.torch_threads)]
    command += [
        "--max-batch-size",
        str(args.max_batch_size),
        "--max-wait-ms",
        str(args.max_wait_ms),
    ]
    command += ["--backend", args.backend, "--batch-size", str(args.batch_size)]
    if not batching:
        command.append("--no-batching")
    if not packing:
        command.append("--no-packing")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.torch_threads)}
    env.pop("LEPTON_NLP_API_KEYS", None)  # loopback, no keys: measure the model, not auth
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).json()
                process.backend = models["models"]["finance-sentiment"]["backend"]
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    sys.exit("server not ready after 300 s")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON: a load generator light enough to
    share two cores with the server (httpx spent about 6 ms of CPU per request here, a
    sixth of what the server itself needs per request)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode("ascii") + body)
        await self.writer.drain()
        try:
            header = await self.reader.readuntil(b"\r\n\r\n")
            status = int(header.split(b" ", 2)[1])
            length = re.search(rb"(?im)^content-length:\s*(\d+)", header)
            if length is None:
                raise ConnectionError("response without Content-Length")
            payload = await self.reader.readexactly(int(length.group(1)))
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
            await self.close()
            raise
        if re.search(rb"(?im)^connection:\s*close", header):
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def load(url: str, texts: list[str], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    host, port = url.rsplit("//", 1)[1].split(":")
    bodies = [
        json.dumps({"model": "finance-sentiment", "inputs": [text]}).encode("utf-8")
        for text in texts
    ]

    async def one_client(k: int) -> None:
        connection = _Connection(host, int(port))
        i = k
        while time.perf_counter() < deadline:
            body = bodies[i % len(bodies)]
            i += clients
            start = time.perf_counter()
            try:
                code, payload = await connection.post("/v1/classify", body)
                status = str(code) if code != 200 or b'"label"' in payload else "bad-body"
            except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
                status = type(exc).__name__
            if status == "200":
                latencies.append(time.perf_counter() - start)
            else:
                errors[status] = errors.get(status, 0) + 1
        await connection.close()

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        # Warm-up (first calls allocate buffers), not counted.
        for text in texts[:4]:
            await client.post("/v1/classify", json={"inputs": [text]})
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*[one_client(k) for k in range(clients)])
        elapsed = time.perf_counter() - started
        metrics = (await client.get("/metrics")).text

    def metric(name: str) -> float:
        match = re.search(rf'^{name}{{model="finance-sentiment"}} (\S+)$', metrics, re.M)
        return float(match.group(1)) if match else 0.0

    batches = metric("lepton_batch_size_count")
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        **latency_figures(latencies, errors),
        "mean_batch_size": round(metric("lepton_batch_size_sum") / batches, 2) if batches else 0,
        "seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10)
    parser.add_argument(
        "--backend",
        default="auto",
        help="predictor backend of the server (default: auto, as the server)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="server's forward-pass size within a micro-batch"
    )
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument(
        "--padded-too",
        action="store_true",
        help="also measure micro-batching with padded batches (the server's --no-packing)",
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600:
        sys.exit("Keep the load bounded: 1-256 clients, at most 600 s per mode.")
    with open(TEXTS, encoding="utf-8") as stream:
        texts = [row["text"] for row in csv.DictReader(stream)]

    figures: dict = {
        "model": "finance-sentiment (LoRA on all-MiniLM-L6-v2)",
        "clients": args.clients,
        "seconds_per_mode": args.seconds,
        "max_batch_size": args.max_batch_size,
        "max_wait_ms": args.max_wait_ms,
        "server_torch_threads": args.torch_threads,
        "backend": args.backend,
        "forward_batch_size": args.batch_size,
        "items_per_request": 1,
    }
    # The server's defaults (padding-free batches on) with micro-batching on and off; then,
    # to show what packing adds, micro-batching with padded batches.
    modes = [("batched", True, True), ("unbatched", False, True)]
    if args.padded_too:
        modes.append(("batched_padded", True, False))
    for mode, batching, packing in modes:
        port = _free_port()
        server = start_server(port, batching, args, packing)
        try:
            result = asyncio.run(
                load(f"http://127.0.0.1:{port}", texts, args.clients, args.seconds)
            )
        finally:
            stop_server(server)
        result["backend"] = server.backend  # what the server's backend setting resolved to
        print(mode, result, flush=True)
        figures.update({f"{mode}_{k}": v for k, v in result.items()})
    unbatched = figures["unbatched_requests_per_s"] or float("nan")
    figures["batching_speedup"] = round(figures["batched_requests_per_s"] / unbatched, 2)
    if args.padded_too:
        figures["batching_speedup_padded"] = round(
            figures["batched_padded_requests_per_s"] / unbatched, 2
        )
    figures["target_met"] = (
        figures["batched_errors"] == 0
        and figures["unbatched_errors"] == 0
        and figures["batching_speedup"] >= 2.0
    )
    write_result("serve_load", figures)


if __name__ == "__main__":
    main()

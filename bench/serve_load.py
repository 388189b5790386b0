"""Load test of `lepton-nlp serve` on loopback: throughput and latency with micro-batching on and off.

Starts the server itself (the shipped finance-sentiment adapter on the packaged MiniLM),
then N concurrent clients each send one-headline requests back to back for a fixed time.
Once per mode (batching on, then off): requests/s, p50/p95/p99 latency, errors, and the
server's mean micro-batch size (from /metrics). Writes bench/results/serve_load.json.

    python bench/serve_load.py --clients 32 --seconds 60

Traffic goes to 127.0.0.1 only, and stops by itself after --seconds per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, write_result

MODEL = ROOT / "data" / "models" / "finance-sentiment"
TEXTS = ROOT / "data" / "samples" / "finance_sentiment.csv"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, batching: bool, args: argparse.Namespace) -> subprocess.Popen:
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
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.torch_threads)}
    env.pop("LEPTON_NLP_API_KEYS", None)  # loopback, no keys: measure the model, not auth
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
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


async def load(url: str, texts: list[str], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one_client(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                body = {"model": "finance-sentiment", "inputs": [texts[i % len(texts)]]}
                i += clients
                start = time.perf_counter()
                try:
                    answer = await client.post("/v1/classify", json=body)
                    status = str(answer.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                if status == "200":
                    latencies.append(time.perf_counter() - start)
                else:
                    errors[status] = errors.get(status, 0) + 1

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

    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    batches = metric("lepton_batch_size_count")
    return {
        "requests": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": ",".join(f"{k}:{v}" for k, v in sorted(errors.items())) or "none",
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(quantiles[49] * 1000, 1),
        "p95_ms": round(quantiles[94] * 1000, 1),
        "p99_ms": round(quantiles[98] * 1000, 1),
        "mean_batch_size": round(metric("lepton_batch_size_sum") / batches, 2) if batches else 0,
        "seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10)
    parser.add_argument("--backend", default="torch", help="predictor backend of the server")
    parser.add_argument(
        "--batch-size", type=int, default=32, help="server's forward-pass size within a micro-batch"
    )
    parser.add_argument("--torch-threads", type=int, default=2)
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
    for mode, batching in (("batched", True), ("unbatched", False)):
        port = _free_port()
        server = start_server(port, batching, args)
        try:
            result = asyncio.run(
                load(f"http://127.0.0.1:{port}", texts, args.clients, args.seconds)
            )
        finally:
            stop_server(server)
        print(mode, result, flush=True)
        figures.update({f"{mode}_{k}": v for k, v in result.items()})
    unbatched = figures["unbatched_requests_per_s"] or float("nan")
    figures["batching_speedup"] = round(figures["batched_requests_per_s"] / unbatched, 2)
    figures["target_met"] = (
        figures["batched_errors"] == 0
        and figures["unbatched_errors"] == 0
        and figures["batching_speedup"] >= 2.0
    )
    write_result("serve_load", figures)


if __name__ == "__main__":
    main()

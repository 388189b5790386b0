"""Start the suite once per machine: ``python -m apps.launch`` (what ``make demo`` runs).

Prints the URL, refuses politely when the suite is already running (a pid file under
``LEPTON_HOME`` plus a port check), and runs ``streamlit run apps/suite.py`` on a loopback
address with no internet needed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

from apps.common.paths import ROOT, data_home
from apps.common.processes import pid_alive
from lepton_nlp.security import is_loopback

__all__ = ["main", "port_in_use", "running_suite"]


def port_in_use(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((address, port)) == 0


def _pid_file() -> Path:
    return data_home() / "suite.pid"


def running_suite() -> dict | None:
    """``{"pid", "url"}`` of a suite started from this LEPTON_HOME that is still alive, or None."""
    path = _pid_file()
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not pid_alive(info.get("pid")):
        path.unlink(missing_ok=True)  # left behind by a suite that has ended
        return None
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start the lepton-nlp suite (Streamlit).")
    parser.add_argument("--address", default=os.environ.get("LEPTON_ADDRESS", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LEPTON_PORT", "8501")))
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow an address beyond loopback: the suite has no login, so anyone who reaches "
        "it can train, read the files it can read and see every conversation",
    )
    args = parser.parse_args(argv)
    url = f"http://{args.address}:{args.port}"
    if not is_loopback(args.address) and not args.insecure:
        print(
            f"Refusing to serve the suite on {args.address}: it has no login, and its pages read "
            "files on this machine, start training runs and show customers' conversations, to "
            "anyone who can reach that address. Use 127.0.0.1 (the default) and reach it "
            "through an SSH tunnel or an authenticating proxy; or pass --insecure if the "
            "network is yours alone (docs/security.md)."
        )
        return 2

    running = running_suite()
    if running:
        print(f"lepton-nlp suite is already running at {running['url']} (pid {running['pid']}).")
        print("Open that address, or stop that process first to start a new one.")
        return 0
    if port_in_use(args.address, args.port):
        print(
            f"Port {args.port} on {args.address} is taken by another program, so the suite cannot "
            f"start there. Choose another port: make demo PORT={args.port + 1} "
            f"(or python -m apps.launch --port {args.port + 1})."
        )
        return 1

    _pid_file().write_text(json.dumps({"pid": os.getpid(), "url": url}), encoding="utf-8")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    print(f"lepton-nlp suite: {url}  (data in {data_home()}; Ctrl+C stops it)", flush=True)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "apps" / "suite.py"),
        "--server.address",
        args.address,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.maxUploadSize",
        "200",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
    ]
    # The same process becomes the server, so the pid file names it for as long as it runs.
    os.chdir(ROOT)
    os.execv(sys.executable, command)
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())

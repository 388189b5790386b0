"""`serve` subcommands of the applications' CLIs: the core server with the app's routes mounted.

``lepton-support serve`` and ``lepton-finance serve`` are ``lepton-nlp serve --routes ...``
with one route module fixed: the same options (settings file, address, API keys,
``--insecure``), the same security rules, one implementation.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_serve_arguments", "serve_routes"]


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of an application's ``serve`` subcommand (unset ones leave the settings
    file's, then the server's defaults: 127.0.0.1:8000)."""
    parser.add_argument("--config", help="lepton-nlp serve YAML (models, limits, api key file)")
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument("--api-key-file", help="file with one API key per line")
    parser.add_argument(
        "--insecure",
        action="store_const",
        const=True,
        help="allow binding beyond loopback without API keys (see docs/security.md)",
    )


def serve_routes(args: argparse.Namespace, routes: str, prog: str, endpoints: str) -> int:
    """Run the core server with ``routes`` (``module:router``) mounted, as ``args`` say.

    Args:
        args: parsed options from :func:`add_serve_arguments`.
        routes: the application's router, e.g. ``"apps.support.api:router"``.
        prog: the command's name, for the banner.
        endpoints: the main endpoints, for the banner.
    """
    import lepton_nlp.serve as serve  # looked up at call time, so tests can stand in run_server

    overrides: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "api_key_file": args.api_key_file,
        "insecure": args.insecure,
        "routes": [routes],
        "log_level": "info",
    }
    settings = serve.load_serve_settings(args.config, overrides)
    if routes not in settings.routes:
        settings.routes.append(routes)
    print(
        f"{prog} serve: http://{settings.host}:{settings.port} ({endpoints}; OpenAPI at /docs)",
        file=sys.stderr,
    )
    serve.run_server(settings)
    return 0

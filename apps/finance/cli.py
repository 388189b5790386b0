"""The ``lepton-finance`` command: score news feeds into the database, list alerts, export.

lepton-finance score data/finance/sample_feed --db sqlite:///finance.db --aliases data/finance/aliases.yaml
lepton-finance score FEED_URL more.jsonl --engine ray --batch-size 64
lepton-finance alerts --db sqlite:///finance.db --kind sentiment_shift
lepton-finance export --what series --format csv -o series.csv --db sqlite:///finance.db
lepton-finance export --what graph --format html -o graph.html --db sqlite:///finance.db
lepton-finance serve --port 8000                # lepton-nlp's server + apps.finance.api

A run scores only what the database does not hold yet, committing each batch of articles
with its scores in one transaction: re-running it, or running it again after it was
killed, neither loses nor doubles an article. Exit status: 0 done, 1 a problem reported on
standard error, 2 a usage error.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from lepton_nlp.serve.launch import add_serve_arguments

__all__ = ["EXPORTS", "main"]

ROUTES = "apps.finance.api:router"
EXPORTS = {
    "articles": ("parquet", "csv", "jsonl"),
    "series": ("parquet", "csv", "jsonl"),
    "alerts": ("parquet", "csv", "jsonl"),
    "graph": ("graphml", "json", "html"),
}


def _monitor(args: argparse.Namespace, need_scorer: bool = True) -> Any:
    from apps.finance.alerts import AlertConfig
    from apps.finance.ingest import IngestConfig
    from apps.finance.monitor import FinanceMonitor, default_scorer, load_scorer_factory

    alert_config = AlertConfig.from_file(args.alerts_config) if args.alerts_config else None
    if getattr(args, "webhook", None):
        alert_config = AlertConfig.from_dict(
            {**_fields(alert_config or AlertConfig()), "webhook_url": args.webhook}
        )
    ingest = None
    if getattr(args, "timeout", None) is not None:
        ingest = IngestConfig(timeout=args.timeout)
    factory = None
    if need_scorer and args.scorer:
        factory = load_scorer_factory(args.scorer)
    elif need_scorer and args.pipeline_config:
        factory = functools.partial(default_scorer, args.pipeline_config)
    return FinanceMonitor(
        args.db,
        factory,
        aliases=args.aliases,
        graph_path=args.graph,
        alert_config=alert_config,
        ingest_config=ingest,
    )


def _fields(config: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


class _Bar:
    """A tqdm bar over the articles to score, made when their number is known."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="article", desc="scoring", file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _cmd_score(args: argparse.Namespace) -> int:
    monitor = _monitor(args)
    ray_options = {}
    if args.engine == "ray":
        ray_options = {"actors": args.actors, "cpus_per_actor": args.cpus_per_actor}
        if args.ray_address:
            ray_options["address"] = args.ray_address
    bar = _Bar(not args.no_progress)
    try:
        summary = monitor.run(
            args.feeds,
            batch_size=args.batch_size,
            engine=args.engine,
            progress=bar,
            ray_options=ray_options,
        )
    finally:
        bar.close()
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary.text())
    if args.show_problems and summary.problems:
        print("skipped:", *summary.problems, sep="\n  ", file=sys.stderr)
    return 0


def _cmd_alerts(args: argparse.Namespace) -> int:
    from apps.finance.store import FinanceStore

    store = FinanceStore(args.db)
    alerts = store.alerts(kind=args.kind, entity=args.entity, since=args.since, limit=args.limit)
    if args.json:
        print(json.dumps([a.to_dict() for a in alerts], indent=2, ensure_ascii=False))
        return 0
    if not alerts:
        print("no alerts")
    for alert in alerts:
        hook = f" [webhook {alert.webhook}]" if alert.webhook else ""
        print(f"{alert.day}  {alert.kind:<15} {alert.message}{hook}")
    return 0


def _rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    from apps.finance.alerts import series_table

    if args.what == "articles":
        from apps.finance.store import FinanceStore

        return FinanceStore(args.db).articles_table()
    if args.what == "alerts":
        from apps.finance.store import FinanceStore

        rows = []
        for alert in FinanceStore(args.db).alerts():
            data = alert.to_dict()
            data["details"] = json.dumps(data["details"], ensure_ascii=False, sort_keys=True)
            rows.append(data)
        return rows
    monitor = _monitor(args, need_scorer=False)
    return series_table(monitor.graph.kg, args.types.split(","))


def _write_table(rows: list[dict[str, Any]], path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as stream:
            for row in rows:
                stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    import pyarrow as pa

    table = pa.Table.from_pylist(rows)
    if fmt == "parquet":
        from pyarrow import parquet

        parquet.write_table(table, path)
    else:
        from pyarrow import csv

        csv.write_csv(table, path)


def _cmd_export(args: argparse.Namespace) -> int:
    formats = EXPORTS[args.what]
    fmt = args.format or formats[0]
    if fmt not in formats:
        print(
            f"lepton-finance export: --what {args.what} is written as {', '.join(formats)}, "
            f"not {fmt}",
            file=sys.stderr,
        )
        return 2
    out = Path(args.output)
    if args.what == "graph":
        from apps.finance.graph import export_graph

        monitor = _monitor(args, need_scorer=False)
        export_graph(monitor.graph.kg, out, fmt)
        graph = monitor.graph.kg.graph
        print(f"wrote {out} ({graph.number_of_nodes()} entities, {graph.number_of_edges()} edges)")
        return 0
    rows = _rows(args)
    _write_table(rows, out, fmt)
    print(f"wrote {out} ({len(rows)} rows)")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from lepton_nlp.serve.launch import serve_routes

    return serve_routes(
        args, ROUTES, "lepton-finance", "/finance/score, /finance/alerts, /finance/entities/..."
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lepton-finance", description=__doc__.split("\n")[0], epilog=__doc__
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--db", help="database URL (default: LEPTON_DB_URL, else SQLite under LEPTON_HOME)"
        )

    def graph_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--aliases", help="alias table (YAML: names, aliases, tickers)")
        p.add_argument("--graph", help="graph file (default: beside the SQLite database)")
        p.add_argument("--alerts-config", help="YAML of alert thresholds (AlertConfig keys)")

    p = sub.add_parser("score", help="score feeds into the database, then raise alerts")
    p.add_argument("feeds", nargs="+", metavar="FEED", help="file, folder or http(s) feed URL")
    common(p)
    graph_options(p)
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--batch-size", type=int, default=64, help="articles per batch (and commit)")
    p.add_argument("--actors", type=int, default=1, help="ray: scorer actors")
    p.add_argument("--cpus-per-actor", type=float, default=1, help="ray: CPUs per actor")
    p.add_argument("--ray-address", help="ray: cluster address (default: this machine)")
    p.add_argument("--webhook", help="POST each new alert to this URL as JSON")
    p.add_argument("--timeout", type=float, help="seconds to wait for a feed URL (default 10)")
    p.add_argument(
        "--scorer",
        help="MODULE:CALLABLE returning the scorer (default: apps.finance.pipeline's models)",
    )
    p.add_argument(
        "--pipeline-config", help="YAML of scoring pipeline settings (FinancePipelineConfig keys)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--show-problems", action="store_true", help="list what was skipped and why")
    p.set_defaults(run=_cmd_score)

    p = sub.add_parser("alerts", help="list stored alerts, newest first")
    common(p)
    p.add_argument("--kind", choices=["sentiment_shift", "volume_spike", "new_relation"])
    p.add_argument("--entity", help="entity id (e.g. org:falconer-biotech)")
    p.add_argument("--since", help="first day, YYYY-MM-DD")
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_cmd_alerts)

    p = sub.add_parser("export", help="write articles, entity series, alerts or the graph")
    common(p)
    graph_options(p)
    p.add_argument("--what", choices=sorted(EXPORTS), required=True)
    p.add_argument(
        "--format",
        choices=sorted({f for fs in EXPORTS.values() for f in fs}),
        help="default: parquet for tables, graphml for the graph",
    )
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--types", default="ORG", help="series: entity types, comma-separated")
    p.set_defaults(run=_cmd_export)

    p = sub.add_parser("serve", help="HTTP API (lepton-nlp serve with the finance routes)")
    add_serve_arguments(p)
    p.set_defaults(run=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from apps.common.database import StoreError
    from kg import KgError
    from lepton_nlp.errors import BatchError

    try:
        if getattr(args, "batch_size", 1) < 1:
            raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
        return args.run(args)
    except (StoreError, KgError, BatchError, ValueError, FileNotFoundError) as error:
        print(f"lepton-finance {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``lepton-rec`` command: train, evaluate, recommend, find similar items.

lepton-rec train --out runs/rec                      # the demo catalogue and events, hybrid
lepton-rec train --movielens ../shared/datasets/movielens_100k --model als --out runs/ml-als
lepton-rec train --finance-db sqlite:///finance.db --events reads.jsonl --out runs/news
lepton-rec evaluate --movielens ../shared/datasets/movielens_100k   # every model, one table
lepton-rec recommend runs/rec --user u1              # explained top 10 (events in the DB count)
lepton-rec recommend runs/rec --user newbie --interest "space exploration"
lepton-rec similar runs/rec --item demo-042
lepton-nlp serve --routes apps.recommender.api:router   # the HTTP API (LEPTON_REC_MODEL=runs/rec)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from apps.recommender.demo import DEMO_CATALOGUE, DEMO_EVENTS
from apps.recommender.errors import RecommenderError

__all__ = ["DEMO_CATALOGUE", "DEMO_EVENTS", "load_sources", "main"]


def _say(message: str) -> None:
    print(f"[lepton-rec] {message}", file=sys.stderr, flush=True)


def _settings(pairs: list[str]) -> dict[str, Any]:
    """``--set key=value`` (dotted keys nest: ``cf_config.factors=32``), values read as YAML."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise RecommenderError(f"--set {pair!r}: write it as KEY=VALUE, e.g. factors=32.")
        key, value = pair.split("=", 1)
        node = out
        *parents, last = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    return out


def load_sources(args: argparse.Namespace) -> tuple[Any, Any, dict[str, dict[str, Any]]]:
    """(catalogue, events, user profiles) from --movielens, or --catalogue/--events/--users,
    or the shipped demo files."""
    from apps.recommender.catalogue import load_catalogue
    from apps.recommender.interactions import load_interactions
    from apps.recommender.users import load_users

    if getattr(args, "finance_db", None):
        if args.movielens or args.catalogue:
            raise RecommenderError("Give one catalogue: --finance-db, --catalogue or --movielens.")
        from apps.recommender.articles import catalogue_from_finance

        if not args.events:
            raise RecommenderError(
                "Give the reading history too (--events FILE: user_id, item_id = article id)."
            )
        users = load_users(args.users) if args.users else {}
        return catalogue_from_finance(args.finance_db), load_interactions(args.events), users
    if args.movielens:
        from apps.recommender.movielens import load_movielens

        ml = load_movielens(args.movielens)
        return ml.catalogue, ml.interactions, ml.users
    catalogue = load_catalogue(args.catalogue or DEMO_CATALOGUE)
    events_path = args.events or (DEMO_EVENTS if not args.catalogue else None)
    if events_path is None:
        raise RecommenderError(
            "Give the events file too (--events FILE): user behaviour to learn from."
        )
    users = load_users(args.users) if args.users else {}
    return catalogue, load_interactions(events_path), users


def _cmd_train(args: argparse.Namespace) -> int:
    from apps.recommender.service import train_recommender

    catalogue, events, users = load_sources(args)
    config = _settings(args.set)
    if args.tune:
        from apps.recommender.experiment import MODEL_ORDER, run_experiment

        needed = [
            m
            for m in MODEL_ORDER
            if m == args.model or (args.model == "hybrid" and m in ("content", "als", "bpr"))
        ]
        _say(f"tuning {args.model} on a validation split carved from the training part")
        found = run_experiment(
            catalogue,
            events,
            models=needed,
            configs={args.model: config},
            threads=args.threads,
            progress=_say,
        )
        config = {**found["results"][args.model]["config"], **config}
    if args.model in ("als", "bpr"):
        config.setdefault("threads", args.threads)
    train_recommender(
        catalogue,
        events,
        args.out,
        model=args.model,
        config=config,
        weighting=args.weighting,
        unknown="drop" if args.drop_unknown else "error",
        rating_range=tuple(args.rating_range),
        users=users,
        overwrite=args.overwrite,
        progress=_say,
    )
    print(str(args.out))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from apps.recommender.evaluation import format_table
    from apps.recommender.experiment import MODEL_ORDER, run_experiment

    catalogue, events, _ = load_sources(args)
    models = [m.strip() for m in args.models.split(",")] if args.models else list(MODEL_ORDER)
    found = run_experiment(
        catalogue,
        events,
        models=models,
        k=args.k,
        ratio=args.ratio,
        seed=args.seed,
        tune=not args.no_tune,
        threads=args.threads,
        mmr=args.mmr,
        progress=_say,
    )
    k = args.k
    columns = [f"precision@{k}", f"recall@{k}", f"ndcg@{k}", f"map@{k}", "coverage", "novelty"]
    if any("diversity" in row for row in found["results"].values()):
        columns.append("diversity")
    print(format_table(found["results"], columns))
    if args.json:
        Path(args.json).write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
        _say(f"wrote {args.json}")
    return 0


def _service(args: argparse.Namespace) -> Any:
    from apps.recommender.service import TrainedRecommender

    store = None
    if not args.no_db:
        from apps.recommender.store import RecommenderStore

        store = RecommenderStore(args.db)
    return TrainedRecommender(args.folder, store=store)


def _print(recommendations: list, as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.to_dict() for r in recommendations], indent=2))
        return
    for n, r in enumerate(recommendations, 1):
        print(f"{n:>2}. {r.title or r.item} [{r.item}]  score {r.score:.3f}")
        print(f"    why: {r.why}")


def _cmd_recommend(args: argparse.Namespace) -> int:
    service = _service(args)
    if args.interest and service.store is not None:
        service.store.set_profile(args.user, interests=args.interest)
    found = service.recommend(
        args.user, args.k, interests=args.interest or None, history=args.history or ()
    )
    _print(found, args.json)
    return 0


def _cmd_similar(args: argparse.Namespace) -> int:
    _print(_service(args).similar(args.item, args.k), args.json)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lepton-rec", description=__doc__.split("\n")[0], epilog=__doc__
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="command", required=True)

    def sources(p: argparse.ArgumentParser) -> None:
        p.add_argument("--movielens", help="MovieLens 100K folder (u.data, u.item, u.user)")
        p.add_argument("--catalogue", help="items: CSV, JSONL, JSON or Parquet (default: the demo)")
        p.add_argument(
            "--finance-db",
            metavar="URL",
            help="the finance monitor's scored articles as the catalogue (its database URL)",
        )
        p.add_argument("--events", help="events: user, item, kind, rating, timestamp")
        p.add_argument("--users", help="user profiles: user, interests, attributes")
        p.add_argument("--threads", type=int, default=0, help="implicit's threads (0: all cores)")

    p = sub.add_parser("train", help="fit a model and save it as a folder")
    sources(p)
    p.add_argument("--model", default="hybrid", help="popularity, content, als, bpr or hybrid")
    p.add_argument("--out", required=True, type=Path, help="the folder to write")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a model setting (repeat)")
    p.add_argument(
        "--tune", action="store_true", help="choose settings on a validation split first"
    )
    p.add_argument("--weighting", default="binary", choices=["binary", "kind"])
    p.add_argument(
        "--drop-unknown", action="store_true", help="drop events on items not in the catalogue"
    )
    p.add_argument(
        "--rating-range", nargs=2, type=float, default=[1.0, 5.0], metavar=("LOW", "HIGH")
    )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score every model on one split; print the table")
    sources(p)
    p.add_argument("--models", help="comma-separated (default: popularity,content,als,bpr,hybrid)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--ratio", type=float, default=0.75, help="training share per user")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-tune", action="store_true", help="default settings, no validation split")
    p.add_argument("--mmr", type=float, help="also the hybrid diversified by MMR at this lambda")
    p.add_argument("--json", help="also write the full results here")
    p.set_defaults(func=_cmd_evaluate)

    def served(p: argparse.ArgumentParser) -> None:
        p.add_argument("folder", help="a folder written by lepton-rec train")
        p.add_argument("--k", type=int, default=10)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument(
            "--db", help="database URL (default: LEPTON_DB_URL or SQLite under LEPTON_HOME)"
        )
        p.add_argument("--no-db", action="store_true", help="ignore stored events and profiles")

    p = sub.add_parser("recommend", help="a user's top k, with reasons")
    served(p)
    p.add_argument("--user", required=True, help="user id (a new id is a cold start)")
    p.add_argument(
        "--interest", action="append", help="a stated interest (repeat); saved to the profile"
    )
    p.add_argument("--history", action="append", help="an item id the user just touched (repeat)")
    p.set_defaults(func=_cmd_recommend)

    p = sub.add_parser("similar", help="items like one item")
    served(p)
    p.add_argument("--item", required=True)
    p.set_defaults(func=_cmd_similar)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (RecommenderError, RuntimeError, ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"lepton-rec: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

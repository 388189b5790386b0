"""One monitoring run: ingest -> skip what is stored -> score in batches -> store -> graph -> alerts.

:class:`FinanceMonitor` is what ``lepton-finance score``, the HTTP API and the page share.
Each batch of articles is scored, then committed with its scores in one transaction, then
added to the graph; a run killed at any point leaves whole batches stored and nothing
half-written, and the next run scores only what is missing (exactly-once). Alerts are
computed from the graph at the end and stored once each (by key), so they too survive a
kill: the next run raises what the killed one did not get to.
"""

from __future__ import annotations

import functools
import importlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from apps.finance.alerts import Alert, AlertConfig, detect_alerts, post_webhook
from apps.finance.graph import Aliases, FinanceGraph, default_graph_path
from apps.finance.ingest import Deduplicator, IngestConfig, IngestReport, iter_articles
from apps.finance.records import NewsArticle, ScoredArticle
from apps.finance.store import FinanceStore

__all__ = [
    "ENGINES",
    "FinanceMonitor",
    "RunSummary",
    "Scorer",
    "ScorerFactory",
    "default_scorer",
    "load_scorer_factory",
]

ENGINES = ("local", "ray")
STAGES = ("ingest", "dedupe", "load", "score", "store", "graph", "alerts")


class _Clock:
    """Wall and CPU seconds per stage (CPU: this process, all its threads; Ray actors' time
    is not in it)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] += time.perf_counter() - wall
            self.cpu[name] += time.process_time() - cpu

    def fill(self, summary: RunSummary, started: float) -> None:
        summary.seconds = time.perf_counter() - started
        summary.stage_seconds = {k: round(v, 3) for k, v in self.wall.items()}
        summary.stage_cpu_seconds = {k: round(v, 3) for k, v in self.cpu.items()}


class Scorer(Protocol):
    """What scores articles: :class:`apps.finance.pipeline.FinancePipeline`."""

    model_versions: dict[str, str]

    def score(
        self, articles: list[NewsArticle], progress: Callable[..., Any] | None = None
    ) -> list[ScoredArticle]: ...


ScorerFactory = Callable[[], Scorer]
"""A picklable zero-argument callable returning a :class:`Scorer` (the Ray engine calls it in
each actor)."""


def default_scorer(config: str | Path | dict[str, Any] | None = None) -> Scorer:
    """The scoring pipeline: default (shipped) models, or the settings of a YAML file or
    mapping of :class:`apps.finance.pipeline.FinancePipelineConfig` keys (a ``pipeline:``
    section, or the keys at the top)."""
    from apps.finance.pipeline import FinancePipeline, FinancePipelineConfig
    from lepton_nlp.config import read_yaml_file

    if isinstance(config, str | Path):
        tree = read_yaml_file(config, "Pipeline config")
        config = tree.get("pipeline", tree)
    return FinancePipeline(FinancePipelineConfig.from_dict(config))


def load_scorer_factory(spec: str) -> ScorerFactory:
    """``module:attribute`` naming a zero-argument callable that returns a :class:`Scorer`.

    Raises:
        ValueError: the spec is malformed or names nothing importable.
    """
    module, _, attribute = spec.partition(":")
    if not module or not attribute:
        raise ValueError(f"scorer {spec!r}: write it as MODULE:CALLABLE (e.g. mypkg.scoring:make)")
    try:
        target = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"scorer {spec!r} cannot be loaded: {error}") from None
    if not callable(target):
        raise ValueError(f"scorer {spec!r} is not callable")
    return target


@dataclass
class RunSummary:
    """What a run did; ``to_dict`` is what the runs table and ``--json`` keep."""

    run_id: int | None = None
    sources: list[str] = field(default_factory=list)
    read: int = 0
    new: int = 0
    duplicates: dict[str, int] = field(default_factory=dict)
    """In-feed duplicates (``duplicate_id``...) and ones stored before (``stored``...)."""
    skipped: dict[str, int] = field(default_factory=dict)
    partial: dict[str, int] = field(default_factory=dict)
    sentences: int = 0
    mentions: int = 0
    relations: int = 0
    entities: int = 0
    """Entities in the graph after the run."""
    alerts: int = 0
    alert_messages: list[str] = field(default_factory=list)
    webhook_failures: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU seconds of this process per stage (a busy machine slows the wall clock, not this)."""
    graph_path: str = ""
    engine: str = "local"
    model_versions: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def articles_per_second(self) -> float:
        return self.new / self.seconds if self.seconds else 0.0

    @property
    def sentences_per_second(self) -> float:
        return self.sentences / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["articles_per_second"] = round(self.articles_per_second, 3)
        data["sentences_per_second"] = round(self.sentences_per_second, 3)
        return data

    def text(self) -> str:
        """The summary a person reads at the end of a run."""

        def by_reason(counts: dict[str, int]) -> str:
            total = sum(counts.values())
            if not total:
                return "0"
            return f"{total} (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")"

        lines = [
            f"articles: {self.read} read, {self.new} new, duplicate {by_reason(self.duplicates)}, "
            f"skipped {by_reason(self.skipped)}",
        ]
        if self.partial:
            lines.append(f"processed in part: {by_reason(self.partial)}")
        lines.append(
            f"found: {self.sentences} sentences, {self.mentions} entity mentions, "
            f"{self.relations} relations; graph: {self.entities} entities"
        )
        alerts = f"alerts: {self.alerts} new"
        if self.webhook_failures:
            alerts += f" ({self.webhook_failures} webhook deliveries failed)"
        lines.append(alerts)
        lines += [f"  {m}" for m in self.alert_messages[:10]]
        if len(self.alert_messages) > 10:
            lines.append(f"  ... and {len(self.alert_messages) - 10} more (lepton-finance alerts)")
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stage_seconds.items() if v >= 0.05)
        lines.append(
            f"time: {self.seconds:.1f} s ({stages}); {self.articles_per_second:.1f} articles/s, "
            f"{self.sentences_per_second:.1f} sentences/s ({self.engine} engine)"
        )
        if self.graph_path:
            lines.append(f"graph: {self.graph_path}")
        return "\n".join(lines)


class FinanceMonitor:
    """Store, graph, alerts and (loaded on first need) the scorer, for one database.

    Args:
        store: the database (a :class:`FinanceStore`, or a URL for one).
        scorer_factory: builds the scorer when a run has something new to score (default
            :func:`default_scorer`).
        aliases: the alias table for entity resolution (a YAML path, a mapping...).
        graph_path: where the graph is saved (default beside the database).
        alert_config: thresholds and webhook.
        ingest_config: how feeds are read.
    """

    def __init__(
        self,
        store: FinanceStore | str | None = None,
        scorer_factory: ScorerFactory | None = None,
        *,
        aliases: Aliases = None,
        graph_path: str | Path | None = None,
        alert_config: AlertConfig | None = None,
        ingest_config: IngestConfig | None = None,
    ):
        self.store = store if isinstance(store, FinanceStore) else FinanceStore(store)
        self.scorer_factory = scorer_factory or default_scorer
        self.graph = FinanceGraph(
            self.store.extractions, graph_path or default_graph_path(self.store.url), aliases
        )
        self.alert_config = alert_config or AlertConfig()
        self.ingest_config = ingest_config or IngestConfig()
        self._scorer: Scorer | None = None

    @property
    def scorer(self) -> Scorer:
        """The scorer, built once."""
        if self._scorer is None:
            self._scorer = self.scorer_factory()
        return self._scorer

    def run(
        self,
        sources: Sequence[str | Path],
        *,
        batch_size: int = 32,
        engine: str = "local",
        progress: Callable[[int, int], None] | None = None,
        ray_options: dict[str, Any] | None = None,
    ) -> RunSummary:
        """Read ``sources`` and process what is new (see the module docstring).

        Args:
            sources: files, folders or feed URLs (:func:`apps.finance.ingest.iter_articles`).
            batch_size: articles scored together and committed in one transaction.
            engine: ``local`` (this process) or ``ray`` (the core's batch engine,
                :func:`lepton_nlp.batch.score_ray`; ``ray_options`` go to it).
            progress: called as ``progress(done, total)`` after each committed batch.
        """
        clock = _Clock()
        start = time.perf_counter()
        summary = RunSummary(sources=[str(s) for s in sources], engine=engine)
        summary.run_id = self.store.start_run(summary.sources, engine)
        try:
            report = IngestReport()
            with clock.stage("ingest"):
                articles = list(iter_articles(sources, self.ingest_config, report))
            self._process(
                articles, report, summary, clock, batch_size, engine, progress, ray_options
            )
        except BaseException as error:
            clock.fill(summary, start)
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            self.store.finish_run(
                summary.run_id, summary.to_dict(), status=status, error=f"{error}"[:2000]
            )
            raise
        clock.fill(summary, start)
        self.store.finish_run(summary.run_id, summary.to_dict(), summary.model_versions)
        return summary

    def process(
        self, articles: Sequence[NewsArticle], *, batch_size: int = 32
    ) -> tuple[RunSummary, list[ScoredArticle]]:
        """Process given articles (the HTTP API): the run is recorded like a CLI run.

        Returns:
            The summary and the scored articles new to the store.
        """
        clock = _Clock()
        start = time.perf_counter()
        summary = RunSummary(sources=["api"], engine="local")
        summary.run_id = self.store.start_run(["api"], "local")
        report = IngestReport(sources=1, read=len(articles))
        kept = []
        seen = Deduplicator()
        for article in articles:
            reason = seen.reason(article)
            if reason is None:
                kept.append(article)
            else:
                report.duplicates[reason] += 1
        report.articles = len(kept)
        scored: list[ScoredArticle] = []
        try:
            self._process(kept, report, summary, clock, batch_size, "local", None, None, scored)
        except BaseException as error:
            self.store.finish_run(summary.run_id, summary.to_dict(), status="failed",
                                  error=f"{error}"[:2000])  # fmt: skip
            raise
        clock.fill(summary, start)
        self.store.finish_run(summary.run_id, summary.to_dict(), summary.model_versions)
        return summary, scored

    def _process(
        self,
        articles: list[NewsArticle],
        report: IngestReport,
        summary: RunSummary,
        clock: _Clock,
        batch_size: int,
        engine: str,
        progress: Callable[[int, int], None] | None,
        ray_options: dict[str, Any] | None,
        keep: list[ScoredArticle] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if engine not in ENGINES:
            raise ValueError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
        with clock.stage("dedupe"):
            known = self.store.known(articles)
            todo = [a for a in articles if a.id not in known]
        duplicates = Counter(report.duplicates)
        duplicates.update(known.values())
        summary.read = report.read
        summary.duplicates = dict(sorted(duplicates.items()))
        summary.skipped = dict(sorted(report.skipped.items()))
        summary.partial = dict(sorted(report.partial.items()))
        summary.problems = [str(p) for p in report.problems[:50]]
        graph = self.graph
        with clock.stage("graph"):
            # built from what is stored before anything new is added; a long-lived monitor
            # (the API's) first takes in what other processes stored meanwhile
            graph.sync(self.store)
        if todo:
            if progress is not None:
                progress(0, len(todo))
            if engine == "ray":
                batches = self._score_ray(todo, batch_size, clock, ray_options or {})
            else:
                batches = self._score_local(todo, batch_size, clock)
            done = 0
            for scored in batches:
                with clock.stage("store"):
                    stored = set(self.store.save(scored, summary.run_id))
                fresh = [s for s in scored if s.article.id in stored]
                with clock.stage("graph"):
                    graph.add(s.extraction for s in fresh)
                for item in fresh:
                    summary.new += 1
                    summary.sentences += len(item.sentences)
                    summary.mentions += len(item.extraction.mentions)
                    summary.relations += len(item.extraction.relations)
                    if not summary.model_versions:
                        summary.model_versions = dict(item.model_versions)
                if keep is not None:
                    keep.extend(fresh)
                done += len(scored)
                if progress is not None:
                    progress(done, len(todo))
        with clock.stage("alerts"):
            new_alerts = self.raise_alerts(summary.run_id)
            summary.alerts = len(new_alerts)
            summary.alert_messages = [a.message for a in new_alerts]
            summary.webhook_failures = self.deliver_pending()
        with clock.stage("graph"):
            summary.graph_path = str(graph.save())
            summary.entities = graph.kg.graph.number_of_nodes()

    def _score_local(
        self, todo: list[NewsArticle], batch_size: int, clock: _Clock
    ) -> Iterable[list[ScoredArticle]]:
        with clock.stage("load"):
            scorer = self.scorer
        for begin in range(0, len(todo), batch_size):
            with clock.stage("score"):
                scored = scorer.score(todo[begin : begin + batch_size])
            yield scored

    def _score_ray(
        self,
        todo: list[NewsArticle],
        batch_size: int,
        clock: _Clock,
        options: dict[str, Any],
    ) -> Iterable[list[ScoredArticle]]:
        """Score with the core's Ray Data engine (input and output are JSONL files), then
        hand the results back in batches for the usual store -> graph steps."""
        from lepton_nlp.batch import score_ray

        with (
            clock.stage("score"),
            tempfile.TemporaryDirectory(prefix="lepton-finance-ray-") as folder,
        ):
            source, output = Path(folder) / "articles.jsonl", Path(folder) / "scored.jsonl"
            with open(source, "w", encoding="utf-8") as stream:
                for article in todo:
                    row = article.to_dict() | {"text": article.text}
                    stream.write(json.dumps(row, ensure_ascii=False) + "\n")
            factory = functools.partial(ArticlePredictor, self.scorer_factory)
            score_ray(factory, source, output, chunk_size=batch_size, bad_records="stop", **options)
            results = []
            with open(output, encoding="utf-8") as stream:
                for line in stream:
                    results.append(ScoredArticle.from_dict(json.loads(line)["scored"]))
        for begin in range(0, len(results), batch_size):
            yield results[begin : begin + batch_size]

    def raise_alerts(self, run_id: int | None = None) -> list[Alert]:
        """Store the alerts the graph calls for that were not raised before; returns those."""
        webhook = bool(self.alert_config.webhook_url)
        found = detect_alerts(self.graph.kg, self.alert_config)
        return self.store.add_alerts(found, run_id, webhook=webhook)

    def deliver_pending(self) -> int:
        """POST the alerts waiting for the webhook; returns how many failed (recorded)."""
        url = self.alert_config.webhook_url
        if not url:
            return 0
        failures = 0
        for alert in self.store.alerts(webhook="pending"):
            sent, why = post_webhook(url, alert, self.alert_config.webhook_timeout)
            self.store.set_webhook(alert.id, "sent" if sent else "failed", why)
            failures += not sent
        return failures


class ArticlePredictor:
    """The scorer seen as a batch-engine predictor: rows (article dicts) -> ``{"scored": ...}``."""

    def __init__(self, scorer_factory: ScorerFactory):
        self.scorer = scorer_factory()

    def predict(self, rows: list[dict]) -> list[dict]:
        articles = [
            NewsArticle.from_dict({k: v for k, v in row.items() if k != "text"}) for row in rows
        ]
        return [{"scored": s.to_dict()} for s in self.scorer.score(articles)]

"""Studio runs and their status in a SQL database (SQLite by default, any SQLAlchemy URL)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    create_engine,
    make_url,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

__all__ = [
    "ACTIVE",
    "Run",
    "RunStore",
    "data_home",
    "database_url",
    "pid_alive",
]

ACTIVE = ("queued", "running", "stopping")
"""Statuses of a run whose worker should still be alive."""


def data_home() -> Path:
    """Where the studio keeps its database, uploads and run artifacts (``LEPTON_HOME``)."""
    home = os.environ.get("LEPTON_HOME") or Path.home() / ".local" / "share" / "lepton-nlp"
    path = Path(home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """``LEPTON_DB_URL`` (e.g. ``postgresql+psycopg://...``), else SQLite under :func:`data_home`."""
    return os.environ.get("LEPTON_DB_URL") or f"sqlite:///{data_home() / 'studio.db'}"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class _Base(DeclarativeBase):
    pass


class Run(_Base):
    """One training run: its config, where it stands, and what it produced."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    config_yaml: Mapped[str] = mapped_column(Text)
    artifact_path: Mapped[str] = mapped_column(Text, default="")
    metrics_json: Mapped[str] = mapped_column(Text, default="{}")
    history_json: Mapped[str] = mapped_column(Text, default="[]")
    created: Mapped[datetime] = mapped_column(DateTime, default=_now)
    started: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    eta_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    log_path: Mapped[str] = mapped_column(Text, default="")

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads(self.metrics_json or "{}")

    @property
    def history(self) -> list[dict]:
        return json.loads(self.history_json or "[]")

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id runs (a zombie, finished but not yet reaped, does not)."""
    if not pid:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class RunStore:
    """Runs in a database; every call opens its own short session (safe across processes)."""

    def __init__(self, url: str | None = None):
        self.url = url or database_url()
        kwargs: dict[str, Any] = {}
        if self.url.startswith("sqlite"):
            # The worker and the pages write the same file; wait for each other's locks.
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            database = make_url(self.url).database
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(self.url, **kwargs)
        _Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._session()

    def create(self, name: str, task: str, config_yaml: str, **fields: Any) -> Run:
        with self.session() as s:
            run = Run(name=name, task=task, config_yaml=config_yaml, **fields)
            s.add(run)
            s.commit()
            return run

    def get(self, run_id: int) -> Run | None:
        with self.session() as s:
            return s.get(Run, run_id)

    def list(self) -> list[Run]:
        with self.session() as s:
            return list(s.scalars(select(Run).order_by(Run.id.desc())))

    def update(self, run_id: int, **fields: Any) -> Run:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise KeyError(f"No run {run_id} in {self.url}.")
            for key, value in fields.items():
                if key in ("metrics", "history"):
                    key, value = f"{key}_json", json.dumps(value, default=str)
                setattr(run, key, value)
            s.commit()
            return run

    def delete(self, run_id: int) -> None:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is not None:
                s.delete(run)
                s.commit()

    def request_stop(self, run_id: int) -> None:
        """Ask the run's worker to stop after the current step (it keeps the best checkpoint)."""
        run = self.get(run_id)
        if run is not None and run.active:
            self.update(run_id, stop_requested=True, status="stopping")

    def active(self) -> list[Run]:
        """Runs still training, after marking those whose worker has died as failed."""
        self.reap()
        return [r for r in self.list() if r.active]

    def reap(self) -> list[int]:
        """Mark runs whose worker process is gone as failed; returns their ids.

        A run still 'queued' gets a grace period, since its worker may not have started yet.
        """
        reaped = []
        for run in self.list():
            if not run.active or pid_alive(run.pid):
                continue
            if run.status == "queued" and (_now() - run.created).total_seconds() < 60:
                continue
            self.update(
                run.id,
                status="failed",
                finished=_now(),
                error=run.error
                or "The training process ended without reporting back (worker died: killed, "
                "out of memory, or the machine restarted). Start the run again; nothing saved "
                "before was lost.",
            )
            reaped.append(run.id)
        return reaped

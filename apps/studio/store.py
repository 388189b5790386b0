"""The Model Studio's runs and their status, a table in the suite's database."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, select
from sqlalchemy import update as update_rows
from sqlalchemy.orm import Mapped, Session, mapped_column

from apps.common.database import Base, Database, safe_url, storable, utc_now
from apps.common.processes import pid_alive

__all__ = ["ACTIVE", "Run", "RunStore"]

ACTIVE = ("queued", "running", "stopping")
"""Statuses of a run whose worker should still be alive."""


class Run(Base):
    """One training run: its config, where it stands, and what it produced."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text)
    task: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    config_yaml: Mapped[str] = mapped_column(Text)
    artifact_path: Mapped[str] = mapped_column(Text, default="")
    metrics_json: Mapped[str] = mapped_column(Text, default="{}")
    history_json: Mapped[str] = mapped_column(Text, default="[]")
    created: Mapped[datetime] = mapped_column(DateTime, default=utc_now)
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


class RunStore:
    """Runs in the suite's database; every call opens its own short session (safe across
    processes).

    Raises:
        apps.common.database.StoreError: (from the constructor and every call) the database cannot be opened or
            reached; the message says why, shows the URL without its password, and how to fix it.
    """

    def __init__(self, url: str | None = None):
        self.database = Database(url)
        self.url = self.database.url
        self.engine = self.database.engine

    def session(self) -> Session:
        return self.database.session()

    def create(self, name: str, task: str, config_yaml: str, **fields: Any) -> Run:
        values = {"name": name, "task": task, "config_yaml": config_yaml, **fields}
        with self.database.connected() as s:
            run = Run(**{key: storable(value) for key, value in values.items()})
            s.add(run)
            s.commit()
            return run

    def get(self, run_id: int) -> Run | None:
        with self.database.connected() as s:
            return s.get(Run, run_id)

    def list(self) -> list[Run]:
        with self.database.connected() as s:
            return list(s.scalars(select(Run).order_by(Run.id.desc())))

    def update(self, run_id: int, **fields: Any) -> Run:
        """Set ``fields`` of a run (``metrics``/``history`` as data); other columns stay as
        another process last wrote them, since only the fields given are written."""
        with self.database.connected() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise KeyError(f"No run {run_id} in {safe_url(self.url)}.")
            for key, value in fields.items():
                if key in ("metrics", "history"):
                    key, value = f"{key}_json", json.dumps(value, default=str)
                setattr(run, key, storable(value))
            s.commit()
            return run

    def delete(self, run_id: int) -> None:
        with self.database.connected() as s:
            run = s.get(Run, run_id)
            if run is not None:
                s.delete(run)
                s.commit()

    def request_stop(self, run_id: int) -> None:
        """Ask the run's worker to stop after the current step (it keeps the best checkpoint).

        A run that has already ended meanwhile keeps its status: the check and the change
        are one statement, so a worker finishing at the same moment is never overwritten.
        """
        with self.database.connected() as s:
            s.execute(
                update_rows(Run)
                .where(Run.id == run_id, Run.status.in_(ACTIVE))
                .values(stop_requested=True, status="stopping")
            )
            s.commit()

    def active(self) -> list[Run]:
        """Runs still training, after marking those whose worker has died as failed."""
        self.reap()
        return [r for r in self.list() if r.active]

    def reap(self) -> list[int]:
        """Mark runs whose worker process is gone as failed; returns their ids.

        A run still 'queued' without a worker pid gets a grace period, since its worker may
        not have been started yet.
        """
        reaped = []
        for run in self.list():
            if not run.active or pid_alive(run.pid):
                continue
            if (
                run.status == "queued"
                and run.pid is None  # a queued run with a dead pid has died: no grace
                and (utc_now() - run.created).total_seconds() < 60
            ):
                continue
            # Only if nobody changed the run since it was read: a worker that has just
            # started (new pid) or finished (new status) must not be marked failed.
            same_pid = Run.pid.is_(None) if run.pid is None else Run.pid == run.pid
            with self.database.connected() as s:
                changed = s.execute(
                    update_rows(Run)
                    .where(Run.id == run.id, Run.status == run.status, same_pid)
                    .values(
                        status="failed",
                        finished=utc_now(),
                        error=run.error
                        or "The training process ended without reporting back (worker died: "
                        "killed, out of memory, lost the runs database, or the machine "
                        "restarted). Start the run again; nothing saved before was lost.",
                    )
                ).rowcount
                s.commit()
            if changed:
                reaped.append(run.id)
        return reaped

    def ready_models(self) -> list[tuple[str, Path]]:
        """``(source, artifact folder)`` of the finished runs, newest first (for
        :func:`apps.common.catalog.model_catalog`)."""
        return [
            (f"studio run #{r.id}", Path(r.artifact_path))
            for r in self.list()
            if r.artifact_path and r.status in ("completed", "stopped")
        ]

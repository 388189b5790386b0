"""Studio runs and their status in a SQL database (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
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
from sqlalchemy import text as sql
from sqlalchemy import update as update_rows
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

__all__ = [
    "ACTIVE",
    "Run",
    "RunStore",
    "StoreError",
    "data_home",
    "database_url",
    "pid_alive",
    "safe_url",
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
    # Naive UTC in plain DateTime columns: SQLite drops time zones and PostgreSQL's
    # `timestamp with time zone` would hand back aware values, so naive UTC is the one
    # form that compares the same on both, whatever the server's TimeZone setting.
    return datetime.now(UTC).replace(tzinfo=None)


class StoreError(RuntimeError):
    """The runs database cannot be opened or reached; the message says why and what to change."""


_FORM = (
    "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE for PostgreSQL "
    "or sqlite:////absolute/path/studio.db"
)


def safe_url(url: str) -> str:
    """``url`` fit to show: its password (in the user part or the query) replaced by ``***``."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is None or "@" in (parsed.host or ""):
        # Unparsable, or an unescaped '@' in the password pushed part of it into the host.
        shown = re.sub(r"^([^:/]+://[^:@/]*:).*@", r"\1***@", url)
    else:
        shown = parsed.render_as_string(hide_password=True)
    # libpq also takes the password as a query parameter.
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", shown)


def _secrets(url: str) -> list[str]:
    """The password as written in ``url`` and as parsed, to scrub from driver messages."""
    found = re.findall(r"^[^:/]+://[^:@/]*:(.*)@", url) + re.findall(r"(?i)password=([^&]*)", url)
    try:
        parsed = make_url(url)
        found += [parsed.password or "", str(parsed.query.get("password") or "")]
    except (ArgumentError, ValueError):
        pass
    return sorted({s for s in found if s}, key=len, reverse=True)


def _driver_message(error: BaseException, url: str) -> str:
    """The first line of what the database driver said, without the password."""
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else type(cause).__name__
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def _store_error(url: str, error: BaseException, opening: bool = True) -> StoreError:
    """A :class:`StoreError` saying in plain words what is wrong with ``url`` and how to fix it."""
    shown = safe_url(url)
    from_env = url == os.environ.get("LEPTON_DB_URL")
    source = (
        "The URL comes from LEPTON_DB_URL: correct it there, or unset LEPTON_DB_URL to keep "
        "runs in SQLite under LEPTON_HOME."
        if from_env
        else "Set LEPTON_DB_URL to the database to use (unset, runs are kept in SQLite under "
        "LEPTON_HOME)."
    )
    if isinstance(error, NoSuchModuleError | ArgumentError | ValueError):
        if isinstance(error, NoSuchModuleError):
            kind = shown.split("://", 1)[0]
            what = f"'{kind}' in {shown} is not a kind of database SQLAlchemy knows (misspelt?)"
        else:
            what = f"'{shown}' is not a database URL ({_driver_message(error, url)})"
        return StoreError(f"{what}. Write it as {_FORM}. {source}")
    if isinstance(error, ImportError):
        return StoreError(
            f"{shown} needs the Python package '{error.name}', which is not installed. "
            "For PostgreSQL write the URL as postgresql+psycopg://... (psycopg is installed "
            f"with lepton-nlp), or pip install the driver the URL names. {source}"
        )
    said = _driver_message(error, url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        parsed = None
    where = shown
    if parsed is not None:
        where = (parsed.host or "localhost") + (f":{parsed.port}" if parsed.port else "")
    low = said.lower()
    if not opening:
        what = f"The runs database at {shown} stopped answering ({said})"
        fix = "Check that the database server is running and reachable, then try again."
    elif parsed is not None and parsed.get_backend_name() == "sqlite":
        what = f"The SQLite file of {shown} cannot be opened or created ({said})"
        fix = "Check that its folder exists and is writable, or set LEPTON_HOME to another folder."
    elif "authentication failed" in low or "no password supplied" in low:
        what = f"The server at {where} refused user '{parsed.username}' ({said})"
        fix = "The user name or password is wrong: correct them in the URL."
    elif "database" in low and "does not exist" in low:
        what = f"There is no database '{parsed.database}' on the server at {where} ({said})"
        fix = (
            f"Create it (createdb -O {parsed.username or 'USER'} {parsed.database}) "
            "or correct the database name in the URL."
        )
    elif "permission denied" in low:
        what = f"User '{parsed.username}' may not create the runs table in {shown} ({said})"
        fix = (
            f"Give it a database it owns (createdb -O {parsed.username or 'USER'} NAME) or the "
            "right to create tables there (GRANT CREATE ON SCHEMA public TO the user)."
        )
    elif isinstance(error, OperationalError | InterfaceError):
        what = f"No database server answered at {where} for {shown} ({said})"
        fix = "Start the server, or correct the host and port in the URL."
    else:
        what = f"The runs database at {shown} cannot be opened ({said})"
        fix = f"Check the URL; it is written as {_FORM}."
    return StoreError(f"{what}. {fix} {source}")


def _storable(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL characters (an error message may carry one).
    return value.replace("\x00", "\\x00") if isinstance(value, str) else value


class _Base(DeclarativeBase):
    pass


class Run(_Base):
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


#: Key of the PostgreSQL advisory lock that serialises schema creation ("lepton" in ASCII).
_SCHEMA_LOCK = 0x6C6570746F6E


def _create_schema(engine: Any) -> None:
    """Create the missing tables; processes opening an empty database at once take turns.

    PostgreSQL's ``CREATE TABLE`` has no protection against a concurrent twin (both see no
    table, one fails with "already exists"), so the creation runs under a transaction-level
    advisory lock: the second process waits, then finds the tables there. SQLite's file lock
    already serialises it.
    """
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sql("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        _Base.metadata.create_all(connection)


class RunStore:
    """Runs in a database; every call opens its own short session (safe across processes).

    Raises:
        StoreError: (from the constructor and every call) the database cannot be opened or
            reached; the message says why, shows the URL without its password, and how to fix it.
    """

    def __init__(self, url: str | None = None):
        self.url = url or database_url()
        try:
            parsed = make_url(self.url)
        except (ArgumentError, ValueError) as error:
            raise _store_error(self.url, error) from None
        if "@" in (parsed.host or ""):
            raise StoreError(
                f"The host part of {safe_url(self.url)} contains '@': the password or user "
                "name has an '@' that must be written %40 (and ':' as %3A, '/' as %2F). "
                "Correct LEPTON_DB_URL."
            )
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            # The worker and the pages write the same file; wait for each other's locks.
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            if parsed.database and parsed.database != ":memory:":
                try:
                    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise _store_error(self.url, error) from None
        else:
            # A server can restart under a running suite: test pooled connections before use.
            kwargs["pool_pre_ping"] = True
            libpq = ("postgresql", "postgresql+psycopg", "postgresql+psycopg2")
            if parsed.drivername in libpq and "connect_timeout" not in parsed.query:
                # libpq waits minutes for a host that does not answer; say so in seconds.
                kwargs["connect_args"] = {"connect_timeout": 10}
        try:
            self.engine = create_engine(self.url, **kwargs)
            _create_schema(self.engine)
        except (ArgumentError, ImportError, DBAPIError) as error:
            raise _store_error(self.url, error) from None
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._session()

    @contextmanager
    def _connected(self) -> Iterator[Session]:
        """A short session; losing the database on the way is a :class:`StoreError`."""
        try:
            with self._session() as s:
                yield s
        except (OperationalError, InterfaceError) as error:
            raise _store_error(self.url, error, opening=False) from None

    def create(self, name: str, task: str, config_yaml: str, **fields: Any) -> Run:
        values = {"name": name, "task": task, "config_yaml": config_yaml, **fields}
        with self._connected() as s:
            run = Run(**{key: _storable(value) for key, value in values.items()})
            s.add(run)
            s.commit()
            return run

    def get(self, run_id: int) -> Run | None:
        with self._connected() as s:
            return s.get(Run, run_id)

    def list(self) -> list[Run]:
        with self._connected() as s:
            return list(s.scalars(select(Run).order_by(Run.id.desc())))

    def update(self, run_id: int, **fields: Any) -> Run:
        """Set ``fields`` of a run (``metrics``/``history`` as data); other columns stay as
        another process last wrote them, since only the fields given are written."""
        with self._connected() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise KeyError(f"No run {run_id} in {safe_url(self.url)}.")
            for key, value in fields.items():
                if key in ("metrics", "history"):
                    key, value = f"{key}_json", json.dumps(value, default=str)
                setattr(run, key, _storable(value))
            s.commit()
            return run

    def delete(self, run_id: int) -> None:
        with self._connected() as s:
            run = s.get(Run, run_id)
            if run is not None:
                s.delete(run)
                s.commit()

    def request_stop(self, run_id: int) -> None:
        """Ask the run's worker to stop after the current step (it keeps the best checkpoint).

        A run that has already ended meanwhile keeps its status: the check and the change
        are one statement, so a worker finishing at the same moment is never overwritten.
        """
        with self._connected() as s:
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

        A run still 'queued' gets a grace period, since its worker may not have started yet.
        """
        reaped = []
        for run in self.list():
            if not run.active or pid_alive(run.pid):
                continue
            if run.status == "queued" and (_now() - run.created).total_seconds() < 60:
                continue
            # Only if nobody changed the run since it was read: a worker that has just
            # started (new pid) or finished (new status) must not be marked failed.
            same_pid = Run.pid.is_(None) if run.pid is None else Run.pid == run.pid
            with self._connected() as s:
                changed = s.execute(
                    update_rows(Run)
                    .where(Run.id == run.id, Run.status == run.status, same_pid)
                    .values(
                        status="failed",
                        finished=_now(),
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

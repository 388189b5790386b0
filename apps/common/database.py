"""The suite's SQL database (SQLite by default, PostgreSQL by URL): one engine, short sessions.

Every application keeps its tables here, declared on :class:`Base` (the Model Studio's runs,
and next to them the tables of the other applications); :class:`Database` opens the URL,
creates the missing tables and turns a database that cannot be reached into a
:class:`StoreError` that says why and what to change, with the password hidden.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event, make_url
from sqlalchemy import text as sql
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from apps.common.paths import data_home, shown_path

__all__ = [
    "SQLITE_SYNCHRONOUS",
    "Base",
    "Database",
    "StoreError",
    "database_url",
    "safe_url",
    "shown_database",
    "storable",
    "utc_now",
]


#: ``PRAGMA synchronous`` of a SQLite file in WAL mode: ``NORMAL`` (the default) or ``FULL``.
SQLITE_SYNCHRONOUS = ("NORMAL", "FULL")


def database_url() -> str:
    """``LEPTON_DB_URL`` (e.g. ``postgresql+psycopg://...``), else SQLite under :func:`data_home`."""
    return os.environ.get("LEPTON_DB_URL") or f"sqlite:///{data_home() / 'studio.db'}"


def utc_now() -> datetime:
    """The time now, as the suite's tables store it."""
    # Naive UTC in plain DateTime columns: SQLite drops time zones and PostgreSQL's
    # `timestamp with time zone` would hand back aware values, so naive UTC is the one
    # form that compares the same on both, whatever the server's TimeZone setting.
    return datetime.now(UTC).replace(tzinfo=None)


def storable(value: Any) -> Any:
    """``value`` as a text column can hold it (PostgreSQL text cannot hold NUL characters,
    and an error message may carry one)."""
    return value.replace("\x00", "\\x00") if isinstance(value, str) else value


class StoreError(RuntimeError):
    """The database cannot be opened or reached; the message says why and what to change."""


class Base(DeclarativeBase):
    """Declarative base of every table of the suite (one metadata, one database)."""


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


def shown_database(url: str) -> str:
    """The database as the pages show it: a SQLite file by its shown path, a server's URL
    with its password hidden."""
    try:
        parsed = make_url(url)
    except Exception:  # the store reports a bad URL; here it is only shown
        parsed = None
    if parsed is not None and parsed.get_backend_name() == "sqlite" and parsed.database:
        return f"SQLite file `{shown_path(parsed.database)}`"
    return f"`{safe_url(url)}`"


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


#: Key of the PostgreSQL advisory lock that serialises schema creation ("lepton" in ASCII).
_SCHEMA_LOCK = 0x6C6570746F6E


def _create_schema(engine: Any, metadata: MetaData) -> None:
    """Create the missing tables; processes opening an empty database at once take turns.

    PostgreSQL's ``CREATE TABLE`` has no protection against a concurrent twin (both see no
    table, one fails with "already exists"), so the creation runs under a transaction-level
    advisory lock: the second process waits, then finds the tables there. SQLite has the same
    race (the driver starts no transaction before a ``CREATE TABLE``, so the check and the
    creation are apart): its creation runs in a ``BEGIN IMMEDIATE`` transaction, which holds
    the file's write lock from the check on. Two browser sessions opening the suite's pages at
    once met it ("table rec_events already exists").
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            # AUTOCOMMIT: the driver sends no BEGIN of its own, so this one is the transaction.
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                metadata.create_all(connection)
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sql("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        metadata.create_all(connection)


def _sqlite_synchronous() -> str:
    """``LEPTON_SQLITE_SYNCHRONOUS`` (``NORMAL`` by default, or ``FULL``), checked."""
    value = os.environ.get("LEPTON_SQLITE_SYNCHRONOUS", "NORMAL").strip().upper()
    if value not in SQLITE_SYNCHRONOUS:
        raise StoreError(
            f"LEPTON_SQLITE_SYNCHRONOUS={value!r} is not a choice: set it to NORMAL (the "
            "default: a commit survives a crash of the process) or FULL (also a power cut, "
            "at a disk flush per commit), or unset it."
        )
    return value


def _use_wal(engine: Any, synchronous: str) -> None:
    """Every connection to a SQLite file in write-ahead-log mode with ``synchronous``.

    In the default rollback-journal mode each commit writes and flushes a journal file, then
    the database, then deletes the journal: about 20 ms per commit on this project's disks,
    and the support bot commits several times a turn. With the write-ahead log a commit
    appends to one file; ``NORMAL`` flushes it at checkpoints, not at every commit (a
    committed transaction survives the process crashing, but a power cut may undo the last
    ones; the database stays consistent either way), ``FULL`` flushes at every commit.
    Readers no longer block the writer, nor the writer the readers. Foreign keys are
    enforced on every connection.
    """

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        with contextlib.suppress(Exception):  # a read-only file keeps its own journal
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # Foreign keys enforced: a row never points at a missing one, whatever a kill cut short.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class Database:
    """The suite's database at ``url`` (default :func:`database_url`), its tables created.

    Safe across processes (pages, workers): each :meth:`connected` session is short.

    Raises:
        StoreError: (from the constructor and :meth:`connected`) the database cannot be
            opened or reached; the message says why, shows the URL without its password,
            and how to fix it.
    """

    def __init__(self, url: str | None = None, metadata: MetaData = Base.metadata):
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
        sqlite_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (
            None,
            "",
            ":memory:",
        )
        synchronous = _sqlite_synchronous() if sqlite_file else None
        if parsed.get_backend_name() == "sqlite":
            # Workers and pages write the same file; wait for each other's locks.
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
            if synchronous is not None:
                _use_wal(self.engine, synchronous)
            _create_schema(self.engine, metadata)
        except (ArgumentError, ImportError, DBAPIError) as error:
            raise _store_error(self.url, error) from None
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        """A new session (the caller closes it); errors are SQLAlchemy's own."""
        return self._session()

    @contextmanager
    def connected(self) -> Iterator[Session]:
        """A short session; losing the database on the way is a :class:`StoreError`."""
        try:
            with self._session() as s:
                yield s
        except (OperationalError, InterfaceError) as error:
            raise _store_error(self.url, error, opening=False) from None

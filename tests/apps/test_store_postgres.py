"""The run store on a real PostgreSQL server, and what a bad database URL tells the user.

A throwaway cluster (initdb in a temporary folder, a free loopback port, time zone far from
UTC) serves the module; each test gets a fresh database. The SQLite store tests of
test_studio_logic run here again on it, through the ``db_url`` fixture they depend on; the
tests written here check behaviour both backends must share, PostgreSQL's own concerns, and
the error messages. Without PostgreSQL's server binaries (Debian: ``apt-get install
postgresql``, as .ci/run does) the PostgreSQL tests skip and say so.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import test_studio_logic as sqlite_tests  # the SQLite store tests, reused below on PostgreSQL
from conftest import wait_for

from apps.common.database import StoreError, utc_now
from apps.studio.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-Pw"
TIME_ZONE = "Pacific/Chatham"  # UTC+12:45 (+13:45 in summer): no offset hides here
BOTH = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)

# The same tests as on SQLite; here `store` opens a fresh PostgreSQL database.
test_store_survives_reopening = sqlite_tests.test_store_survives_reopening
test_dead_worker_is_marked_failed = sqlite_tests.test_dead_worker_is_marked_failed
test_stop_flag_stops_the_trainer = sqlite_tests.test_stop_flag_stops_the_trainer
test_failing_run_is_marked_failed_with_reason = (
    sqlite_tests.test_failing_run_is_marked_failed_with_reason
)


def _postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: Debian's newest /usr/lib/postgresql/N/bin, else PATH."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    found.sort(key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running throwaway cluster: superuser ``postgres`` and user ``lepton``, both PASSWORD."""

    bindir: Path
    data: Path
    port: int
    run_as: list[str]
    databases: int = 0

    def pg_ctl(self, *args: str) -> None:
        log = self.data.parent / "server.log"
        # The server's output goes to the log (-l): a server holding our pipes open would
        # keep this call waiting for ever.
        command = [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w"]
        command += ["-t", "60", "-l", str(log), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr + log.read_text(errors="replace")

    def url(self, database: str, user: str = "lepton", password: str = PASSWORD) -> str:
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str) -> None:
        import psycopg

        conninfo = f"host=127.0.0.1 port={self.port} user=postgres password={PASSWORD}"
        with psycopg.connect(conninfo, dbname="postgres", autocommit=True) as connection:
            connection.execute(statement)

    def new_database(self, owner: str = "lepton") -> str:
        """A fresh, empty database owned by ``owner``; returns the URL for user ``lepton``."""
        self.databases += 1
        name = f"studio_{self.databases}"
        self.sql(f"CREATE DATABASE {name} OWNER {owner}")
        return self.url(name)


@pytest.fixture(scope="module")
def postgres_server():
    """A PostgreSQL cluster of its own in a temporary folder, stopped and removed afterwards."""
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, no "
            "initdb on PATH): `apt-get install postgresql` (.ci/run does) to run these tests"
        )
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run initdb as")
        run_as = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp_path: its parent folders are private to root.
    root = Path(tempfile.mkdtemp(prefix="lepton-pg-"))
    server = PostgresServer(bindir, root / "data", _free_port(), run_as)
    try:
        (root / "password").write_text(PASSWORD + "\n")
        if run_as:
            shutil.chown(root, "postgres")
            shutil.chown(root / "password", "postgres")
        initdb = [str(bindir / "initdb"), "-D", str(server.data), "-U", "postgres"]
        initdb += ["--pwfile", str(root / "password"), "-A", "scram-sha-256", "-E", "UTF8"]
        initdb += ["--no-locale", "--no-sync"]
        done = subprocess.run([*run_as, *initdb], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        with open(server.data / "postgresql.conf", "a") as conf:
            # Loopback only, no socket file; durability off, since the data is thrown away.
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {server.port}\n"
                f"unix_socket_directories = ''\ntimezone = '{TIME_ZONE}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 16MB\nmax_connections = 60\n"
            )
        server.pg_ctl("start")
        server.sql(f"CREATE ROLE lepton LOGIN PASSWORD '{PASSWORD}'")
        yield server
    finally:
        if (server.data / "postmaster.pid").exists():
            server.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def db_url(request, tmp_path) -> str:
    """A fresh PostgreSQL database; SQLite where a test is parametrised with ``BOTH``."""
    if getattr(request, "param", "postgresql") == "sqlite":
        return f"sqlite:///{tmp_path / 'lepton-home' / 'studio.db'}"
    return request.getfixturevalue("postgres_server").new_database()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# --- behaviour both backends share ---


@BOTH
def test_runs_round_trip_list_and_delete(store):
    name = "a long run name " * 20  # longer than any VARCHAR the schema once had
    first = store.create(name=name, task="classification", config_yaml="task: classification\n")
    second = store.create(name="b", task="ner", config_yaml="task: ner\n")
    history = [{"step": 5, "loss": 0.7}, {"step": 10, "eval_accuracy": float("nan")}]
    started = utc_now()
    store.update(
        first.id,
        status="running",
        started=started,
        progress=0.5,
        step=10,
        total_steps=20,
        eta_seconds=12.5,
        history=history,
        metrics={"validation": {"accuracy": 0.75}},
        error="a message with a NUL \x00 in it",
    )
    run = store.get(first.id)
    assert (run.name, run.status, run.step, run.progress) == (name, "running", 10, 0.5)
    assert run.started == started and run.created <= started
    assert run.history[0] == history[0] and run.history[1]["eval_accuracy"] != 0
    assert run.metrics == {"validation": {"accuracy": 0.75}}
    assert "NUL" in run.error and "\x00" not in run.error
    assert [r.id for r in store.list()] == [second.id, first.id]
    store.delete(first.id)
    assert store.get(first.id) is None and [r.id for r in store.list()] == [second.id]
    with pytest.raises(KeyError, match=f"No run {first.id}"):
        store.update(first.id, status="failed")


@BOTH
def test_reaping_leaves_a_run_changed_since_it_was_read(store, monkeypatch):
    run = store.create(name="r", task="classification", config_yaml="{}")
    store.update(run.id, status="running", pid=_dead_pid())
    seen = store.list()
    store.update(run.id, pid=os.getpid())  # its worker restarted after the list was read
    with monkeypatch.context() as m:
        m.setattr(store, "list", lambda: seen)
        assert store.reap() == []
    assert store.get(run.id).status == "running"
    store.update(run.id, pid=_dead_pid())
    assert store.reap() == [run.id] and store.get(run.id).status == "failed"


@BOTH
def test_stop_request_leaves_a_finished_run_as_it_is(store):
    run = store.create(name="done", task="classification", config_yaml="{}")
    store.update(run.id, status="completed", progress=1.0)
    store.request_stop(run.id)
    done = store.get(run.id)
    assert done.status == "completed" and not done.stop_requested


WORKER_LIKE = """
import sys, time
from apps.studio.store import RunStore

store, run_id, history = RunStore(), int(sys.argv[1]), []
for step in range(1, 41):
    history.append({"step": step, "loss": 1 / step})
    store.update(run_id, step=step, progress=step / 40, history=history)
    time.sleep(0.02)
"""


@BOTH
def test_a_worker_process_and_the_page_write_the_same_run(store):
    run = store.create(name="busy", task="classification", config_yaml="{}")
    store.update(run.id, status="running", pid=os.getpid())
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER_LIKE, str(run.id)], cwd=ROOT, stderr=subprocess.PIPE
    )
    wait_for(lambda: store.get(run.id).step >= 5, timeout=60, every=0.05)
    store.request_stop(run.id)  # the page, while the worker goes on writing its progress
    assert worker.wait(timeout=120) == 0, worker.stderr.read().decode()
    run = store.get(run.id)
    assert (run.status, run.stop_requested, run.step) == ("stopping", True, 40)
    assert [h["step"] for h in run.history] == list(range(1, 41))


# --- PostgreSQL's own concerns ---


def test_times_are_utc_whatever_the_servers_time_zone(store):
    from sqlalchemy import text

    with store.engine.connect() as connection:
        assert connection.execute(text("SHOW TimeZone")).scalar() == TIME_ZONE
    run = store.create(name="q", task="classification", config_yaml="{}")
    assert abs((utc_now() - store.get(run.id).created).total_seconds()) < 60
    assert store.reap() == []  # queued a moment ago: its worker may still be starting
    store.update(run.id, created=utc_now().replace(year=2000))
    assert store.reap() == [run.id]


def test_processes_opening_an_empty_database_at_once_all_succeed(postgres_server):
    # A studio page, its training workers and a batch job can all start against a database
    # that has no tables yet; each opening creates the schema if it is missing.
    opener = (
        "import sys, time\n"
        "from apps.studio.store import RunStore\n"
        "start = float(sys.argv[2])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "RunStore(sys.argv[1]).create(name='n', task='ner', config_yaml='{}')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(3):  # the race needs luck to show: three fresh databases
        url = postgres_server.new_database()
        start = time.time() + 4  # after every process has imported SQLAlchemy
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", opener, url, str(start)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        failures = [p.communicate(timeout=120)[1] for p in processes if p.wait(timeout=120)]
        assert not failures, failures[0][-2000:]
        assert len(RunStore(url).list()) == 6


def test_store_reconnects_after_the_server_restarts(store, postgres_server):
    run = store.create(name="kept", task="classification", config_yaml="{}")
    assert store.get(run.id).name == "kept"  # a pooled connection now exists
    postgres_server.pg_ctl("-m", "fast", "stop")
    try:
        with pytest.raises(StoreError, match="stopped answering") as error:
            store.list()
        assert PASSWORD not in str(error.value) and "LEPTON_DB_URL" in str(error.value)
    finally:
        postgres_server.pg_ctl("start")
    assert store.update(run.id, status="running").status == "running"
    assert [r.status for r in RunStore(store.url).list()] == ["running"]


def test_server_refusals_say_what_to_fix(postgres_server, monkeypatch):
    database = postgres_server.new_database()
    cases = [
        (database.replace(PASSWORD, "wrong-Pw"), "user name or password is wrong"),
        (postgres_server.url("no_such_db"), "createdb -O lepton no_such_db"),
        # PostgreSQL 15+ lets only the owner create tables in a database's public schema.
        (postgres_server.new_database(owner="postgres"), "GRANT CREATE ON SCHEMA public"),
    ]
    for url, fix in cases:
        monkeypatch.setenv("LEPTON_DB_URL", url)
        with pytest.raises(StoreError) as error:
            RunStore()
        message = str(error.value)
        assert fix in message and "LEPTON_DB_URL" in message, message
        assert "wrong-Pw" not in message and PASSWORD not in message, message
    assert RunStore(database).list() == []


# --- bad URLs: plain words, no password, no server needed ---

REFUSED = f"postgresql+psycopg://lepton:{PASSWORD}@127.0.0.1:{_free_port()}/studio"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (REFUSED, "No database server answered at 127.0.0.1:"),
        (
            f"postgressql://lepton:{PASSWORD}@db/studio",
            "'postgressql' in postgressql://lepton:***@",
        ),
        (f"postgresql+psycopg2://lepton:{PASSWORD}@db/studio", "package 'psycopg2'"),
        (f"postgresql+psycopg://lepton:{PASSWORD}@db:port/studio", "is not a database URL"),
        (f"postgresql+psycopg://lepton:{PASSWORD}@x@db/studio", "written %40"),
        ("no url at all", "Write it as postgresql+psycopg://USER:PASSWORD@HOST"),
    ],
    ids=["refused", "misspelt", "no-driver", "bad-port", "unescaped-at", "not-a-url"],
)
def test_bad_url_says_what_is_wrong(url, says, monkeypatch):
    monkeypatch.setenv("LEPTON_DB_URL", url)
    with pytest.raises(StoreError) as error:
        RunStore()
    message = str(error.value)
    assert says in message and "LEPTON_DB_URL" in message, message
    assert PASSWORD not in message, message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql+psycopg://lepton:{PASSWORD}@db:5432/studio", "lepton:***@db:5432/studio"),
        (f"postgresql+psycopg://db/studio?user=u&password={PASSWORD}", "password=***"),
        (f"postgresql+psycopg://lepton:{PASSWORD}@x@db/studio", "lepton:***@db/studio"),
        (f"postgresql+psycopg://lepton:{PASSWORD}@db:port/s", "lepton:***@db:port/s"),
    ],
    ids=["user-part", "query", "unescaped-at", "unparsable"],
)
def test_home_page_url_hides_the_password(url, shown):
    from apps.common.database import shown_database

    assert shown in shown_database(url) and PASSWORD not in shown_database(url)


def test_worker_with_an_unreachable_database_says_so_plainly(tmp_path):
    env = {**os.environ, "LEPTON_DB_URL": REFUSED, "LEPTON_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "apps.studio.worker", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "Run 1 cannot be trained: No database server answered" in done.stderr
    assert "LEPTON_DB_URL" in done.stderr and "Traceback" not in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


@pytest.mark.parametrize("page", ["home", "train", "evaluate", "compare"])
def test_pages_with_an_unreachable_database_say_so(page, tmp_path, monkeypatch):
    from test_pages import open_page

    monkeypatch.setenv("LEPTON_HOME", str(tmp_path))
    monkeypatch.setenv("LEPTON_DB_URL", REFUSED)
    app = open_page(page)
    assert not app.exception
    errors = " ".join(e.value for e in app.error)
    assert "No database server answered" in errors and "LEPTON_DB_URL" in errors
    page = errors + " ".join(str(m.value) for m in app.markdown)
    assert PASSWORD not in page and "lepton:***@127.0.0.1" in page

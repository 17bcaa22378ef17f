"""Shared fixtures: real databases (a SQLite file and a fresh PostgreSQL database per test), a real
HTTP server on 127.0.0.1, and Prefect's test harness."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.httpserver import TestServer

PG_ADMIN_URL = os.environ.get("CLAIMWIRE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[1]
SHARED_EVAL = ROOT.parent / "shared" / "eval"

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Started as a shell's background job (`pytest &`), this process ignores SIGINT, and so would every
# command the tests start: the Ctrl-C tests would find their commands deaf to it. Default it is.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _pg_database() -> tuple[str, callable]:
    name = f"claimwire_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database of each kind; PostgreSQL databases are dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'claimwire.db'}"
        return
    yield from _fresh_pg()


@pytest.fixture
def pg_url() -> str:
    yield from _fresh_pg()


def _fresh_pg():
    url, drop = _pg_database()
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def http_server():
    server = TestServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def shared_eval(*parts: str) -> Path:
    path = SHARED_EVAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"evaluation material missing: {path} (CI has ../shared/eval beside the clone)")
    return path

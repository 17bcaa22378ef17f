"""Engine construction: SQLite by default, PostgreSQL (psycopg 3) when shared."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

DEFAULT_DB_PATH = Path("data") / "claimwire.db"
DEFAULT_DB_URL = f"sqlite:///{DEFAULT_DB_PATH}"
ENV_VAR = "CLAIMWIRE_DB"


def resolve_db_url(url: str | None = None) -> str:
    """``--db`` wins, then ``$CLAIMWIRE_DB``, then the SQLite file under ./data."""
    url = url or os.environ.get(ENV_VAR) or DEFAULT_DB_URL
    parsed = make_url(url)
    # Users write postgresql://; we ship psycopg 3, not psycopg2.
    if parsed.drivername in ("postgresql", "postgres"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


# Rows per multi-row INSERT (SQLAlchemy's "insertmanyvalues"). Each row count is a different SQL string,
# and drivers keep prepared statements per string (sqlite3: 128 per connection, the biggest for the
# most rows): with one INSERT per article's claims, a worker kept a statement for every claim count it
# had met (13 MiB for counts of 1-150), so its memory crept up as rarer counts turned up. Pages of 16
# rows bound the shapes to 16 per table, all met in the first articles, at a round trip per 16 rows.
INSERT_PAGE_ROWS = 16


def make_engine(url: str | None = None, *, read_only: bool = False) -> Engine:
    url = resolve_db_url(url)
    if is_sqlite(url):
        db_path = make_url(url).database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60}, insertmanyvalues_page_size=INSERT_PAGE_ROWS)
        _configure_sqlite(engine, read_only=read_only)
    else:
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=5, insertmanyvalues_page_size=INSERT_PAGE_ROWS
        )
        if read_only:

            @event.listens_for(engine, "connect")
            def _pg_read_only(dbapi_conn, _record):  # pragma: no cover - trivial
                with dbapi_conn.cursor() as cur:
                    cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                dbapi_conn.commit()

    return engine


def _configure_sqlite(engine: Engine, *, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):
        # Python's sqlite3 opens transactions lazily and lets writers collide; take the write lock at
        # BEGIN (IMMEDIATE) so two processes queue on busy_timeout instead of failing on upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        if read_only:
            cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

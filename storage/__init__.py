"""Database layer: engine, models, migrations, idempotent writes, public views and queries."""

from storage.engine import DEFAULT_DB_URL, make_engine, resolve_db_url
from storage.schema import init_db

__all__ = ["DEFAULT_DB_URL", "init_db", "make_engine", "resolve_db_url"]

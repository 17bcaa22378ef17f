"""The clock that processes sharing a database go by when one judges another's claims.

Leases, run heartbeats and queue and poll claims are written by one process and judged by another
(taken over when stale, closed when silent). On PostgreSQL, shared by workers on several machines, those
timestamps come from the database server, so hosts whose clocks disagree (no NTP, a VM resumed from a
snapshot) neither take over each other's live work nor leave dead work unclaimed: a host five minutes
slow would otherwise write leases that look expired and claims that look stale to the others. A SQLite
file is shared by the processes of one machine, which have one clock: there it is that clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, text

from storage.types import utcnow


def database_now(conn: Connection) -> datetime:
    """The current time as every process sharing ``conn``'s database sees it (UTC, aware)."""
    if conn.dialect.name == "postgresql":
        # statement_timestamp(), not now(): now() is the transaction's start, and a transaction that
        # waited on a lock would date its writes back.
        return conn.execute(text("SELECT statement_timestamp()")).scalar_one().astimezone(UTC)
    return utcnow()

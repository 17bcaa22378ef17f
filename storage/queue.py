"""The durable fetch queue. Work is claimed in batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
write lock on SQLite), so two runs at once never take the same URL, and a crashed run's claims are
released for the next."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, exists, func, select, text, update

from storage.failures import MAX_ATTEMPTS, record_failure
from storage.models import FailureRow, QueuedUrl
from storage.owners import owner_is_gone, process_owner
from storage.writes import insert_ignore

STALE_CLAIM = timedelta(minutes=30)
# Re-plan the queue's statistics once this share of its rows changed since the last ANALYZE (as
# autovacuum would, but now rather than up to a minute later, and also where autovacuum is off), and
# not for fewer than STATISTICS_MIN_CHANGES rows, so a small queue is not analysed on every batch.
STATISTICS_STALE_FRACTION = 0.1
STATISTICS_MIN_CHANGES = 1000
# A server process reports the rows its transactions changed when it next goes idle, at most once a
# second and otherwise after up to 10 s, so changes committed just before an ANALYZE can reach
# n_mod_since_analyze after it and read as new. For this long after an ANALYZE only the caller's own
# count (``added``) is believed.
STATISTICS_SETTLE_S = 10.0
# pg_try_advisory_xact_lock key: one ANALYZE at a time; the other workers skip rather than queue up.
_ANALYZE_LOCK = 0x636C61696D  # "claim"


@dataclass(frozen=True)
class QueueEntry:
    url: str
    url_key: str
    origin: str
    feed_id: int | None = None
    title: str | None = None
    feed_published_at: datetime | None = None


@dataclass(frozen=True)
class Work:
    id: int
    url: str
    origin: str
    feed_id: int | None
    title: str | None
    feed_published_at: datetime | None


def enqueue(conn: Connection, entries: Sequence[QueueEntry], now: datetime, run_id: int | None = None) -> int:
    return insert_ignore(
        conn,
        QueuedUrl.__table__,
        [
            {
                "url": e.url,
                "url_key": e.url_key,
                "origin": e.origin,
                "feed_id": e.feed_id,
                "title": e.title,
                "feed_published_at": e.feed_published_at,
                "status": "pending",
                "added_at": now,
                "run_id": run_id,
            }
            for e in entries
        ],
        ["url_key"],
    )


def release_dead_claims(conn: Connection) -> int:
    """Put back work claimed by processes on this host that no longer exist (killed, crashed)."""
    host = socket.gethostname()
    rows = conn.execute(
        select(QueuedUrl.id, QueuedUrl.claimed_by).where(
            QueuedUrl.status == "fetching", QueuedUrl.claimed_by.like(f"{host}:%")
        )
    ).all()
    dead = [r.id for r in rows if owner_is_gone(r.claimed_by)]
    if dead:
        conn.execute(update(QueuedUrl).where(QueuedUrl.id.in_(dead)).values(status="pending", claimed_by=None))
    return len(dead)


def release_claims(conn: Connection, work_ids: Sequence[int]) -> int:
    """Hand back work this process claimed and will not process (its run is stopping): pending again, for
    whichever worker claims next. Rows another worker has taken since are left alone."""
    if not work_ids:
        return 0
    return conn.execute(
        update(QueuedUrl)
        .where(
            QueuedUrl.id.in_(list(work_ids)), QueuedUrl.status == "fetching", QueuedUrl.claimed_by == process_owner()
        )
        .values(status="pending", claimed_by=None)
    ).rowcount


def _due_failure(now: datetime, force: bool):
    condition = and_(
        FailureRow.kind == "url",
        FailureRow.target == QueuedUrl.url,
        FailureRow.resolved_at.is_(None),
        FailureRow.gave_up == 0,
    )
    if not force:
        condition = and_(condition, FailureRow.next_retry_at <= now)
    return exists().where(condition)


def _claimable_parts(
    now: datetime,
    origins: Sequence[str],
    retry_failures: bool,
    force_retries: bool,
    only_retries: bool,
) -> list:
    """Rows a worker may take, one condition per status: pending ones, stale claims, and failed ones whose
    retry is due. Each is queried on its own: a single OR of the three makes the planner (SQLite's
    multi-index OR, PostgreSQL's bitmap OR) gather every matching row and sort them all to return the
    first few, so each claim read the whole pending queue; one status at a time walks the (status, id)
    index in order and stops at the limit."""
    of_origin = QueuedUrl.origin.in_(list(origins))
    parts = []
    if not only_retries:
        parts += [
            and_(QueuedUrl.status == "pending", of_origin),
            and_(QueuedUrl.status == "fetching", QueuedUrl.claimed_at < now - STALE_CLAIM, of_origin),
        ]
    if retry_failures or only_retries:
        parts.append(and_(QueuedUrl.status == "failed", _due_failure(now, force_retries), of_origin))
    return parts


def has_claimable(
    conn: Connection,
    *,
    now: datetime,
    origins: Sequence[str] = ("feed", "backfill"),
    retry_failures: bool = True,
    force_retries: bool = False,
    only_retries: bool = False,
) -> bool:
    """Whether ``claim_batch`` with the same arguments would find anything (claims nothing itself)."""
    parts = _claimable_parts(now, origins, retry_failures, force_retries, only_retries)
    return any(conn.execute(select(exists().where(part))).scalar_one() for part in parts)


def refresh_statistics(conn: Connection, added: int = 0, settle_s: float = STATISTICS_SETTLE_S) -> bool:
    """On PostgreSQL, ANALYZE the queue when its statistics no longer describe it. Returns whether it did.

    A claim's plan depends on how common the planner thinks each status is. Statistics taken before a
    big enqueue (or none, on a new table) say 'pending' is rare, and each claim then gathers and sorts
    every pending row (100,000 pending: ~40-60 ms per claim instead of ~0.05); statistics taken before
    a drain say it is everywhere, and each claim walks the primary key past every row already done.
    ``added``: rows this transaction's caller just enqueued (the server's own counters lag by a second
    or so, and within ``settle_s`` of an ANALYZE they are not believed: see STATISTICS_SETTLE_S).
    SQLite plans these queries from the index alone and needs nothing."""
    if conn.dialect.name != "postgresql":
        return False
    known, reported, analysed_s_ago = conn.execute(
        text(
            "SELECT c.reltuples, coalesce(s.n_mod_since_analyze, 0),"
            " extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze)) FROM pg_class c"
            " LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = CAST(:table AS regclass)"
        ),
        {"table": QueuedUrl.__tablename__},
    ).one()
    settling = analysed_s_ago is not None and analysed_s_ago < settle_s
    changed = added if settling else max(reported, added)
    if changed < STATISTICS_MIN_CHANGES or (known >= 0 and changed < STATISTICS_STALE_FRACTION * known):
        return False
    if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _ANALYZE_LOCK}).scalar_one():
        return False  # another worker is analysing it right now
    conn.execute(text(f"ANALYZE {QueuedUrl.__tablename__}"))
    return True


def claim_batch(
    conn: Connection,
    *,
    limit: int,
    now: datetime,
    origins: Sequence[str] = ("feed", "backfill"),
    retry_failures: bool = True,
    force_retries: bool = False,
    only_retries: bool = False,
) -> list[Work]:
    """Claim up to ``limit`` URLs, lowest ids first: pending ones, stale claims, and failed ones whose
    retry is due. Reads about ``limit`` rows per kind, however long the queue."""
    columns = (
        QueuedUrl.id,
        QueuedUrl.url,
        QueuedUrl.origin,
        QueuedUrl.feed_id,
        QueuedUrl.title,
        QueuedUrl.feed_published_at,
    )
    rows = []
    for part in _claimable_parts(now, origins, retry_failures, force_retries, only_retries):
        query = select(*columns).where(part).order_by(QueuedUrl.id).limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=QueuedUrl.__table__)
        rows += conn.execute(query).all()
    # On PostgreSQL the rows beyond the limit stay locked until commit: harmless, others skip them briefly.
    rows = sorted(rows, key=lambda r: r.id)[:limit]
    if rows:
        conn.execute(
            update(QueuedUrl)
            .where(QueuedUrl.id.in_([r.id for r in rows]))
            .values(status="fetching", claimed_at=now, claimed_by=process_owner())
        )
    return [Work(r.id, r.url, r.origin, r.feed_id, r.title, r.feed_published_at) for r in rows]


def mark_done(conn: Connection, work_id: int, now: datetime, article_id: int | None, status: str = "done") -> None:
    conn.execute(
        update(QueuedUrl)
        .where(QueuedUrl.id == work_id)
        .values(status=status, article_id=article_id, done_at=now, claimed_by=None)
    )


def record_url_failure(
    conn: Connection,
    work: Work,
    *,
    stage: str,
    error: str,
    now: datetime,
    retry_after_s: float | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> bool:
    """Record why ``work`` failed and put its queue row aside: 'failed' until its retry is due, or
    'gave_up' after ``max_attempts``. Returns whether it gave up. A row that gave up is never claimed
    again, so it leaves the 'failed' status that claims look through."""
    gave_up = record_failure(
        conn,
        kind="url",
        target=work.url,
        stage=stage,
        error=error,
        now=now,
        retry_after_s=retry_after_s,
        max_attempts=max_attempts,
    )
    conn.execute(
        update(QueuedUrl)
        .where(QueuedUrl.id == work.id)
        .values(status="gave_up" if gave_up else "failed", claimed_by=None)
    )
    return gave_up


def counts(conn: Connection) -> dict[str, int]:
    return dict(conn.execute(select(QueuedUrl.status, func.count()).group_by(QueuedUrl.status)).all())

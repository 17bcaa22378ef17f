"""Per-feed polling state, in the manner of Media Cloud's rss-fetcher: one row per feed holding
validators (ETag, Last-Modified, body hash), outcome counters and the next time to poll."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select, update

from extractors.records import FeedItem
from storage.models import Feed, FeedEntry
from storage.writes import insert_ignore

MAX_BACKOFF_S = 24 * 3600
ERROR_CHARS = 2000  # of a failure's message or a malformed body's warning kept in feeds.last_error


@dataclass(frozen=True)
class FeedConfig:
    url: str
    name: str | None = None
    tags: tuple[str, ...] = ()
    poll_interval_s: int = 900
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedState:
    id: int
    url: str
    name: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    poll_interval_s: int
    consecutive_failures: int
    items_seen: int


def failure_backoff_s(
    interval_s: int, failures: int, retry_after_s: float | None = None, cap_s: int = MAX_BACKOFF_S
) -> float:
    """Delay before the next poll after ``failures`` consecutive failures: exponential with a cap,
    never sooner than the server's Retry-After."""
    delay = min(cap_s, interval_s * (2 ** max(0, failures - 1)))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, cap_s))
    return delay


def sync_feeds(conn: Connection, configs: Sequence[FeedConfig]) -> dict[str, int]:
    """Make sure every configured feed has a row; update names, tags and intervals. Returns url → id."""
    insert_ignore(
        conn,
        Feed.__table__,
        [
            {
                "url": c.url,
                "name": c.name,
                "tags": json.dumps(list(c.tags)),
                "poll_interval_s": c.poll_interval_s,
                "consecutive_failures": 0,
                "items_seen": 0,
            }
            for c in configs
        ],
        ["url"],
    )
    for c in configs:
        conn.execute(
            update(Feed)
            .where(Feed.url == c.url)
            .values(name=c.name, tags=json.dumps(list(c.tags)), poll_interval_s=c.poll_interval_s)
        )
    rows = conn.execute(select(Feed.url, Feed.id).where(Feed.url.in_([c.url for c in configs]))).all()
    return {url: feed_id for url, feed_id in rows}


POLL_CLAIM = timedelta(minutes=10)


def due_feeds(conn: Connection, urls: Sequence[str], now: datetime, *, claim: bool = True) -> list[FeedState]:
    """Feeds whose next poll is due. With ``claim`` they are taken for this run: their next poll moves
    ahead by a short lease, so a concurrent run (another worker) polls the others, not these."""
    query = (
        select(Feed.__table__)
        .where(Feed.url.in_(list(urls)), or_(Feed.next_poll_at.is_(None), Feed.next_poll_at <= now))
        .order_by(Feed.next_poll_at.is_(None).desc(), Feed.next_poll_at, Feed.id)
    )
    if claim and conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if claim and rows:
        conn.execute(update(Feed).where(Feed.id.in_([r.id for r in rows])).values(next_poll_at=poll_claim_until(now)))
    return [
        FeedState(
            f.id,
            f.url,
            f.name,
            f.etag,
            f.last_modified,
            f.body_hash,
            f.poll_interval_s,
            f.consecutive_failures,
            f.items_seen,
        )
        for f in rows
    ]


def poll_claim_until(claimed_at: datetime) -> datetime:
    """The ``next_poll_at`` that ``due_feeds`` gives the feeds it takes at ``claimed_at``."""
    return claimed_at + POLL_CLAIM


def release_poll_claims(conn: Connection, feed_ids: Sequence[int], claimed_at: datetime, now: datetime) -> int:
    """Hand back feeds taken at ``claimed_at`` whose poll was never recorded (the run was stopped, its poll
    process died): they are due again at once rather than when the claim runs out. A feed whose poll
    was recorded has a ``next_poll_at`` of its own by then and is left alone. Returns how many."""
    if not feed_ids:
        return 0
    result = conn.execute(
        update(Feed)
        .where(Feed.id.in_(list(feed_ids)), Feed.next_poll_at == poll_claim_until(claimed_at))
        .values(next_poll_at=now)
    )
    return result.rowcount


def record_poll_success(
    conn: Connection,
    feed: FeedState,
    *,
    status: str,
    now: datetime,
    etag: str | None = None,
    last_modified: str | None = None,
    body_hash: str | None = None,
    warning: str | None = None,
) -> None:
    """A feed answered. ``warning``: what was wrong with a body whose items were kept anyway (a malformed
    feed), kept in ``last_error`` until a new body parses cleanly; the feed is not failing."""
    values = {
        "last_polled_at": now,
        "last_success_at": now,
        "last_status": status,
        "consecutive_failures": 0,
        "next_poll_at": now + timedelta(seconds=feed.poll_interval_s),
    }
    if status == "ok":  # a 304 keeps the validators we sent, and what was said of the body they stand for
        values.update(
            etag=etag, last_modified=last_modified, body_hash=body_hash, last_error=warning and warning[:ERROR_CHARS]
        )
    elif feed.consecutive_failures:
        values["last_error"] = None  # the failure's message, not the body's
    conn.execute(update(Feed).where(Feed.id == feed.id).values(**values))


def record_poll_failure(
    conn: Connection,
    feed: FeedState,
    *,
    error: str,
    now: datetime,
    retry_after_s: float | None = None,
    charge: bool = True,
) -> float:
    """Record a failed poll. ``charge=False`` (our own outage) keeps the failure count and schedule."""
    failures = feed.consecutive_failures + 1 if charge else feed.consecutive_failures
    delay = failure_backoff_s(feed.poll_interval_s, failures, retry_after_s) if charge else feed.poll_interval_s
    conn.execute(
        update(Feed)
        .where(Feed.id == feed.id)
        .values(
            last_polled_at=now,
            last_status="failed" if charge else "outage",
            consecutive_failures=failures,
            last_error=error[:ERROR_CHARS],
            next_poll_at=now + timedelta(seconds=delay),
        )
    )
    return delay


def new_items(conn: Connection, feed: FeedState, items: Sequence[FeedItem], now: datetime) -> list[FeedItem]:
    """Record the feed's items as seen and return those never seen before (by GUID, then URL)."""
    if not items:
        return []
    keys = [i.key for i in items]
    urls = [i.canonical_url for i in items]
    seen_keys: set[str] = set()
    seen_urls: set[str] = set()
    for chunk in range(0, len(items), 400):
        rows = conn.execute(
            select(FeedEntry.entry_key, FeedEntry.url).where(
                FeedEntry.feed_id == feed.id,
                or_(FeedEntry.entry_key.in_(keys[chunk : chunk + 400]), FeedEntry.url.in_(urls[chunk : chunk + 400])),
            )
        ).all()
        seen_keys.update(r.entry_key for r in rows)
        seen_urls.update(r.url for r in rows)
    fresh = [i for i in items if i.key not in seen_keys and i.canonical_url not in seen_urls]
    inserted = insert_ignore(
        conn,
        FeedEntry.__table__,
        [{"feed_id": feed.id, "entry_key": i.key, "url": i.canonical_url, "seen_at": now} for i in fresh],
        ["feed_id", "entry_key"],
    )
    if inserted:
        conn.execute(update(Feed).where(Feed.id == feed.id).values(items_seen=Feed.items_seen + inserted))
    return fresh

"""The poll stage as plain functions: ask every due feed for news, record its state, queue new items.

No Prefect here, and nothing of the drain's (no NLP model, no page extraction): an ingest run polls in a
process of its own (flows/poll_process.py), which imports this module and what it needs only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine

from extractors.feeds import FeedParseError, body_hash, newest_first, parse_feed
from extractors.records import Failure, FeedItem
from flows.fetch import Fetcher, FetchError, Validators, failure_from
from flows.settings import Settings
from storage import feed_state, queue
from storage.clock import database_now
from storage.failures import record_failure, resolve_failure
from storage.runs import RunStats


@dataclass
class PollOutcome:
    """What a poll keeps of one feed's answer until it is written (see ``_PollWriter``): its items and
    validators, not its body. Real feeds that carry every article's full text run to megabytes each."""

    feed: feed_state.FeedState
    status: str  # 'ok' | 'not_modified' | 'unchanged' | 'failed'
    items: list[FeedItem] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None  # of an 'ok' body: next time, the same bytes are 'unchanged'
    failure: Failure | None = None
    warning: str | None = None


async def _poll_one(fetcher: Fetcher, feed: feed_state.FeedState) -> PollOutcome:
    try:
        page = await fetcher.fetch(feed.url, kind="feed", validators=Validators(feed.etag, feed.last_modified))
    except FetchError as exc:
        return PollOutcome(feed, "failed", failure=failure_from(exc, "feed", feed.url, "poll"))
    validators = {"etag": page.headers.get("etag"), "last_modified": page.headers.get("last-modified")}
    if page.status == 304:
        return PollOutcome(feed, "not_modified", **validators)
    digest = body_hash(page.body)
    if feed.body_hash and digest == feed.body_hash:
        return PollOutcome(feed, "unchanged", **validators)  # servers lie about validators; bytes don't
    try:
        parsed = parse_feed(page.body, page.final_url, headers=page.headers)
    except FeedParseError as exc:
        return PollOutcome(feed, "failed", failure=Failure("feed", feed.url, "parse", str(exc)))
    warning = f"malformed feed, items kept: {parsed.bozo_message}" if parsed.bozo else None
    return PollOutcome(feed, "ok", items=parsed.items, body_hash=digest, warning=warning, **validators)


async def _poll_all(
    settings: Settings, feeds: Sequence[feed_state.FeedState], write: Callable[[PollOutcome], None]
) -> None:
    """Poll ``feeds`` side by side, handing each outcome to ``write`` as it arrives (no task keeps one)."""
    async with Fetcher(settings) as fetcher:

        async def one(feed: feed_state.FeedState) -> None:
            write(await _poll_one(fetcher, feed))

        await asyncio.gather(*[one(f) for f in feeds])


# Answered feeds are written a few at a time as they arrive, not once the whole batch has answered. Held
# until the end, a batch of 200 feeds of 50 items was 10,000 parsed items alive at once, and much of the
# memory Python took for them stayed with the process afterwards: the few objects that outlive a poll
# (urllib's, sqlite3's, SQLAlchemy's and feedparser's caches) pin the arenas they landed in. Polling 200
# full-text feeds of 50 items left the process 11.8 MiB larger and peaked 25.4-25.9 MiB over its start;
# written as they come, 5.3 and 17.5-17.8 (benchmarks/poll_memory.py --items 50).
POLL_WRITE_ITEMS = 200


class _PollWriter:
    """Records a poll batch's outcomes: answers as they come (``POLL_WRITE_ITEMS`` items at a time), and
    failures once every feed has answered, because only then is it known whether all of them failed
    (then the outage is ours, and no feed is charged).

    Answers join the queue in the order they arrive. Written in the feeds' order instead, they would
    wait behind any slower feed listed before them (answers from 200 feeds on one host arrived up to 149
    places out of order here: 8.9-10.5 MiB left after the poll instead of ~5), which would keep most of
    what writing them early saves. So when two feeds carry copies of one story, which copy is stored first
    (and becomes the original the other points to) follows the answers' order, as it already followed
    the workers' timing with more than one worker."""

    def __init__(self, engine: Engine, settings: Settings, feed_count: int, run_id: int | None):
        self.engine, self.settings, self.feed_count, self.run_id = engine, settings, feed_count, run_id
        self.stats = RunStats()
        self.enqueued = 0
        self.answers: list[PollOutcome] = []
        self.answer_items = 0
        self.failures: list[PollOutcome] = []

    def __call__(self, outcome: PollOutcome) -> None:
        if outcome.status == "failed":
            self.failures.append(outcome)
            return
        self.answers.append(outcome)
        self.answer_items += len(outcome.items)
        if self.answer_items >= POLL_WRITE_ITEMS:
            # On the event loop, synchronously: other feeds' answers wait meanwhile in their sockets, and a
            # write of 200 items is milliseconds against the seconds a feed may take to answer.
            self.write_answers()

    def write_answers(self) -> None:
        if not self.answers:
            return
        with self.engine.begin() as conn:
            # The feeds' next polls are compared with other hosts' claims: one clock (storage/clock.py).
            now = database_now(conn)
            for outcome in self.answers:
                self._record_answer(conn, outcome, now)
        self.answers, self.answer_items = [], 0

    def finish(self) -> RunStats:
        self.write_answers()
        failed = self.failures
        # Every feed failing at the fetch stage at once says more about our network than about the feeds.
        outage = (
            self.feed_count > 1 and len(failed) == self.feed_count and all(o.failure.stage == "poll" for o in failed)
        )
        if outage:
            self.stats.extra["outage"] = "every feed failed to answer: likely our own network; feeds not charged"
        if failed:
            with self.engine.begin() as conn:
                now = database_now(conn)
                for outcome in failed:
                    self._record_failure(conn, outcome, now, outage)
        if self.enqueued:
            with self.engine.begin() as conn:
                queue.refresh_statistics(conn, added=self.enqueued)
        return self.stats

    def _record_failure(self, conn: Connection, outcome: PollOutcome, now: datetime, outage: bool) -> None:
        self.stats.feeds_polled += 1
        self.stats.feeds_failed += 1
        error = f"{outcome.failure.stage}: {outcome.failure.error}"
        if outage:
            error = f"not charged (every feed failed: likely our own outage): {error}"
        feed_state.record_poll_failure(
            conn, outcome.feed, error=error, now=now, retry_after_s=outcome.failure.retry_after_s, charge=not outage
        )
        if not outage:
            record_failure(
                conn,
                kind="feed",
                target=outcome.feed.url,
                stage=outcome.failure.stage,
                error=outcome.failure.error,
                now=now,
                retry_after_s=outcome.failure.retry_after_s,
                max_attempts=10**6,
            )  # feeds are never given up on, only backed off

    def _record_answer(self, conn: Connection, outcome: PollOutcome, now: datetime) -> None:
        feed = outcome.feed
        self.stats.feeds_polled += 1
        feed_state.record_poll_success(
            conn,
            feed,
            status=outcome.status if outcome.status != "unchanged" else "not_modified",
            now=now,
            etag=outcome.etag,
            last_modified=outcome.last_modified,
            body_hash=outcome.body_hash,
            warning=outcome.warning,
        )
        if feed.consecutive_failures:  # only a feed that was failing has a failure row to close
            resolve_failure(conn, kind="feed", target=feed.url, now=now)
        if outcome.status != "ok":
            self.stats.feeds_not_modified += 1
            return
        first_poll = feed.items_seen == 0
        fresh = feed_state.new_items(conn, feed, outcome.items, now)
        if first_poll:
            fresh = newest_first(fresh)[: self.settings.max_initial_items]
        self.enqueued += queue.enqueue(
            conn,
            [
                queue.QueueEntry(
                    url=i.url,
                    url_key=i.canonical_url,
                    origin="feed",
                    feed_id=feed.id,
                    title=i.title,
                    feed_published_at=i.published_at,
                )
                for i in fresh
            ],
            now,
            self.run_id,
        )
        self.stats.extra["items_new"] = self.stats.extra.get("items_new", 0) + len(fresh)


def poll_feeds(
    engine: Engine, settings: Settings, feeds: Sequence[feed_state.FeedState], run_id: int | None = None
) -> RunStats:
    """Poll feeds, update their state and enqueue new items. Returns the counts for the run."""
    if not feeds:
        return RunStats()
    started = time.perf_counter()
    writer = _PollWriter(engine, settings, len(feeds), run_id)
    asyncio.run(_poll_all(settings, feeds, writer))
    stats = writer.finish()
    stats.extra["poll_s"] = time.perf_counter() - started
    return stats

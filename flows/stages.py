"""Batch stages as plain functions: poll feeds, then fetch → extract → claims → store a queue batch.

No Prefect here: flows/ingest.py and flows/backfill.py wrap these in tasks; tests call them directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import Connection, Engine

from extractors.article import forget_page_caches
from extractors.feeds import FeedParseError, body_hash, newest_first, parse_feed
from extractors.pipeline import PageJob, stream_pages
from extractors.records import Failure, FeedItem, Page, ProcessedArticle
from extractors.relevance import TopicModel
from flows.allocator import release_free_memory
from flows.fetch import Fetcher, FetchError, Validators, failure_from
from flows.settings import Settings
from storage import feed_state, queue
from storage.articles import save_processed
from storage.failures import record_failure, resolve_failure
from storage.runs import RunStats
from storage.seed import load_seed_documents

log = logging.getLogger("claimwire")


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


@lru_cache(maxsize=8)
def topic_model(keywords: tuple[str, ...]) -> TopicModel:
    return TopicModel.from_texts([d.article.text for d in load_seed_documents()], keywords)


class _LockedExtractor:
    """One model per process, used by one thread at a time (spaCy pipelines are not thread-safe)."""

    def __init__(self):
        import threading

        from extractors.claims import ClaimExtractor

        self._inner = ClaimExtractor()
        self._lock = threading.Lock()
        self.version = self._inner.version

    def extract_many(self, texts):
        with self._lock:
            return self._inner.extract_many(texts)

    def extract_each(self, texts):
        # Held until the stream ends (or fails, before the pipeline's one-by-one retry asks again).
        with self._lock:
            yield from self._inner.extract_each(texts)


@lru_cache(maxsize=1)
def claim_extractor() -> _LockedExtractor:
    return _LockedExtractor()


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
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
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
            now = datetime.now(UTC)
            with self.engine.begin() as conn:
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


async def _fetch_all(settings: Settings, work: Sequence[queue.Work]) -> list[Page | FetchError]:
    async with Fetcher(settings) as fetcher:

        async def one(item: queue.Work):
            try:
                return await fetcher.fetch(item.url, kind="page")
            except FetchError as exc:
                return exc

        return await asyncio.gather(*[one(w) for w in work])


@dataclass
class FetchedBatch:
    """A claimed batch with its fetch results, ready for the CPU stages."""

    work: list[queue.Work]
    results: list[Page | FetchError | None]  # a page is set to None once handed to extraction
    fetch_s: float
    claimed_at: datetime


def claim_and_fetch(
    engine: Engine,
    settings: Settings,
    *,
    origins: Sequence[str],
    force_retries: bool = False,
    only_retries: bool = False,
    retry_failures: bool = True,
) -> FetchedBatch:
    """Claim one batch from the queue and fetch it (I/O only; runs ahead in a thread, see drain)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        # The drain itself turns pending rows into done ones; statistics refreshed here are already the
        # ones this transaction's claim is planned with.
        queue.refresh_statistics(conn)
        queue.release_dead_claims(conn)
        work = queue.claim_batch(
            conn,
            limit=settings.batch_size,
            now=now,
            origins=origins,
            retry_failures=retry_failures,
            force_retries=force_retries,
            only_retries=only_retries,
        )
    if not work:
        return FetchedBatch([], [], 0.0, now)
    t0 = time.perf_counter()
    results = asyncio.run(_fetch_all(settings, work))
    return FetchedBatch(work, results, time.perf_counter() - t0, now)


def process_fetched(engine: Engine, settings: Settings, batch: FetchedBatch) -> RunStats:
    """Extraction, claims and storage for a fetched batch; every failure becomes a failure row.

    Articles are stored one by one as their claims come out of the model (see ``stream_pages``), so
    a worker holds one article's results at a time, not the batch's; each page is let go once read."""
    stats = RunStats()
    failures: list[tuple[queue.Work, Failure]] = []
    job_work: list[queue.Work] = []

    def jobs() -> Iterator[PageJob]:
        for position, (item, result) in enumerate(zip(batch.work, batch.results, strict=True)):
            batch.results[position] = None  # the page's bytes go with its job, not with the batch
            if isinstance(result, FetchError):
                failures.append((item, failure_from(result, "url", item.url)))
                continue
            job_work.append(item)
            yield PageJob(
                page=result, origin=item.origin, feed_title=item.title, feed_published_at=item.feed_published_at
            )

    started = time.perf_counter()
    store_s = 0.0
    results = stream_pages(
        jobs(),
        topic=topic_model(tuple(settings.keywords)),
        claims=claim_extractor() if settings.extract_claims else None,
        relevance_threshold=settings.relevance_threshold,
        now=batch.claimed_at,
    )
    with closing(results):  # a store that raises must not leave the model's lock held by a paused stream
        for number, result in results:
            if isinstance(result, Failure):
                failures.append((job_work[number], result))
                continue
            t0 = time.perf_counter()
            _store_one(engine, job_work[number], result, stats)
            store_s += time.perf_counter() - t0
    extract_claims_s = time.perf_counter() - started - store_s
    t0 = time.perf_counter()
    for item, failure in failures:
        with engine.begin() as conn:
            queue.record_url_failure(
                conn,
                item,
                stage=failure.stage,
                error=failure.error,
                now=datetime.now(UTC),
                retry_after_s=failure.retry_after_s,
                max_attempts=settings.max_attempts,
            )
        stats.articles_failed += 1
    store_s += time.perf_counter() - t0
    stats.extra.update({"fetch_s": batch.fetch_s, "extract_claims_s": extract_claims_s, "store_s": store_s})
    return stats


def process_batch(
    engine: Engine, settings: Settings, *, origins: Sequence[str], **claim_options
) -> tuple[RunStats, int]:
    """One batch through every stage. Returns (stats, URLs claimed); 0 claimed: the queue is drained."""
    batch = claim_and_fetch(engine, settings, origins=origins, **claim_options)
    if not batch.work:
        return RunStats(), 0
    return process_fetched(engine, settings, batch), len(batch.work)


def drain(
    engine: Engine, settings: Settings, *, origins: Sequence[str], max_batches: int | None = None, **claim_options
) -> RunStats:
    """Drain the queue batch by batch, fetching the next batch in a thread while this one is processed,
    so network waits overlap with the CPU-bound extraction."""
    from concurrent.futures import ThreadPoolExecutor

    total = RunStats()
    batches = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as prefetch:
        upcoming = prefetch.submit(claim_and_fetch, engine, settings, origins=origins, **claim_options)
        while True:
            batch = upcoming.result()
            if not batch.work:
                break
            batches += 1
            more = max_batches is None or batches < max_batches
            if more:
                upcoming = prefetch.submit(claim_and_fetch, engine, settings, origins=origins, **claim_options)
            total.add(process_fetched(engine, settings, batch))
            del batch
            forget_page_caches()
            release_free_memory()
            if not more:
                break
    total.extra["batches"] = batches
    return total


def _store_one(engine: Engine, item: queue.Work, processed: ProcessedArticle, stats: RunStats) -> None:
    """One article, its claims and its queue row in one transaction: all of it or none of it."""
    with engine.begin() as conn:
        stored = save_processed(conn, processed, feed_id=item.feed_id)
        queue.mark_done(
            conn, item.id, datetime.now(UTC), stored.article_id, status="done" if stored.created else "duplicate"
        )
        resolve_failure(conn, kind="url", target=item.url, now=datetime.now(UTC))
    if stored.created and stored.duplicate_of is None:
        stats.articles_new += 1
    else:
        stats.articles_duplicate += 1
    stats.claims_new += stored.claims_written


def load_seed_corpus(engine: Engine, settings: Settings) -> RunStats:
    """Store the shipped seed corpus (origin 'seed') with claims; a no-op once it is stored."""
    from sqlalchemy import select

    from extractors.pipeline import process_texts
    from storage.models import ArticleRow

    stats = RunStats()
    documents = load_seed_documents()
    with engine.connect() as conn:
        stored = set(conn.execute(select(ArticleRow.canonical_url).where(ArticleRow.origin == "seed")).scalars())
    missing = [d for d in documents if d.article.canonical_url not in stored]
    if not missing:
        return stats
    processed = process_texts(
        [d.article for d in missing],
        origin="seed",
        topic=None,
        claims=claim_extractor() if settings.extract_claims else None,
        relevance_threshold=0.0,
        outlets=[d.outlet for d in missing],
    )
    for result in processed:
        if isinstance(result, Failure):  # left unstored, so the next init tries it again
            log.warning("seed article not loaded: %s: %s", result.target, result.error)
            stats.articles_failed += 1
            continue
        with engine.begin() as conn:
            saved = save_processed(conn, result)
        stats.articles_new += int(saved.created)
        stats.claims_new += saved.claims_written
    return stats

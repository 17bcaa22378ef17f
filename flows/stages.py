"""Batch stages as plain functions: fetch → extract → claims → store a queue batch (the poll: flows/poll.py).

No Prefect here: flows/ingest.py and flows/backfill.py wrap these in tasks; tests call them directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Engine

from extractors.article import forget_page_caches
from extractors.pipeline import PageJob, stream_pages
from extractors.records import Failure, Page, ProcessedArticle
from extractors.relevance import TopicModel
from flows.allocator import release_free_memory
from flows.fetch import Fetcher, FetchError, failure_from
from flows.settings import Settings
from storage import queue
from storage.articles import save_processed
from storage.clock import database_now
from storage.failures import resolve_failure
from storage.runs import RunStats
from storage.seed import load_seed_documents

log = logging.getLogger("claimwire")


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


async def _fetch_all(settings: Settings, work: Sequence[queue.Work]) -> list[Page | FetchError]:
    async with Fetcher(settings) as fetcher:

        async def one(item: queue.Work):
            try:
                return await fetcher.fetch(item.url, kind="page")
            except FetchError as exc:
                return exc.detached()  # kept with the batch's pages, after the fetcher is gone

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
    with engine.begin() as conn:
        now = database_now(conn)  # the claim's time, judged stale by other hosts' workers (storage/clock.py)
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


def _never() -> bool:
    return False


def process_fetched(
    engine: Engine, settings: Settings, batch: FetchedBatch, should_stop: Callable[[], bool] = _never
) -> RunStats:
    """Extraction, claims and storage for a fetched batch; every failure becomes a failure row.

    Articles are stored one by one as their claims come out of the model (see ``stream_pages``), so
    a worker holds one article's results at a time, not the batch's; each page is let go once read.
    When ``should_stop`` turns true the batch ends after the article in hand, and what it had not
    reached goes back to the queue (flows/stopping.py)."""
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
    handled: set[int] = set()
    with closing(results):  # a store that raises must not leave the model's lock held by a paused stream
        for number, result in results:
            handled.add(job_work[number].id)
            if isinstance(result, Failure):
                failures.append((job_work[number], result))
            else:
                t0 = time.perf_counter()
                _store_one(engine, job_work[number], result, stats)
                store_s += time.perf_counter() - t0
            if should_stop():
                break
    extract_claims_s = time.perf_counter() - started - store_s
    t0 = time.perf_counter()
    for item, failure in failures:
        with engine.begin() as conn:
            queue.record_url_failure(
                conn,
                item,
                stage=failure.stage,
                error=failure.error,
                now=database_now(conn),  # its retry time is compared with other hosts' claims
                retry_after_s=failure.retry_after_s,
                max_attempts=settings.max_attempts,
            )
        stats.articles_failed += 1
    handled.update(item.id for item, _ in failures)  # fetch failures never reach the stream
    unreached = [item.id for item in batch.work if item.id not in handled]
    if unreached:
        with engine.begin() as conn:
            queue.release_claims(conn, unreached)
        stats.extra["articles_handed_back"] = len(unreached)
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
    engine: Engine,
    settings: Settings,
    *,
    origins: Sequence[str],
    max_batches: int | None = None,
    should_stop: Callable[[], bool] = _never,
    **claim_options,
) -> RunStats:
    """Drain the queue batch by batch, fetching the next batch in a thread while this one is processed,
    so network waits overlap with the CPU-bound extraction. Ends early, after the article in hand, once
    ``should_stop`` turns true; whatever it had claimed and not processed goes back to the queue."""
    from concurrent.futures import ThreadPoolExecutor

    total = RunStats()
    batches = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as prefetch:
        upcoming = prefetch.submit(claim_and_fetch, engine, settings, origins=origins, **claim_options)
        while True:
            batch = upcoming.result()
            if not batch.work:
                break
            if should_stop():  # a batch fetched ahead that will not be processed
                with engine.begin() as conn:
                    queue.release_claims(conn, [item.id for item in batch.work])
                total.extra["articles_handed_back"] = total.extra.get("articles_handed_back", 0) + len(batch.work)
                break
            batches += 1
            more = (max_batches is None or batches < max_batches) and not should_stop()
            if more:
                upcoming = prefetch.submit(claim_and_fetch, engine, settings, origins=origins, **claim_options)
            total.add(process_fetched(engine, settings, batch, should_stop))
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
        now = database_now(conn)
        queue.mark_done(conn, item.id, now, stored.article_id, status="done" if stored.created else "duplicate")
        resolve_failure(conn, kind="url", target=item.url, now=now)
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

"""An ingest run's poll happens in a child process that exits when the poll is over.

The flow's process lives through the whole drain, and with one worker on threads (the default) it is
the process that parses every article. A poll parses every new feed item: 10,000 of them for 200 feeds
of 50. Most of what Python takes for them is freed again, but the few objects that outlive a poll
(urllib's, sqlite3's, SQLAlchemy's and feedparser's caches) pin the pymalloc arenas they landed in, so a
poll left the polling process 2.3 MiB larger for 1,000 items and 5 MiB for 10,000, and the drain's peaks
stood on top of that (benchmarks/RESULTS.md, "What a poll leaves behind"). A child process takes that
with it when it exits, so the drain starts from the same heap however many items the poll brought.

The child is started with ``spawn`` (the flow's process runs threads; forking it could copy a lock held
by one of them) at the run's first poll batch and serves every batch of the run, so a run pays one
process start, not one per batch: about a second, since it imports the poll stage (flows/poll.py) and
what that needs, not Prefect, spaCy or trafilatura.

The run's process takes each batch's due feeds itself (a claim, ``feed_state.due_feeds``) and hands them
to the child, so it knows what the child holds. A run that is stopped (SIGTERM, Ctrl-C) terminates the
child rather than wait for its feeds: one slow feed kept a stopped run waiting for the read timeout,
and a poll of a thousand feeds for the whole poll. Its feeds whose poll was not recorded are handed back,
due again at once, as are those of a child that died or failed; otherwise they would wait for their
claim to run out (``feed_state.POLL_CLAIM``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextvars import ContextVar

from flows.settings import Settings
from flows.stopping import terminate_pool_processes
from storage import feed_state, make_engine
from storage.clock import database_now
from storage.runs import RunStats

# The poll stage (flows/poll.py: the fetcher, feedparser) is imported where a poll runs, in the child:
# the run's process only claims and hands back feeds.


def poll_claimed_feeds(settings_json: str, feeds: list[feed_state.FeedState], run_id: int | None) -> RunStats:
    """Poll ``feeds``, already taken for this run by the caller; what the child process runs."""
    from flows.poll import poll_feeds

    settings = Settings.model_validate_json(settings_json)
    engine = make_engine(settings.db)
    try:
        return poll_feeds(engine, settings, feeds, run_id)
    finally:
        engine.dispose()


class PollProcess:
    """One child process for a run's poll batches, started at the first and stopped by ``close``."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def poll(self, settings_json: str, feed_urls: list[str], run_id: int | None) -> RunStats:
        started = time.perf_counter()
        engine = make_engine(Settings.model_validate_json(settings_json).db)
        try:
            with engine.begin() as conn:
                claimed_at = database_now(conn)  # other hosts judge the claim by it (storage/clock.py)
                due = feed_state.due_feeds(conn, feed_urls, claimed_at)
            if not due:
                return RunStats()
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            try:
                stats = self._pool.submit(poll_claimed_feeds, settings_json, due, run_id).result()
            except BaseException as exc:
                # Stopped (a signal, Ctrl-C): the child is terminated, not waited for. Died (killed, out of
                # memory: the batch's task retries in a new one) or failed: it is gone or done already.
                if not isinstance(exc, Exception) or isinstance(exc, BrokenProcessPool):
                    self.close(terminate=True)
                with engine.begin() as conn:
                    feed_state.release_poll_claims(conn, [f.id for f in due], claimed_at, database_now(conn))
                raise
        finally:
            engine.dispose()
        # The poll's time as the run saw it, the child's start included.
        stats.extra["poll_s"] = time.perf_counter() - started
        return stats

    def close(self, terminate: bool = False) -> None:
        if self._pool is not None:
            if terminate:
                terminate_pool_processes(self._pool)
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


_current: ContextVar[PollProcess | None] = ContextVar("claimwire_poll_process", default=None)


@contextlib.contextmanager
def polling_in_child_process() -> Iterator[None]:
    """Poll batches run inside the block (``poll``) share one child process, gone when the block ends."""
    process = PollProcess()
    token = _current.set(process)
    try:
        yield
    finally:
        _current.reset(token)
        process.close()


def poll(settings_json: str, feed_urls: list[str], run_id: int | None) -> RunStats:
    """Poll a batch in the block's child process; outside ``polling_in_child_process``, in a child of its own
    (claimed and handed back the same way)."""
    process = _current.get()
    if process is None:
        with polling_in_child_process():
            return poll(settings_json, feed_urls, run_id)
    return process.poll(settings_json, feed_urls, run_id)

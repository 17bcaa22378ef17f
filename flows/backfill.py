"""The ``backfill`` flow: URLs from a list, a feed or a sitemap, or due failures, through the same
queue, fetcher and stages as ingest. Resumable: the queue is in the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task

from extractors.dedup import canonical_url
from extractors.feeds import FeedParseError, parse_feed
from extractors.sitemaps import SitemapError, parse_sitemap
from flows.config import effective_settings
from flows.fetch import Fetcher, FetchError
from flows.ingest import drain_queue
from flows.runtime import engine_for, recorded_run
from flows.settings import Settings
from storage import feed_state, queue
from storage.clock import database_now

MAX_CHILD_SITEMAPS = 200


class BackfillSourceError(RuntimeError):
    """The source of a backfill (feed, sitemap, URL list) could not be read."""


def read_url_list(path: Path) -> list[str]:
    urls = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            urls.append(line)
    return urls


async def _fetch_body(settings: Settings, url: str, kind: str) -> tuple[bytes, dict]:
    async with Fetcher(settings) as fetcher:
        page = await fetcher.fetch(url, kind=kind)
    return page.body, page.headers


def feed_entries(settings: Settings, url: str, since: datetime | None) -> tuple[list[queue.QueueEntry], str | None]:
    try:
        body, headers = asyncio.run(_fetch_body(settings, url, "feed"))
        parsed = parse_feed(body, url, headers=headers)
    except (FetchError, FeedParseError) as exc:
        raise BackfillSourceError(f"feed {url}: {exc}") from exc
    items = [i for i in parsed.items if since is None or (i.published_at and i.published_at >= since)]
    return [
        queue.QueueEntry(i.url, i.canonical_url, "backfill", None, i.title, i.published_at) for i in items
    ], parsed.title


def sitemap_entries(settings: Settings, url: str, since: datetime | None) -> list[queue.QueueEntry]:
    pending, seen, entries = [url], set(), []
    while pending and len(seen) < MAX_CHILD_SITEMAPS:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        try:
            body, _ = asyncio.run(_fetch_body(settings, current, "feed"))
            sitemap = parse_sitemap(body)
        except (FetchError, SitemapError) as exc:
            if current == url:
                raise BackfillSourceError(f"sitemap {url}: {exc}") from exc
            continue  # one broken child sitemap does not stop the others
        pending.extend(sitemap.children)
        for entry in sitemap.entries:
            if since is None or (entry.published_at and entry.published_at >= since):
                entries.append(
                    queue.QueueEntry(
                        entry.url, canonical_url(entry.url), "backfill", None, entry.title, entry.published_at
                    )
                )
    return entries


@task(name="enqueue-backfill")
def enqueue_task(
    settings_json: str, urls_file: str | None, feed: str | None, sitemap: str | None, since: str | None, run_id: int
) -> int:
    settings = Settings.model_validate_json(settings_json)
    engine = engine_for(settings)
    since_at = datetime.fromisoformat(since).replace(tzinfo=UTC) if since else None
    entries: list[queue.QueueEntry] = []
    feed_id = None
    try:
        if urls_file:
            entries += [queue.QueueEntry(u, canonical_url(u), "backfill") for u in read_url_list(Path(urls_file))]
        if feed:
            found, title = feed_entries(settings, feed, since_at)
            with engine.begin() as conn:
                feed_id = feed_state.sync_feeds(conn, [feed_state.FeedConfig(url=feed, name=title)])[feed]
            entries += [
                queue.QueueEntry(e.url, e.url_key, e.origin, feed_id, e.title, e.feed_published_at) for e in found
            ]
        if sitemap:
            entries += sitemap_entries(settings, sitemap, since_at)
        with engine.begin() as conn:
            added = queue.enqueue(conn, entries, database_now(conn), run_id)
        with engine.begin() as conn:
            queue.refresh_statistics(conn, added=added)
        return added
    finally:
        engine.dispose()


@flow(name="backfill", log_prints=True)
def backfill_flow(
    urls_file: str | None = None,
    feed: str | None = None,
    sitemap: str | None = None,
    since: str | None = None,
    retry_failures: bool = False,
    db: str | None = None,
    feeds_file: str | None = None,
    allow_private_networks: bool | None = None,
    workers: int | None = None,
) -> dict:
    """Fetch a list of URLs, every item a feed still lists, or a sitemap's articles; or retry failures."""
    logger = get_run_logger()
    settings, _ = effective_settings(feeds_file, db=db, allow_private_networks=allow_private_networks, workers=workers)
    engine = engine_for(settings)
    try:
        with recorded_run(engine, "backfill") as (run_id, stats):
            if urls_file or feed or sitemap:
                added = enqueue_task(settings.model_dump_json(), urls_file, feed, sitemap, since, run_id)
                stats.extra["enqueued"] = added
                logger.info("backfill: %d new URLs queued", added)
            if urls_file or feed or sitemap or not retry_failures:
                stats.add(drain_queue(settings, ["backfill"], run_id))
            if retry_failures:
                stats.add(drain_queue(settings, ["backfill", "feed"], run_id, force_retries=True, only_retries=True))
        return {"status": "completed", "run_id": run_id, **stats.flat()}
    finally:
        engine.dispose()

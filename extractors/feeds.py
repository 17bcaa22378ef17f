"""Feed bytes → FeedItems, with feedparser. Malformed ("bozo") feeds still yield their items."""

from __future__ import annotations

import calendar
import hashlib
from datetime import UTC, datetime
from urllib.parse import urljoin

import feedparser

from extractors.dedup import canonical_url
from extractors.records import FeedItem, ParsedFeed

# feedparser spends most of its time sanitising item HTML we never use (we fetch the pages).
feedparser.SANITIZE_HTML = False
MAX_FUTURE_SKEW_S = 24 * 3600


class FeedParseError(ValueError):
    """The body is not a feed at all (no items, no feed metadata)."""


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _entry_date(entry, now: datetime) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if not parsed:
            continue
        try:
            value = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
        except (OverflowError, ValueError, TypeError):
            continue
        if (value - now).total_seconds() > MAX_FUTURE_SKEW_S:
            continue  # a date in the future is a publisher's bug, not a publication date
        return value
    return None


def _entry_link(entry, base: str) -> str | None:
    link = entry.get("link")
    if not link:
        for candidate in entry.get("links") or []:
            if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
                link = candidate["href"]
                break
    if not link:
        guid = entry.get("id")
        if entry.get("guidislink") and guid:
            link = guid
    if not link:
        return None
    link = urljoin(base, link.strip())
    return link if link.startswith(("http://", "https://")) else None


def parse_feed(
    body: bytes, feed_url: str, *, headers: dict[str, str] | None = None, now: datetime | None = None
) -> ParsedFeed:
    """Parse a feed body. Raises FeedParseError when the bytes are not a feed in any dialect."""
    now = now or datetime.now(UTC)
    try:
        parsed = feedparser.parse(body, response_headers=headers or {}, sanitize_html=False)
    except Exception as exc:  # feedparser is defensive, but a parser crash must not sink the run
        raise FeedParseError(f"feedparser crashed: {type(exc).__name__}: {exc}") from exc
    if not parsed.entries and not parsed.feed and parsed.get("bozo"):
        raise FeedParseError(f"not a feed: {parsed.get('bozo_exception')!r}"[:500])
    items: list[FeedItem] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        link = _entry_link(entry, feed_url)
        if link is None:
            continue
        guid = (entry.get("id") or "").strip() or None
        item = FeedItem(
            feed_url=feed_url,
            url=link,
            canonical_url=canonical_url(link),
            guid=guid[:2000] if guid else None,
            title=(entry.get("title") or "").strip() or None,
            published_at=_entry_date(entry, now),
            summary=(entry.get("summary") or "")[:2000] or None,
        )
        if item.key in seen:
            continue
        seen.add(item.key)
        items.append(item)
    bozo_exc = parsed.get("bozo_exception")
    return ParsedFeed(
        items=items,
        title=(parsed.feed.get("title") or None) if parsed.feed else None,
        bozo=bool(parsed.get("bozo")),
        bozo_message=repr(bozo_exc)[:500] if bozo_exc else None,
        version=parsed.get("version") or None,
    )


def newest_first(items: list[FeedItem]) -> list[FeedItem]:
    """Items ordered newest first; undated items keep feed order after the dated ones."""
    dated = sorted((i for i in items if i.published_at), key=lambda i: i.published_at, reverse=True)
    return dated + [i for i in items if not i.published_at]

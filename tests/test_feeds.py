"""The feed stage: every feedparser test feed goes through without an exception escaping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from extractors.feeds import FeedParseError, newest_first, parse_feed
from tests.conftest import shared_eval


def test_every_feedparser_test_feed_parses_or_fails_cleanly():
    root = shared_eval("feeds")
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".xml", ".rdf", ".atom", ".rss", "")]
    assert len(files) > 1500
    parsed = refused = items = 0
    for path in files:
        try:
            feed = parse_feed(path.read_bytes(), "http://example.com/feed.xml")
        except FeedParseError:
            refused += 1
            continue
        parsed += 1
        items += len(feed.items)
        for item in feed.items:
            assert item.url.startswith(("http://", "https://"))
            assert item.key
    assert parsed > 1500 and items > 50


RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><title>Old</title><link>https://www.example.com/a?utm_source=rss#top</link><guid isPermaLink="false">g1</guid>
<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>Future</title><link>/relative/b</link><pubDate>Mon, 02 Nov 2099 10:00:00 GMT</pubDate></item>
<item><title>New</title><link>https://example.com/c</link><pubDate>Tue, 03 Nov 2026 10:00:00 +0200</pubDate></item>
<item><title>Dup</title><link>https://example.com/c</link></item>
<item><title>No link</title></item>
<item><title>Bad scheme</title><link>javascript:alert(1)</link></item>
</channel></rss>"""


def test_items_identity_dates_and_links():
    feed = parse_feed(RSS, "https://example.com/feed.xml", now=datetime(2026, 11, 22, tzinfo=UTC))
    by_title = {i.title: i for i in feed.items}
    assert set(by_title) == {"Old", "Future", "New"}
    assert by_title["Old"].guid == "g1" and by_title["Old"].key == "g1"
    assert by_title["Old"].canonical_url == "https://example.com/a"
    assert by_title["Future"].url == "https://example.com/relative/b"
    assert by_title["Future"].published_at is None  # dates in the future are rejected
    assert by_title["New"].published_at == datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
    assert [i.title for i in newest_first(feed.items)] == ["New", "Old", "Future"]


def test_malformed_feed_keeps_items_and_garbage_is_refused():
    bozo = b"<rss version='2.0'><channel><title>A & B</title><item><title>x</title><link>https://e.com/1</link></item>"
    feed = parse_feed(bozo, "https://e.com/feed")
    assert feed.bozo and [i.url for i in feed.items] == ["https://e.com/1"]
    with pytest.raises(FeedParseError):
        parse_feed(b"\x89PNG\r\n\x1a\n\x00\x00binary", "https://e.com/feed")

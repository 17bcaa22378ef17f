"""End to end: a real HTTP server on 127.0.0.1 serving realistic feeds and pages, a full ingest run
through Prefect into SQLite and PostgreSQL, then a second run that must send conditional requests
and fetch nothing new."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from flows.config import effective_settings
from flows.ingest import ingest_flow
from storage import make_engine
from tests.fixtures.site import article_html, atom_feed, off_topic_articles, rss_feed, seed_articles
from tests.httpserver import Route

MALFORMED_RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Broken & Co</title>
<item><title>Recruits & reservists</title><link>{link}</link><guid>broken-1</guid>
<pubDate>not a date at all</pubDate></item>
</channel>"""


def build_site(server, is_queued: Callable[[str], bool]) -> dict[str, str]:
    seeds, off = seed_articles(), off_topic_articles()
    urls = {}
    for art in seeds[:3] + off:
        urls[art.slug] = server.add(f"/{art.slug}", body=article_html(art, server.base).encode())
    # The same story as seeds[0] under another URL and outlet: syndicated wire copy.
    copy = seeds[0]
    urls["syndicated"] = server.add(
        "/partner/wire-copy",
        body=article_html(copy, server.base, canonical=server.url("/partner/wire-copy"))
        .replace("The Daily Fixture", "Partner Wire")
        .encode(),
    )
    urls["pdf"] = server.add("/docs/report.pdf", body=b"%PDF-1.7 fake", content_type="application/pdf")
    urls["error"] = server.add("/world/broken-server", status=500, body=b"oops")
    urls["slow"] = server.add("/world/slow", body=b"<html>late</html>", delay_s=3)
    urls["loop"] = server.add("/world/loop-a", redirect_to="/world/loop-b")
    server.add("/world/loop-b", redirect_to="/world/loop-a")
    urls["huge"] = server.add("/world/huge", stream_bytes=40 * 1024 * 1024)
    urls["tracking"] = server.url(f"/{seeds[1].slug}?utm_source=rss&utm_medium=feed")

    rss_items = [
        (urls[seeds[0].slug], seeds[0]),
        (urls[seeds[1].slug], seeds[1]),
        (urls[off[0].slug], off[0]),
        (urls[off[1].slug], off[1]),
        (urls["pdf"], _retitled(off[0], "Annual report (PDF)", "docs/report")),
        (urls["error"], _retitled(off[0], "Server error story", "world/broken-server")),
        (urls["slow"], _retitled(off[0], "Slow story", "world/slow")),
        (urls["loop"], _retitled(off[0], "Loop story", "world/loop-a")),
        (urls["huge"], _retitled(off[0], "Huge story", "world/huge")),
    ]
    rss = Route(
        body=rss_feed("Daily Fixture", server.base, rss_items), content_type="application/rss+xml", etag='"rss-v1"'
    )
    atom_items = [
        (urls[seeds[2].slug], seeds[2]),
        (urls["syndicated"], _retitled(seeds[0], seeds[0].title, "partner")),
        (urls["tracking"], seeds[1]),
    ]
    atom = Route(
        body=atom_feed("Fixture Atom", server.base, atom_items),
        content_type="application/atom+xml",
        last_modified="Mon, 02 Nov 2026 12:00:00 GMT",
    )

    # A poll queues each feed's items as its answer arrives. The RSS feed answers once the Atom feed's
    # items are queued, so the same stories reach the queue first under the Atom feed's links: the wire
    # copy before the story it copies, and seeds[1] under its tracking-parameter link before the RSS
    # feed's clean one. (The wait stays below the test's read timeout: if the Atom items never come, the
    # test fails on the order, not on a failed RSS poll.)
    def rss_after_atom(_request) -> Route:
        deadline = time.monotonic() + 0.9
        while not is_queued(urls["tracking"]) and time.monotonic() < deadline:
            time.sleep(0.02)
        return rss

    server.add("/rss.xml", handler=rss_after_atom)
    server.add("/atom.xml", atom)
    server.add(
        "/broken.xml",
        body=MALFORMED_RSS.replace(b"{link}", urls[seeds[2].slug].encode()),
        content_type="application/rss+xml",
    )
    server.add("/down.xml", status=500, body=b"feed server down")
    return urls


def _retitled(article, title, slug):
    from dataclasses import replace

    return replace(article, title=title, slug=slug)


def write_feeds_file(tmp_path: Path, server) -> Path:
    config = {
        "feeds": [
            {"url": server.url(p), "name": n}
            for p, n in [
                ("/rss.xml", "Fixture RSS"),
                ("/atom.xml", "Fixture Atom"),
                ("/broken.xml", "Broken"),
                ("/down.xml", "Down"),
            ]
        ],
        "settings": {
            "read_timeout_s": 1.0,
            "total_timeout_s": 2.5,
            "http_retries": 1,
            "http_retry_backoff_s": 0.05,
            "per_host_delay_s": 0.0,
            "max_body_bytes": 2_000_000,
            "relevance_threshold": 0.2,
        },
    }
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def queue_probe(db_url: str) -> Callable[[str], bool]:
    """Whether a URL is in the fetch queue yet (False until the run has created the tables). No pool: an
    idle connection left open would keep the test's PostgreSQL database from being dropped."""
    engine = create_engine(db_url, poolclass=NullPool)

    def is_queued(url: str) -> bool:
        try:
            with engine.connect() as conn:
                return conn.execute(text("SELECT 1 FROM fetch_queue WHERE url = :u"), {"u": url}).first() is not None
        except DBAPIError:
            return False

    return is_queued


def test_ingest_end_to_end(db_url, tmp_path, http_server, prefect_harness):
    urls = build_site(http_server, queue_probe(db_url))
    feeds_file = write_feeds_file(tmp_path, http_server)
    first = ingest_flow(feeds_file=str(feeds_file), db=db_url, allow_private_networks=True)
    assert first["status"] == "completed"
    assert first["feeds_polled"] == 4 and first["feeds_failed"] == 1

    engine = make_engine(db_url)
    with engine.connect() as conn:
        articles = {r.url: r for r in conn.execute(text("SELECT * FROM v_articles WHERE origin = 'feed'"))}
        failures = {r.target: r for r in conn.execute(text("SELECT * FROM failures WHERE resolved_at IS NULL"))}
        claims_per_article = dict(
            conn.execute(
                text(
                    "SELECT a.url, count(c.claim_id) FROM v_articles a "
                    "LEFT JOIN v_claims c ON c.article_id = a.article_id WHERE a.origin = 'feed' GROUP BY a.url"
                )
            ).all()
        )
    seeds, off = seed_articles(), off_topic_articles()
    # Three seed stories, two off-topic stories and the syndicated copy are stored. seeds[1] came first
    # under the Atom feed's tracking-parameter link: that is the URL it was fetched from, its canonical
    # URL is the clean one, and the RSS feed's clean link is the same article, neither queued nor fetched.
    tracked = urls["tracking"]
    assert set(articles) == {urls[a.slug] for a in [seeds[0], seeds[2], *off]} | {urls["syndicated"], tracked}
    assert articles[tracked].canonical_url == urls[seeds[1].slug]
    story, wire = articles[urls[seeds[0].slug]], articles[urls["syndicated"]]
    assert story.outlet == "The Daily Fixture" and story.language == "en"
    assert str(story.published_at).startswith("2026-11-01")
    # The wire copy was queued, so stored, first: it is the original and the story points to it.
    assert wire.outlet == "Partner Wire"
    assert wire.duplicate_of is None and story.duplicate_of == wire.article_id
    # Relevant stories get claims; off-topic ones are stored without; the copy's claims are the original's.
    assert claims_per_article[wire.url] > 3 and claims_per_article[tracked] > 3
    assert all(claims_per_article[urls[a.slug]] == 0 for a in off)
    assert claims_per_article[story.url] == 0
    # Every bad URL is a failure row with its stage and a readable error, scheduled for retry.
    expected = {
        "pdf": "not an HTML page: application/pdf",
        "error": "HTTP 500",
        "slow": "time",
        "loop": "redirect loop",
        "huge": "too large",
    }
    for key, message in expected.items():
        row = failures[urls[key]]
        assert row.stage == "fetch" and message in row.error, (key, row.error)
        assert row.next_retry_at is not None and row.attempts == 1
    assert failures[http_server.url("/down.xml")].kind == "feed"
    assert "HTTP 500" in failures[http_server.url("/down.xml")].error
    # The malformed feed still gave its item (seeds[2] was also in the Atom feed: one article).
    with engine.connect() as conn:
        broken = conn.execute(
            text("SELECT last_status, consecutive_failures, last_error FROM feeds WHERE name = 'Broken'")
        ).one()
        assert tuple(broken[:2]) == ("ok", 0)
        assert broken.last_error.startswith("malformed feed, items kept: "), broken.last_error
        down = conn.execute(text("SELECT consecutive_failures, next_poll_at FROM feeds WHERE name = 'Down'")).one()
        assert down.consecutive_failures == 1

    tracked_path = tracked.removeprefix(http_server.base)
    page_paths = ["/" + a.slug for a in [seeds[0], seeds[2], *off]] + ["/partner/wire-copy", tracked_path]
    hits_before = {p: len(http_server.hits(p)) for p in page_paths}
    assert all(n == 1 for n in hits_before.values()), hits_before
    assert http_server.hits("/" + seeds[1].slug) == []

    # Second run: the feeds are due again only after their interval, so make them due now.
    with engine.begin() as conn:
        conn.execute(text("UPDATE feeds SET next_poll_at = NULL"))
    second = ingest_flow(feeds_file=str(feeds_file), db=db_url, allow_private_networks=True)
    assert second["articles_new"] == 0 and second["claims_new"] == 0
    assert second["feeds_not_modified"] >= 2
    assert {p: len(http_server.hits(p)) for p in page_paths} == hits_before  # nothing fetched again
    assert http_server.hits("/" + seeds[1].slug) == []
    rss_hits = http_server.hits("/rss.xml")
    assert rss_hits[-1].headers.get("If-None-Match") == '"rss-v1"'
    atom_hits = http_server.hits("/atom.xml")
    assert atom_hits[-1].headers.get("If-Modified-Since") == "Mon, 02 Nov 2026 12:00:00 GMT"
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT kind, status, feeds_polled FROM v_runs ORDER BY run_id")).all()
        down = conn.execute(text("SELECT consecutive_failures FROM feeds WHERE name = 'Down'")).scalar_one()
        broken_again = conn.execute(text("SELECT last_status, last_error FROM feeds WHERE name = 'Broken'")).one()
    assert [(r.kind, r.status) for r in runs] == [("ingest", "completed"), ("ingest", "completed")]
    assert down == 2
    # The same malformed bytes again: still the same warning, not a clean bill of health.
    assert broken_again.last_status == "not_modified" and broken_again.last_error == broken.last_error
    engine.dispose()


def test_every_feed_failing_is_treated_as_our_outage(tmp_path, http_server, prefect_harness):
    http_server.add("/a.xml", status=503, body=b"")
    http_server.add("/b.xml", status=502, body=b"")
    path = tmp_path / "feeds.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "feeds": [{"url": http_server.url("/a.xml")}, {"url": http_server.url("/b.xml")}],
                "settings": {"http_retries": 0, "per_host_delay_s": 0},
            }
        )
    )
    db = f"sqlite:///{tmp_path / 'o.db'}"
    result = ingest_flow(feeds_file=str(path), db=db, allow_private_networks=True)
    assert result["feeds_failed"] == 2
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT consecutive_failures, last_status, last_error FROM feeds")).all()
        assert all(r.consecutive_failures == 0 and r.last_status == "outage" for r in rows)
        assert "not charged" in rows[0].last_error
    engine.dispose()


def test_private_addresses_refused_without_opt_in(tmp_path, http_server, prefect_harness):
    http_server.add("/feed.xml", body=b"<rss version='2.0'><channel><title>x</title></channel></rss>")
    settings, config = effective_settings(
        write_one(tmp_path, http_server.url("/feed.xml")), db=f"sqlite:///{tmp_path / 'p.db'}"
    )
    assert settings.allow_private_networks is False
    result = ingest_flow(feeds_file=str(tmp_path / "one.yaml"), db=settings.db)
    assert result["feeds_failed"] == 1
    assert http_server.hits("/feed.xml") == []  # refused before any connection was made
    engine = make_engine(settings.db)
    with engine.connect() as conn:
        error = conn.execute(text("SELECT last_error FROM feeds")).scalar_one()
    assert "non-public address 127.0.0.1" in error
    engine.dispose()


def test_the_poll_runs_in_a_process_that_is_gone_when_the_drain_starts(tmp_path, http_server, prefect_harness):
    """The run's process drains for as long as the backfill lasts; what a poll leaves in a heap must not
    stay with it (flows/poll_process.py). Each request is traced to the process holding its client end."""
    import psutil

    seeds = seed_articles()
    story = http_server.add(f"/{seeds[0].slug}", body=article_html(seeds[0], http_server.base).encode())
    seen: dict[str, list[tuple[int, int, set[int]]]] = {}  # path: (client pid, its parent, our live children)

    def traced(route: Route) -> Callable:
        def answer(request) -> Route:
            host, port = request.client_address
            connections = psutil.net_connections(kind="tcp4")
            client = next(c.pid for c in connections if c.laddr == (host, port) and c.pid is not None)
            children = {c.pid for c in psutil.Process().children(recursive=True)}
            seen.setdefault(request.path, []).append((client, psutil.Process(client).ppid(), children))
            return route

        return answer

    feed = Route(body=rss_feed("Traced", http_server.base, [(story, seeds[0])]), content_type="application/rss+xml")
    http_server.add("/traced.xml", handler=traced(feed))
    page = http_server.routes[f"/{seeds[0].slug}"]
    http_server.add(f"/{seeds[0].slug}", handler=traced(page))
    feeds_file = write_one(tmp_path, http_server.url("/traced.xml"))
    result = ingest_flow(feeds_file=str(feeds_file), db=f"sqlite:///{tmp_path / 't.db'}", allow_private_networks=True)

    assert result["status"] == "completed" and result["articles_new"] == 1
    [(poller, poller_parent, _)] = seen["/traced.xml"]
    [(fetcher, _, children_at_fetch)] = seen[f"/{seeds[0].slug}"]
    assert poller != os.getpid() and poller_parent == os.getpid()  # polled in a child of the run's process,
    assert poller not in children_at_fetch  # which had exited by the time the drain fetched the page,
    assert fetcher == os.getpid()  # fetched (one worker, threads) in the run's own process


def write_one(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump({"feeds": [{"url": url}]}))
    return path


@pytest.mark.parametrize("bad", ["feeds: [", "feeds:\n  - url: notaurl\n", "nothing: here\n"])
def test_bad_feeds_file_is_a_clear_error(tmp_path, bad):
    from typer.testing import CliRunner

    from flows.cli import app

    path = tmp_path / "feeds.yaml"
    path.write_text(bad)
    result = CliRunner().invoke(app, ["ingest", "--feeds", str(path), "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2
    assert str(path) in result.output

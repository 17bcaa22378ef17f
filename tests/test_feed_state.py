"""Per-feed state through the poll stage (no Prefect): first-poll bound, new items only, back-off with
Retry-After, validators kept separately, body-hash as a second unchanged test."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from flows.poll import POLL_WRITE_ITEMS, poll_feeds
from flows.settings import Settings
from storage import feed_state, init_db, make_engine
from storage.feed_state import failure_backoff_s
from storage.models import Feed, QueuedUrl
from tests.fixtures.site import FixtureArticle, rss_feed
from tests.httpserver import Route


def items(server, start: int, count: int):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        (server.url(f"/story/{i}"), FixtureArticle(f"story/{i}", f"Story {i}", "Body text.", base + timedelta(days=i)))
        for i in range(start, start + count)
    ]


def poll(engine, settings, url):
    with engine.begin() as conn:
        feed_state.sync_feeds(conn, [feed_state.FeedConfig(url=url, name="F", poll_interval_s=600)])
        due = feed_state.due_feeds(conn, [url], datetime.now(UTC))
    return poll_feeds(engine, settings, due)


def queued(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(QueuedUrl.url).order_by(QueuedUrl.id)).scalars())


def make_due(engine):
    with engine.begin() as conn:
        conn.execute(text("UPDATE feeds SET next_poll_at = NULL"))


def test_first_poll_is_bounded_and_later_polls_take_only_new_items(db_url, http_server):
    engine = make_engine(db_url)
    init_db(engine)
    settings = Settings(db=db_url, allow_private_networks=True, per_host_delay_s=0, max_initial_items=5)
    url = http_server.add(
        "/feed.xml", body=rss_feed("F", http_server.base, items(http_server, 0, 30)), content_type="application/rss+xml"
    )
    stats = poll(engine, settings, url)
    assert stats.extra["items_new"] == 5
    assert queued(engine) == [http_server.url(f"/story/{i}") for i in range(29, 24, -1)]  # the newest five
    # Same bytes again (no validators from this server): the body hash says unchanged, nothing parsed.
    make_due(engine)
    again = poll(engine, settings, url)
    assert again.feeds_not_modified == 1 and again.extra.get("items_new", 0) == 0
    # Two new items, the GUIDs of old ones unchanged: only the two become work.
    http_server.add(
        "/feed.xml", body=rss_feed("F", http_server.base, items(http_server, 0, 32)), content_type="application/rss+xml"
    )
    make_due(engine)
    assert poll(engine, settings, url).extra["items_new"] == 2
    assert set(queued(engine)[-2:]) == {http_server.url("/story/31"), http_server.url("/story/30")}
    engine.dispose()


def test_a_batch_writes_answered_feeds_while_others_are_still_answering(db_url, http_server):
    """A poll batch does not hold every feed's parsed items until its slowest feed answers (10,000 items
    for 200 feeds of 50): the items of a feed that answered are queued while a feed listed before it is
    still answering. Failures wait for the whole batch, which decides whether they are our outage: here
    feeds answered, so the failing one is charged."""
    engine = make_engine(db_url)
    init_db(engine)
    settings = Settings(
        db=db_url, allow_private_networks=True, per_host_delay_s=0, http_retries=0, max_initial_items=1000
    )
    fast_items, slow_items = items(http_server, 0, POLL_WRITE_ITEMS), items(http_server, 1000, 3)
    slow_answer = Route(body=rss_feed("Slow", http_server.base, slow_items), content_type="application/rss+xml")
    let_slow_answer = threading.Event()

    def answer_when_let(_request) -> Route:
        let_slow_answer.wait(60)
        return slow_answer

    slow = http_server.add("/slow.xml", handler=answer_when_let)
    fast = http_server.add(
        "/fast.xml", body=rss_feed("Fast", http_server.base, fast_items), content_type="application/rss+xml"
    )
    down = http_server.add("/down.xml", status=503, body=b"")
    urls = [slow, fast, down]
    with engine.begin() as conn:
        feed_state.sync_feeds(conn, [feed_state.FeedConfig(url=u) for u in urls])
        due = feed_state.due_feeds(conn, urls, datetime.now(UTC))
    assert [f.url for f in due] == urls
    with ThreadPoolExecutor(max_workers=1) as pool:
        polling = pool.submit(poll_feeds, engine, settings, due)
        try:
            deadline = time.monotonic() + 30
            while len(queued(engine)) < POLL_WRITE_ITEMS and time.monotonic() < deadline:
                time.sleep(0.05)
            assert set(queued(engine)) == {url for url, _ in fast_items}
            assert not polling.done()
            with engine.connect() as conn:
                unanswered = conn.execute(text("SELECT last_polled_at FROM feeds WHERE url = :u"), {"u": slow}).one()
            assert unanswered.last_polled_at is None
        finally:
            let_slow_answer.set()
        stats = polling.result(timeout=60)
    assert (stats.feeds_polled, stats.feeds_failed, stats.extra["items_new"]) == (3, 1, POLL_WRITE_ITEMS + 3)
    assert "outage" not in stats.extra
    assert set(queued(engine)[POLL_WRITE_ITEMS:]) == {url for url, _ in slow_items}
    with engine.connect() as conn:
        failing = conn.execute(text("SELECT consecutive_failures FROM feeds WHERE url = :u"), {"u": down}).one()
    assert failing.consecutive_failures == 1
    engine.dispose()


def test_validators_stored_separately_and_retry_after_honoured(db_url, http_server):
    engine = make_engine(db_url)
    init_db(engine)
    settings = Settings(db=db_url, allow_private_networks=True, per_host_delay_s=0, http_retries=0)
    url = http_server.add(
        "/v.xml",
        body=rss_feed("V", http_server.base, items(http_server, 0, 2)),
        content_type="application/rss+xml",
        etag='"abc"',
        last_modified="Mon, 02 Nov 2026 10:00:00 GMT",
    )
    poll(engine, settings, url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT etag, last_modified, body_hash, last_status FROM feeds")).one()
    assert (row.etag, row.last_modified, row.last_status) == ('"abc"', "Mon, 02 Nov 2026 10:00:00 GMT", "ok")
    assert len(row.body_hash) == 64
    second = http_server.add("/down.xml", status=503, headers={"Retry-After": "7200"})
    before = datetime.now(UTC)
    failed = poll(engine, settings, second)
    assert failed.feeds_failed == 1
    with engine.connect() as conn:
        down = conn.execute(
            text("SELECT consecutive_failures, next_poll_at, last_error FROM feeds WHERE url = :u"), {"u": second}
        ).one()
        failure = conn.execute(text("SELECT stage, attempts FROM failures WHERE target = :u"), {"u": second}).one()
    assert down.consecutive_failures == 1 and "503" in down.last_error
    next_poll = (
        down.next_poll_at if isinstance(down.next_poll_at, datetime) else datetime.fromisoformat(down.next_poll_at)
    )
    next_poll = next_poll if next_poll.tzinfo else next_poll.replace(tzinfo=UTC)
    assert next_poll >= before + timedelta(seconds=7100)
    assert tuple(failure) == ("poll", 1)
    engine.dispose()


def test_backoff_is_exponential_with_a_cap():
    assert [failure_backoff_s(900, n) for n in (1, 2, 3)] == [900, 1800, 3600]
    assert failure_backoff_s(900, 30) == 24 * 3600
    assert failure_backoff_s(900, 1, retry_after_s=5000) == 5000


def test_released_poll_claims_hand_back_only_this_claims_unrecorded_feeds(db_url):
    """A stopped run hands its feeds back (flows/poll_process.py): those it took and never recorded are due
    again at once. A feed whose poll it recorded keeps its schedule, and a feed another run took at
    another moment stays that run's."""
    engine = make_engine(db_url)
    init_db(engine)
    ours = [f"http://127.0.0.1:9/ours-{i}.xml" for i in range(3)]
    theirs = "http://127.0.0.1:9/theirs.xml"
    with engine.begin() as conn:
        feed_state.sync_feeds(conn, [feed_state.FeedConfig(url=u, poll_interval_s=600) for u in [*ours, theirs]])
        their_claim = datetime.now(UTC) - timedelta(seconds=5)
        [taken_by_them] = feed_state.due_feeds(conn, [theirs], their_claim)
        claimed_at = datetime.now(UTC)
        taken = feed_state.due_feeds(conn, [*ours, theirs], claimed_at)
        assert [f.url for f in taken] == ours  # not theirs: already taken
        polled_at = claimed_at + timedelta(seconds=1)
        feed_state.record_poll_success(conn, taken[0], status="not_modified", now=polled_at)
    released_at = claimed_at + timedelta(seconds=2)
    with engine.begin() as conn:
        released = feed_state.release_poll_claims(
            conn, [f.id for f in [*taken, taken_by_them]], claimed_at, released_at
        )
    assert released == 2
    with engine.begin() as conn:
        due_now = feed_state.due_feeds(conn, [*ours, theirs], released_at, claim=False)
        schedule = dict(conn.execute(select(Feed.url, Feed.next_poll_at)).all())
    assert [f.url for f in due_now] == ours[1:]
    assert schedule[ours[0]] == polled_at + timedelta(seconds=600)  # recorded: its own
    assert schedule[theirs] == feed_state.poll_claim_until(their_claim)
    engine.dispose()

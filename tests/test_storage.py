"""Storage on both SQLite and PostgreSQL: migrations, views, idempotent and concurrent writes."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from alembic.config import Config
from sqlalchemy import Connection, Engine, func, insert, inspect, select, text, update

from extractors.dedup import content_hash, simhash
from extractors.records import Article, Claim, ProcessedArticle, Quantity
from storage import init_db, make_engine
from storage.articles import save_processed
from storage.models import ArticleRow, ClaimRow, QuantityRow, RunRow
from storage.schema import current_revision, head_revision
from storage.views import VIEW_COLUMNS


def _article(url: str, text_body: str, origin: str = "feed") -> ProcessedArticle:
    article = Article(
        url=url,
        canonical_url=url,
        title="Title",
        text=text_body,
        author=None,
        site_name="Outlet",
        language="en",
        published_at=datetime(2026, 1, 2, tzinfo=UTC),
        published_source="feed",
        page_published_at=None,
        method="trafilatura",
    )
    claim = Claim(
        text=text_body[:40],
        start=0,
        end=40,
        claimant="Kyiv",
        cue="said",
        verification="hedged",
        quantities=(Quantity(120000.0, None, "soldiers", "120,000 soldiers"),),
        entities=("Kyiv",),
    )
    return ProcessedArticle(
        article=article,
        content_hash=content_hash(text_body),
        simhash=simhash(text_body),
        relevance=0.5,
        claims=(claim,),
        claims_version="test-1",
        origin=origin,
    )


BODY = (
    "Ukraine's military intelligence said on Monday that Russia had recruited about 120,000 soldiers "
    "since the start of the year, a figure that could not be independently verified. "
) * 5


def test_migrations_create_schema_and_rerun_is_noop(db_url):
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    assert init_db(engine) is True
    assert current_revision(engine) == head_revision()
    assert init_db(engine) is False
    tables = set(inspect(engine).get_table_names())
    assert {"feeds", "articles", "claims", "claim_quantities", "runs", "failures", "fetch_queue"} <= tables
    engine.dispose()


def test_models_match_migrations(db_url):
    """The ORM models and the migrated schema agree, so a model change without a revision fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base

    engine = make_engine(db_url)
    init_db(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert differences == []
    engine.dispose()


def test_views_have_contract_columns(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    insp = inspect(engine)
    assert set(VIEW_COLUMNS) <= set(insp.get_view_names())
    for view, columns in VIEW_COLUMNS.items():
        assert [c["name"] for c in insp.get_columns(view)] == columns
    engine.dispose()


def test_downgrade_removes_everything(db_url):
    from alembic import command

    from storage.schema import alembic_config

    engine = make_engine(db_url)
    init_db(engine)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert "articles" not in inspect(engine).get_table_names()
    engine.dispose()


def test_article_and_claims_written_twice_are_stored_once(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    processed = _article("https://example.com/a", BODY)
    with engine.begin() as conn:
        first = save_processed(conn, processed)
    with engine.begin() as conn:
        second = save_processed(conn, processed)
    assert first.created and not second.created
    assert first.article_id == second.article_id
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ArticleRow)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(ClaimRow)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(QuantityRow)).scalar_one() == 1
        row = conn.execute(
            text(
                "SELECT c.claimant, c.verification, q.value, q.counted FROM v_quantities q "
                "JOIN v_claims c ON c.claim_id = q.claim_id"
            )
        ).one()
        assert tuple(row) == ("Kyiv", "hedged", 120000.0, "soldiers")
        published = conn.execute(text("SELECT published_at FROM v_articles")).scalar_one()
        assert str(published).startswith("2026-01-02")
    engine.dispose()


def test_claims_beyond_one_insert_page_keep_their_quantities(db_url):
    """Claims go in as multi-row INSERTs of at most INSERT_PAGE_ROWS rows (so a worker's drivers hold a
    bounded set of statements); an article with several pages' worth still gets every claim, and each
    quantity the id of its own claim."""
    from dataclasses import replace

    from storage.engine import INSERT_PAGE_ROWS

    engine = make_engine(db_url)
    init_db(engine)
    assert engine.dialect.insertmanyvalues_page_size == INSERT_PAGE_ROWS
    body = BODY * 10
    count = 2 * INSERT_PAGE_ROWS + 5
    base = _article("https://example.com/many", body)
    claims = tuple(
        Claim(
            text=body[i * 10 : i * 10 + 8],
            start=i * 10,
            end=i * 10 + 8,
            claimant=f"Source {i}",
            cue="said",
            verification="asserted",
            quantities=(Quantity(float(i), None, "soldiers", f"{i} soldiers"),),
        )
        for i in range(count)
    )
    with engine.begin() as conn:
        stored = save_processed(conn, replace(base, claims=claims))
    assert stored.claims_written == count
    with engine.connect() as conn:
        rows = conn.execute(
            select(ClaimRow.claimant, QuantityRow.value).join(QuantityRow, QuantityRow.claim_id == ClaimRow.id)
        ).all()
    assert sorted(rows) == sorted((f"Source {i}", float(i)) for i in range(count))
    engine.dispose()


def test_near_duplicate_under_other_url_points_to_original(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    with engine.begin() as conn:
        original = save_processed(conn, _article("https://example.com/original", BODY))
    syndicated = BODY + " This story was first published by a partner outlet."
    with engine.begin() as conn:
        copy = save_processed(conn, _article("https://mirror.example.org/copy", syndicated))
    assert copy.created and copy.duplicate_of == original.article_id
    assert copy.claims_written == 0  # a story is counted once
    with engine.connect() as conn:
        dup = conn.execute(text("SELECT duplicate_of FROM v_articles WHERE url = 'https://mirror.example.org/copy'"))
        assert dup.scalar_one() == original.article_id
    engine.dispose()


# A signed 64-bit simhash with the top bit set (stored negative) and variants at known distances.
SIMHASH = -0x5A5A_0F0F_3C3C_7E81
NEAR_SIMHASH = SIMHASH ^ 0b101 ^ (1 << 40)  # 3 bits apart
# 7 bits apart, one in each of bands 1-7: band 0 still matches, so it is a candidate, but too far.
FAR_SIMHASH = SIMHASH ^ sum(1 << (8 * band) for band in range(1, 8))


def test_near_duplicates_are_judged_by_distance_and_point_to_the_first_original(db_url):
    engine = make_engine(db_url)
    init_db(engine)

    def save(url: str, body: str, signature: int):
        with engine.begin() as conn:
            return save_processed(conn, replace(_article(url, body), simhash=signature))

    original = save("https://example.com/a", BODY, SIMHASH)
    near = save("https://example.com/b", BODY + " Updated.", NEAR_SIMHASH)
    # 4 bits from the original, 1 from its near copy: closest to the copy, yet it belongs to the original.
    both = save("https://example.com/c", BODY + " Updated twice.", NEAR_SIMHASH ^ (1 << 20))
    far = save("https://example.com/d", BODY + " Rewritten.", FAR_SIMHASH)
    assert original.duplicate_of is None
    assert near.duplicate_of == original.article_id
    assert both.duplicate_of == original.article_id
    assert far.duplicate_of is None and far.claims_written == 1
    engine.dispose()


def _article_stored_at(conn: Connection, cfg: Config, revision: str) -> int:
    """Bring an empty database to ``revision`` and store there an article with SIMHASH (no index rows)."""
    from alembic import command

    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)
    return conn.execute(
        text(
            "INSERT INTO articles (url, canonical_url, origin, text, content_hash, simhash, word_count, "
            "created_at) VALUES ('https://example.com/old', 'https://example.com/old', 'feed', :body, "
            "'old-hash', :simhash, 40, CURRENT_TIMESTAMP) RETURNING id"
        ),
        {"body": BODY, "simhash": SIMHASH},
    ).scalar_one()


def test_upgrade_carries_simhashes_into_existing_bands(db_url):
    """Databases made before revision 0002 keep finding near duplicates of what they already hold."""

    from storage.schema import alembic_config

    engine = make_engine(db_url)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        article_id = _article_stored_at(conn, cfg, "0001")
        conn.execute(
            text("INSERT INTO article_simhash_bands (article_id, band, value) VALUES (:article_id, :band, :value)"),
            [{"article_id": article_id, "band": band, "value": value} for band, value in _index_keys(SIMHASH, 8)],
        )
    assert init_db(engine) is True
    with engine.connect() as conn:
        assert set(conn.execute(text("SELECT simhash FROM article_simhash_bands")).scalars()) == {SIMHASH}
    copy_of_old = replace(_article("https://example.com/new", BODY + " Again."), simhash=NEAR_SIMHASH)
    with engine.begin() as conn:
        copy = save_processed(conn, copy_of_old)
    assert copy.duplicate_of == article_id
    engine.dispose()


def _index_keys(signature: int, bits: int) -> list[tuple[int, int]]:
    """(band, value) of a simhash cut into ``bits``-bit pieces, lowest bits first: 8 before revision 0005,
    16 since."""
    return [(band, ((signature & (2**64 - 1)) >> (bits * band)) & (2**bits - 1)) for band in range(64 // bits)]


# 6 bits from SIMHASH and no 16-bit block left whole (two blocks one bit off): an 8-bit band is.
SPREAD_NEAR_SIMHASH = SIMHASH ^ (1 << 1) ^ (1 << 3) ^ (1 << 17) ^ (1 << 40) ^ (1 << 45) ^ (1 << 62)


def test_a_near_duplicate_with_every_block_changed_is_found(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    with engine.begin() as conn:
        original = save_processed(conn, replace(_article("https://example.com/a", BODY), simhash=SIMHASH))
        copy = save_processed(
            conn, replace(_article("https://example.com/b", BODY + " Now."), simhash=SPREAD_NEAR_SIMHASH)
        )
        keys = conn.execute(
            text("SELECT band, value FROM article_simhash_bands WHERE article_id = :id ORDER BY band"),
            {"id": original.article_id},
        ).all()
    assert copy.duplicate_of == original.article_id
    assert [tuple(key) for key in keys] == _index_keys(SIMHASH, 16)
    engine.dispose()


def test_upgrade_rekeys_existing_articles_by_16_bit_blocks(db_url):
    """Revision 0005: articles stored under eight 8-bit bands are rewritten to the four blocks lookups
    now probe, and a near copy that no block of theirs matches exactly still finds them."""
    from alembic import command

    from storage.schema import alembic_config

    engine = make_engine(db_url)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        article_id = _article_stored_at(conn, cfg, "0004")
        conn.execute(
            text(
                "INSERT INTO article_simhash_bands (article_id, band, value, simhash) "
                "VALUES (:article_id, :band, :value, :simhash)"
            ),
            [
                {"article_id": article_id, "band": band, "value": value, "simhash": SIMHASH}
                for band, value in _index_keys(SIMHASH, 8)
            ],
        )
    assert init_db(engine) is True
    with engine.begin() as conn:
        keys = conn.execute(text("SELECT band, value FROM article_simhash_bands ORDER BY band")).all()
        assert [tuple(key) for key in keys] == _index_keys(SIMHASH, 16)
        copy = save_processed(
            conn, replace(_article("https://example.com/new", BODY + " Again."), simhash=SPREAD_NEAR_SIMHASH)
        )
        assert copy.duplicate_of == article_id
    with engine.begin() as conn:  # and back: the eight bands revision 0004 looked up
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
        keys = conn.execute(
            text("SELECT band, value FROM article_simhash_bands WHERE article_id = :id ORDER BY band"),
            {"id": article_id},
        ).all()
    assert [tuple(key) for key in keys] == _index_keys(SIMHASH, 8)
    engine.dispose()


def test_upgrade_moves_urls_that_gave_up_out_of_the_failed_status(db_url):
    """Revision 0004: rows that gave up before it get the status claims no longer look through; rows
    still waiting for a retry stay 'failed' and come back when due."""
    from alembic import command

    from storage import queue
    from storage.schema import alembic_config

    engine = make_engine(db_url)
    cfg = alembic_config(engine)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        for name in ("dead", "flaky"):
            conn.execute(
                text(
                    "INSERT INTO fetch_queue (url_key, url, origin, status, added_at) "
                    "VALUES (:key, :url, 'feed', 'failed', :now)"
                ),
                {"key": name, "url": f"https://news.example/{name}", "now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO failures (kind, target, stage, error, attempts, first_failed_at, last_failed_at, "
                    "next_retry_at, gave_up) VALUES ('url', :url, 'fetch', 'HTTP 500', :attempts, :now, :now, "
                    ":retry, :gave_up)"
                ),
                {
                    "url": f"https://news.example/{name}",
                    "attempts": 6 if name == "dead" else 1,
                    "now": now,
                    "retry": None if name == "dead" else now,
                    "gave_up": int(name == "dead"),
                },
            )
    assert init_db(engine) is True
    with engine.begin() as conn:
        assert queue.counts(conn) == {"gave_up": 1, "failed": 1}
        assert [w.url for w in queue.claim_batch(conn, limit=5, now=now, origins=["feed"])] == [
            "https://news.example/flaky"
        ]
    engine.dispose()


def test_concurrent_double_write_on_postgres_stores_once(pg_url):
    engine = make_engine(pg_url)
    init_db(engine)
    processed = _article("https://example.com/race", BODY)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def writer():
        try:
            barrier.wait()
            with engine.begin() as conn:
                results.append(save_processed(conn, processed))
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.created for r in results) == 1
    assert len({r.article_id for r in results}) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ArticleRow)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(ClaimRow)).scalar_one() == 1
    engine.dispose()


@pytest.mark.parametrize("runs", [2])
def test_init_twice_leaves_five_seed_articles(db_url, runs):
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    for _ in range(runs):
        result = runner.invoke(app, ["init", "--db", db_url])
        assert result.exit_code == 0, result.output
    engine = make_engine(db_url)
    with engine.connect() as conn:
        origins = conn.execute(text("SELECT origin, count(*) FROM v_articles GROUP BY origin")).all()
        assert [tuple(r) for r in origins] == [("seed", 5)]
        assert conn.execute(text("SELECT count(*) FROM v_claims")).scalar_one() > 50
        assert conn.execute(text("SELECT count(*) FROM v_runs WHERE kind = 'seed'")).scalar_one() == 1
    engine.dispose()
    status = runner.invoke(app, ["status", "--db", db_url])
    assert status.exit_code == 0 and "seed" in status.output


def test_status_says_when_a_running_run_was_last_heard_from_and_why_a_run_failed(db_url):
    import json
    import os
    import subprocess

    from tests.fixtures.cli import cli_command

    engine = make_engine(db_url)
    init_db(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for run in (
            {"kind": "backfill", "status": "failed", "detail": json.dumps({"error": "KeyboardInterrupt"})},
            {"kind": "ingest", "status": "running", "heartbeat_at": now - timedelta(seconds=42)},
            {"kind": "reprocess", "status": "running", "heartbeat_at": now - timedelta(minutes=25, seconds=5)},
        ):
            conn.execute(insert(RunRow).values(started_at=now, **run))
    engine.dispose()
    # Its own process, as a user's terminal starts it: rich reads the width once, when the CLI is imported.
    status = subprocess.run(
        cli_command("status", "--db", db_url), capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    assert status.returncode == 0, status.stdout + status.stderr
    lines = status.stdout.splitlines()
    assert any("ingest" in line and "running (heard 4" in line for line in lines), status.stdout  # 42 to 44 s
    assert any("backfill" in line and "failed: KeyboardInterrupt" in line for line in lines), status.stdout
    assert any("reprocess" in line and "running (heard 25 min ago)" in line for line in lines), status.stdout


def test_has_claimable_agrees_with_claim_batch(db_url):
    """What lets a run start another worker round: true exactly while claim_batch would find work."""
    from storage import queue

    engine = make_engine(db_url)
    init_db(engine)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    urls = [f"https://news.example/{i}" for i in range(3)]
    with engine.begin() as conn:
        assert not queue.has_claimable(conn, now=now, origins=["feed"])
        queue.enqueue(conn, [queue.QueueEntry(u, u, "feed") for u in urls], now)
        assert queue.has_claimable(conn, now=now, origins=["feed"])
        assert not queue.has_claimable(conn, now=now, origins=["backfill"])
        work = queue.claim_batch(conn, limit=3, now=now, origins=["feed"])
        assert len(work) == 3 and not queue.has_claimable(conn, now=now, origins=["feed"])
        # A failure waits for its retry time unless retries are forced; a stale claim is free again.
        queue.record_url_failure(conn, work[0], stage="fetch", error="HTTP 500", now=now)
        assert not queue.has_claimable(conn, now=now, origins=["feed"])
        assert queue.has_claimable(conn, now=now, origins=["feed"], force_retries=True)
        later = now + queue.STALE_CLAIM + queue.STALE_CLAIM
        assert queue.has_claimable(conn, now=later, origins=["feed"])
        assert len(queue.claim_batch(conn, limit=5, now=later, origins=["feed"])) == 3
        assert not queue.has_claimable(conn, now=later, origins=["feed"])
    engine.dispose()


def test_a_claim_takes_the_lowest_ids_across_due_failures_stale_claims_and_pending(db_url):
    from storage import queue

    engine = make_engine(db_url)
    init_db(engine)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    urls = [f"https://news.example/{i}" for i in range(10)]
    with engine.begin() as conn:
        queue.enqueue(conn, [queue.QueueEntry(u, u, "feed") for u in urls], now)
        first = queue.claim_batch(conn, limit=3, now=now, origins=["feed"])  # ids of urls 0-2, claimed
        queue.record_url_failure(conn, first[1], stage="fetch", error="HTTP 500", now=now)
        later = now + 2 * queue.STALE_CLAIM  # url 1's retry is due, urls 0 and 2 are stale claims
        taken = queue.claim_batch(conn, limit=4, now=later, origins=["feed"])
        assert [w.url for w in taken] == urls[:4]
        assert [w.url for w in queue.claim_batch(conn, limit=100, now=later, origins=["feed"])] == urls[4:]
    engine.dispose()


def test_a_url_that_gave_up_leaves_the_failed_rows_claims_look_through(db_url):
    """After ``max_attempts`` failures a URL is never claimed again, even with retries forced, and its
    queue row says so; before that it comes back when its retry is due."""
    from storage import queue
    from storage.models import FailureRow

    engine = make_engine(db_url)
    init_db(engine)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    later = now + timedelta(days=30)  # past any retry delay
    with engine.begin() as conn:
        queue.enqueue(conn, [queue.QueueEntry("https://news.example/broken", "broken", "feed")], now)
        outcomes = []
        for _ in range(3):
            (work,) = queue.claim_batch(conn, limit=5, now=later, origins=["feed"], force_retries=True)
            outcomes.append(
                queue.record_url_failure(conn, work, stage="fetch", error="HTTP 500", now=now, max_attempts=3)
            )
        assert outcomes == [False, False, True]
        assert queue.counts(conn) == {"gave_up": 1}
        assert not queue.has_claimable(conn, now=later, origins=["feed"], force_retries=True)
        assert queue.claim_batch(conn, limit=5, now=later, origins=["feed"], force_retries=True) == []
        failure = conn.execute(select(FailureRow.attempts, FailureRow.gave_up, FailureRow.next_retry_at)).one()
        assert (failure.attempts, failure.gave_up, failure.next_retry_at) == (3, 1, None)
    engine.dispose()


def test_a_claim_reads_about_what_it_takes_however_long_the_queue(db_url):
    """One OR over pending rows, stale claims and due failures made both databases gather and sort every
    pending row to return 50, and on SQLite those rows filled each worker's page cache: a 10,000-URL
    queue cost ~1.8 MiB more per worker than a 1,000 one. Claims read one status at a time, in order."""
    from storage import queue
    from storage.models import QueuedUrl

    engine = make_engine(db_url)
    init_db(engine)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    title = "A long enough title for a news article on the queue " * 2
    with engine.begin() as conn:
        queue.enqueue(
            conn, [queue.QueueEntry(f"https://n.example/{i}", f"n{i}", "feed", title=title) for i in range(10_000)], now
        )
    if engine.dialect.name == "postgresql":
        # The plan depends on the statistics, which the product keeps (autovacuum is off on this machine):
        # after the enqueue (a new table: never analysed) and again once the drain has changed the queue.
        with engine.begin() as conn:
            assert queue.refresh_statistics(conn, added=10_000)
        _assert_claims_read_at_most(engine, now, 50)
        with engine.begin() as conn:
            # Nothing much changed, whenever the enqueue's own counts reach the server: no new ANALYZE.
            assert not queue.refresh_statistics(conn, added=10)
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
        time.sleep(1.5)  # they have now (if they had not already): still none
        with engine.begin() as conn:
            assert not queue.refresh_statistics(conn)
            lowest = select(QueuedUrl.id).order_by(QueuedUrl.id).limit(6_000).scalar_subquery()
            conn.execute(update(QueuedUrl).where(QueuedUrl.id.in_(lowest)).values(status="done"))
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
        refreshed, deadline = False, time.monotonic() + 10  # the server's counters arrive within a second
        while not refreshed and time.monotonic() < deadline:
            with engine.begin() as conn:  # a drain's changes, seen once the last ANALYZE has settled
                refreshed = queue.refresh_statistics(conn, settle_s=0)
            time.sleep(0 if refreshed else 0.2)
        assert refreshed
        _assert_claims_read_at_most(engine, now, 50)
    else:
        import _sqlite3
        import ctypes

        sqlite = ctypes.CDLL(_sqlite3.__file__)
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
        engine.dispose()
        engine = make_engine(db_url)
        with engine.connect():
            pass
        before = sqlite.sqlite3_memory_used()
        for _ in range(3):
            with engine.begin() as conn:
                assert len(queue.claim_batch(conn, limit=50, now=now, origins=["feed"])) == 50
        assert sqlite.sqlite3_memory_used() - before < 512 * 1024  # the 10,000 rows' pages are ~2 MiB
    engine.dispose()


def _assert_claims_read_at_most(engine: Engine, now: datetime, limit: int) -> None:
    """Each part of a claim, as PostgreSQL runs it: no Sort, and at most ``limit`` rows read."""
    from storage import queue
    from storage.models import QueuedUrl

    with engine.begin() as conn:
        for part in queue._claimable_parts(now, ["feed"], True, False, False):
            query = select(QueuedUrl.id).where(part).order_by(QueuedUrl.id).limit(limit)
            sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)).scalar_one()[0]["Plan"]
            nodes, read = [plan], 0
            while nodes:
                node = nodes.pop()
                assert node["Node Type"] != "Sort", sql
                if "Scan" in node["Node Type"]:
                    read += node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                nodes += node.get("Plans", [])
            assert read <= limit, (sql, read)


def test_a_run_whose_process_was_killed_is_closed_by_the_next_run(db_url):
    """A run killed outright (here by SIGKILL, as the OOM killer does) never records how it ended. The next
    run on the host closes it as failed with the reason; runs of live processes and of other hosts stay."""
    import json
    import subprocess
    import sys

    from storage.owners import process_owner
    from storage.runs import ABANDONED, start_run

    engine = make_engine(db_url)
    init_db(engine)
    killed_run = (
        "import os, signal, sys; from storage import make_engine; from storage.runs import start_run; "
        "print(start_run(make_engine(sys.argv[1]), 'ingest'), flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    )
    killed = subprocess.run([sys.executable, "-c", killed_run, db_url], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    killed_id = int(killed.stdout)
    with engine.begin() as conn:
        live_id, elsewhere_id = (
            conn.execute(
                insert(RunRow)
                .values(kind="ingest", started_at=datetime.now(UTC), status="running", owner=owner)
                .returning(RunRow.id)
            ).scalar_one()
            for owner in (process_owner(), "another-host:1")  # alive; not this host's to judge
        )
        statuses = dict(conn.execute(text("SELECT id, status FROM runs")).all())
    assert statuses == {killed_id: "running", live_id: "running", elsewhere_id: "running"}

    next_id = start_run(engine, "ingest")
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text("SELECT id, status, finished_at, detail FROM runs")).all()}
    engine.dispose()
    assert rows[killed_id].status == "failed" and rows[killed_id].finished_at is not None
    assert json.loads(rows[killed_id].detail)["error"] == ABANDONED
    assert {i: rows[i].status for i in (live_id, elsewhere_id, next_id)} == dict.fromkeys(
        (live_id, elsewhere_id, next_id), "running"
    )


def test_a_run_not_heard_from_for_ten_minutes_on_another_host_is_closed_by_the_next_run(db_url):
    """A run whose machine stopped for good cannot be checked from another host; its silence closes it.
    A live process on this host is believed over its heartbeat; a run from before heartbeats (revision
    0006) counts from its start."""
    import json

    from storage.owners import process_owner
    from storage.runs import RUN_SILENT_AFTER, SILENT, start_run

    engine = make_engine(db_url)
    init_db(engine)
    now = datetime.now(UTC)
    quiet, lately = now - RUN_SILENT_AFTER - timedelta(minutes=1), now - timedelta(minutes=1)
    runs = {
        "stopped machine": ("another-host:17", now - timedelta(hours=3), quiet),
        "long run, alive": ("another-host:18", now - timedelta(hours=3), lately),
        "stopped here (SIGSTOP), alive": (process_owner(), now - timedelta(hours=3), quiet),
        "before heartbeats, old": ("another-host:19", quiet, None),
        "before heartbeats, recent": ("another-host:20", lately, None),
    }
    with engine.begin() as conn:
        ids = {
            name: conn.execute(
                insert(RunRow)
                .values(kind="ingest", status="running", owner=owner, started_at=started, heartbeat_at=heard)
                .returning(RunRow.id)
            ).scalar_one()
            for name, (owner, started, heard) in runs.items()
        }
    next_id = start_run(engine, "backfill")
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text("SELECT id, status, finished_at, detail FROM runs")).all()}
        heard_of_next = conn.execute(text("SELECT heartbeat_at FROM v_runs WHERE run_id = :id"), {"id": next_id})
        assert heard_of_next.scalar_one() is not None
    engine.dispose()
    assert {name: rows[run_id].status for name, run_id in ids.items()} == {
        "stopped machine": "failed",
        "long run, alive": "running",
        "stopped here (SIGSTOP), alive": "running",
        "before heartbeats, old": "failed",
        "before heartbeats, recent": "running",
    }
    for name in ("stopped machine", "before heartbeats, old"):
        assert json.loads(rows[ids[name]].detail)["error"] == SILENT
        assert rows[ids[name]].finished_at is not None
    assert rows[next_id].status == "running"


def test_a_run_in_progress_beats_until_it_ends_and_a_closed_run_takes_no_beat(db_url):
    from storage.runs import RunHeartbeat, RunStats, beat, finish_run, start_run

    engine = make_engine(db_url)
    init_db(engine)

    def heard(run_id: int) -> datetime:
        with engine.connect() as conn:
            return conn.execute(select(RunRow.heartbeat_at).where(RunRow.id == run_id)).scalar_one()

    run_id = start_run(engine, "ingest")
    started = heard(run_id)
    with RunHeartbeat(engine, run_id, every=timedelta(seconds=0.1)):
        deadline = time.monotonic() + 30
        while heard(run_id) == started and time.monotonic() < deadline:
            time.sleep(0.05)
        first_beat = heard(run_id)
        assert first_beat > started
        while heard(run_id) == first_beat and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heard(run_id) > first_beat  # it goes on beating, not once
    last = heard(run_id)
    time.sleep(0.5)
    assert heard(run_id) == last  # stopped with its block
    finish_run(engine, run_id, RunStats(), "failed")
    beat(engine, run_id)  # a late beat, after another host closed the run, reopens nothing
    assert heard(run_id) == last
    engine.dispose()

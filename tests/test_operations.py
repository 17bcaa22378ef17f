"""Backfills (URL list, feed, sitemap, retries, kill and resume), reprocessing, overlapping runs and
the Prefect deployments, against real servers on 127.0.0.1 and real databases."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, text

from flows.backfill import backfill_flow
from flows.ingest import ingest_flow
from flows.reprocess import reprocess_flow
from storage import feed_state, make_engine
from tests.fixtures.cli import cli_command, ingest_command
from tests.fixtures.site import article_html, atom_feed, off_topic_articles, seed_articles
from tests.httpserver import Route

ROOT = Path(__file__).resolve().parents[1]


def serve_articles(server, count: int = 5, delay_s: float = 0.0) -> list[str]:
    articles = (seed_articles() + off_topic_articles())[:count]
    return [server.add(f"/{a.slug}", body=article_html(a, server.base).encode(), delay_s=delay_s) for a in articles]


def quiet_settings(tmp_path: Path, feeds: list[str] | None = None, **settings) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "feeds": [{"url": u} for u in feeds or ["http://127.0.0.1:9/none.xml"]],
                "settings": {"per_host_delay_s": 0, "http_retries": 0, **settings},
            }
        )
    )
    return path


def counts(db: str, sql: str):
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text(sql)).all()
    engine.dispose()
    return rows


def test_backfill_from_url_list(db_url, tmp_path, http_server, prefect_harness):
    urls = serve_articles(http_server, 4)
    listing = tmp_path / "urls.txt"
    listing.write_text("# articles to backfill\n\n" + "\n".join(urls) + "\n" + urls[0] + "  # again\n")
    result = backfill_flow(
        urls_file=str(listing), db=db_url, feeds_file=str(quiet_settings(tmp_path)), allow_private_networks=True
    )
    assert result["status"] == "completed" and result["enqueued"] == 4
    rows = counts(db_url, "SELECT origin, count(*) FROM v_articles WHERE origin <> 'seed' GROUP BY origin")
    assert [tuple(r) for r in rows] == [("backfill", 4)]
    again = backfill_flow(
        urls_file=str(listing), db=db_url, feeds_file=str(quiet_settings(tmp_path)), allow_private_networks=True
    )
    assert again["enqueued"] == 0 and again["articles_new"] == 0
    assert all(len(http_server.hits("/" + u.split("/", 3)[3])) == 1 for u in urls)


def test_backfill_from_feed_since_and_sitemap_index(tmp_path, http_server, prefect_harness):
    db = f"sqlite:///{tmp_path / 'b.db'}"
    articles = seed_articles()[:3] + off_topic_articles()[:1]
    links = [http_server.add(f"/{a.slug}", body=article_html(a, http_server.base).encode()) for a in articles]
    feed_url = http_server.add(
        "/atom.xml",
        body=atom_feed("F", http_server.base, list(zip(links[:3], articles[:3], strict=True))),
        content_type="application/atom+xml",
    )
    since = articles[1].published.date().isoformat()
    result = backfill_flow(
        feed=feed_url, since=since, db=db, feeds_file=str(quiet_settings(tmp_path)), allow_private_networks=True
    )
    expected = {
        link for link, a in zip(links[:3], articles[:3], strict=True) if a.published.date().isoformat() >= since
    }
    got = {r.url for r in counts(db, "SELECT url, feed_url FROM v_articles WHERE origin = 'backfill'")}
    assert got == expected and result["articles_new"] == len(expected)
    assert {r.feed_url for r in counts(db, "SELECT feed_url FROM v_articles WHERE origin = 'backfill'")} == {feed_url}

    child = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>{links[3]}</loc><news:news><news:publication_date>2026-11-05T10:00:00Z</news:publication_date>
    <news:title>Storm</news:title></news:news></url>
  <url><loc>{links[0]}</loc><lastmod>2026-11-01</lastmod></url>
</urlset>""".encode()
    http_server.add("/sitemap-news.xml", body=child, content_type="application/xml", gzip=True)
    index = f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{http_server.url("/sitemap-news.xml")}</loc></sitemap>
  <sitemap><loc>{http_server.url("/missing.xml")}</loc></sitemap>
</sitemapindex>""".encode()
    sitemap_url = http_server.add("/sitemap.xml", body=index, content_type="application/xml")
    result = backfill_flow(
        sitemap=sitemap_url,
        since="2026-11-03",
        db=db,
        feeds_file=str(quiet_settings(tmp_path)),
        allow_private_networks=True,
    )
    assert result["enqueued"] == 1 and result["articles_new"] == 1
    assert len(http_server.hits("/" + articles[0].slug)) == 1  # older than --since: not fetched again


def test_retry_failures_now(tmp_path, http_server, prefect_harness):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    article = seed_articles()[0]
    state = {"up": False}

    def flaky(_handler):
        return Route(body=article_html(article, http_server.base).encode()) if state["up"] else Route(status=503)

    url = http_server.add("/" + article.slug, Route(handler=flaky))
    listing = tmp_path / "urls.txt"
    listing.write_text(url + "\n")
    first = backfill_flow(
        urls_file=str(listing), db=db, feeds_file=str(quiet_settings(tmp_path)), allow_private_networks=True
    )
    assert first["articles_failed"] == 1
    failure = counts(db, "SELECT stage, error, attempts, next_retry_at FROM failures")[0]
    assert failure.stage == "fetch" and "503" in failure.error and failure.next_retry_at is not None
    state["up"] = True
    retried = backfill_flow(
        retry_failures=True, db=db, feeds_file=str(quiet_settings(tmp_path)), allow_private_networks=True
    )
    assert retried["articles_new"] == 1
    assert counts(db, "SELECT resolved_at FROM failures")[0].resolved_at is not None


def test_backfill_killed_midway_resumes_without_refetching(tmp_path, http_server):
    urls = serve_articles(http_server, 7, delay_s=0.4)
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(urls))
    db = f"sqlite:///{tmp_path / 'k.db'}"
    feeds = quiet_settings(tmp_path)
    env = {
        **os.environ,
        "CLAIMWIRE_BATCH_SIZE": "1",
        "CLAIMWIRE_PER_HOST_CONCURRENCY": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    command = cli_command(
        "backfill", "--urls", str(listing), "--db", db, "--feeds", str(feeds), "--allow-private-networks"
    )
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline:
        try:
            stored = counts(db, "SELECT count(*) FROM articles WHERE origin = 'backfill'")[0][0]
        except Exception:
            stored = 0
        if stored >= 2:
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert 2 <= stored < 7, "the backfill should have been stopped midway"
    resumed = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = counts(db, "SELECT url FROM v_articles WHERE origin = 'backfill'")
    assert sorted(r.url for r in rows) == sorted(urls)  # every article exactly once
    hits = [len(http_server.hits("/" + u.split("/", 3)[3])) for u in urls]
    assert sum(h > 1 for h in hits) <= 1  # at most the page in flight at the kill is fetched twice
    # The killed run never recorded its end: the next one closed it as failed, with the reason.
    runs = counts(db, "SELECT status, detail FROM runs WHERE kind = 'backfill' ORDER BY id")
    assert [r.status for r in runs] == ["failed", "completed"]
    assert "process ended without finishing" in json.loads(runs[0].detail)["error"]


def test_reprocess_after_extractor_version_bump(db_url, prefect_harness):
    from typer.testing import CliRunner

    from extractors.claims import EXTRACTOR_VERSION
    from flows.cli import app

    assert CliRunner().invoke(app, ["init", "--db", db_url]).exit_code == 0
    before = counts(db_url, "SELECT article_id, count(*) FROM v_claims GROUP BY article_id ORDER BY article_id")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE claims SET extractor_version = 'old', claimant = 'stale'"))
        conn.execute(text("UPDATE articles SET claims_version = 'old'"))
    engine.dispose()
    nothing = reprocess_flow(db=db_url, origin="feed")
    assert nothing["articles_reprocessed"] == 0
    result = reprocess_flow(db=db_url, origin="seed")
    assert result["articles_reprocessed"] == 5
    after = counts(db_url, "SELECT article_id, count(*) FROM v_claims GROUP BY article_id ORDER BY article_id")
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    versions = counts(db_url, "SELECT DISTINCT extractor_version FROM v_claims")
    assert [r[0] for r in versions] == [EXTRACTOR_VERSION]
    assert counts(db_url, "SELECT count(*) FROM claims WHERE claimant = 'stale'")[0][0] == 0
    runs = counts(db_url, "SELECT kind, status FROM v_runs WHERE kind = 'reprocess'")
    assert [tuple(r) for r in runs] == [("reprocess", "completed"), ("reprocess", "completed")]


def _many_feeds(server, n_feeds: int = 6, per_feed: int = 3) -> list[str]:
    pool = seed_articles() + off_topic_articles()
    feeds = []
    for f in range(n_feeds):
        items = []
        for i in range(per_feed):
            art = pool[(f * per_feed + i) % len(pool)]
            path = f"/f{f}/{i}/{art.slug}"
            items.append(
                (
                    server.add(
                        path, body=article_html(art, server.base, canonical=server.url(path)).encode(), delay_s=0.05
                    ),
                    art,
                )
            )
        feeds.append(
            server.add(
                f"/feed{f}.xml", body=atom_feed(f"Feed {f}", server.base, items), content_type="application/atom+xml"
            )
        )
    return feeds


def test_thread_worker_drains_in_one_task_run_whatever_the_round_size(db_url, tmp_path, http_server, prefect_harness):
    """Rounds hand a worker over to a fresh process; threads have none to give, so on the thread runner
    a round would only add a task run, an engine and a prefetch thread to the flow's one process."""
    feeds = _many_feeds(http_server, n_feeds=1, per_feed=5)
    settings = {"batch_size": 2, "round_articles": 2}
    result = ingest_flow(
        feeds_file=str(quiet_settings(tmp_path, feeds, **settings)), db=db_url, allow_private_networks=True
    )
    assert result["status"] == "completed", result
    assert result["articles_new"] + result["articles_duplicate"] == 5
    assert (result["batches"], result["rounds"]) == (3, 1)
    detail = counts(db_url, "SELECT detail FROM runs WHERE kind = 'ingest'")[0][0]
    assert json.loads(detail)["rounds"] == 1


def test_two_overlapping_ingest_runs_on_postgres_store_every_article_once(pg_url, tmp_path, http_server):
    feeds = _many_feeds(http_server)
    feeds_file = quiet_settings(tmp_path, feeds, batch_size=2)
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    from typer.testing import CliRunner

    from flows.cli import app

    assert CliRunner().invoke(app, ["init", "--db", pg_url, "--no-seed"]).exit_code == 0
    command = ingest_command(feeds_file, pg_url, "--overlap", "parallel")
    workers = [
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [o[1][-1500:] for o in outputs]
    rows = counts(pg_url, "SELECT canonical_url, count(*) FROM articles GROUP BY canonical_url")
    assert len(rows) == 18 and all(r[1] == 1 for r in rows)
    polls = [len(http_server.hits(f"/feed{f}.xml")) for f in range(6)]
    assert polls == [1] * 6  # the two workers split the feeds
    pages = [r for r in http_server.requests if r.path.startswith("/f") and not r.path.endswith(".xml")]
    assert len(pages) == 18  # and the pages: each fetched once
    runs = counts(pg_url, "SELECT status, feeds_polled FROM v_runs WHERE kind = 'ingest'")
    assert len(runs) == 2 and sum(r.feeds_polled for r in runs) == 6


def test_overlapping_scheduled_run_is_skipped(tmp_path, http_server, prefect_harness):
    from flows.leases import acquire, release

    db = f"sqlite:///{tmp_path / 'o.db'}"
    feeds_file = quiet_settings(tmp_path, [http_server.add("/x.xml", body=b"<rss version='2.0'><channel/></rss>")])
    engine = make_engine(db)
    from storage import init_db

    init_db(engine)
    acquire(engine, "ingest", wait=False)  # a run still in progress in this process
    try:
        skipped = ingest_flow(feeds_file=str(feeds_file), db=db, allow_private_networks=True)
        assert skipped["status"] == "skipped"
        assert counts(db, "SELECT count(*) FROM v_runs")[0][0] == 0
    finally:
        release(engine, "ingest")
    done = ingest_flow(feeds_file=str(feeds_file), db=db, allow_private_networks=True)
    assert done["status"] == "completed"
    engine.dispose()


def test_a_lease_outliving_its_ttl_is_kept_by_the_heartbeat_of_the_run_holding_it(db_url):
    """A scheduled ingest skips while another runs, however long that one lasts: the lease (ten minutes, so
    a machine gone blocks the schedule that long at most) is renewed with each beat of the run's heartbeat."""
    import functools

    from flows.leases import acquire, release, renew, try_acquire
    from storage import init_db
    from storage.models import Lease
    from storage.runs import RunHeartbeat, start_run

    engine = make_engine(db_url)
    init_db(engine)

    def expire() -> None:  # as if the TTL went by while the run went on
        with engine.begin() as conn:
            conn.execute(Lease.__table__.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))

    def expires_at() -> datetime:
        with engine.connect() as conn:
            return conn.execute(Lease.__table__.select()).one().expires_at

    acquire(engine, "ingest", wait=False)
    run_id = start_run(engine, "ingest")
    expire()
    with RunHeartbeat(engine, run_id, every=timedelta(seconds=0.1), also=[functools.partial(renew, engine, "ingest")]):
        deadline = time.monotonic() + 30
        while expires_at() < datetime.now(UTC) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not try_acquire(engine, "ingest")  # still held: the next run skips
    expire()  # with no heartbeat, the lapsed lease goes to the next run
    assert try_acquire(engine, "ingest")
    release(engine, "ingest")
    engine.dispose()


@pytest.mark.parametrize("skew", [timedelta(minutes=-40), timedelta(minutes=40)], ids=["slow", "fast"])
def test_a_host_whose_clock_is_off_holds_its_lease_run_feeds_and_claims_by_the_database_clock(
    skew, pg_url, http_server
):
    """Workers on several machines share one PostgreSQL database; a machine whose clock is 40 minutes off
    (no NTP, a VM resumed from a snapshot) writes its lease, its run's heartbeat, its feeds' next polls and
    its queue claims by the database's clock (storage/clock.py). By its own clock, a slow machine's lease
    (10 min) would look expired, its run silent (10 min) and its claims stale (30 min) to every other
    machine, which would start a second ingest, close the live run and fetch its batch again, and its
    feeds would be due again at once; a fast machine's would hold 40 minutes too long."""
    import time_machine

    from flows.leases import release, try_acquire
    from flows.poll import poll_feeds
    from flows.settings import Settings
    from flows.stages import claim_and_fetch
    from storage import init_db
    from storage.clock import database_now
    from storage.models import Lease, QueuedUrl, RunRow
    from storage.runs import beat, start_run

    feeds = _many_feeds(http_server, n_feeds=2, per_feed=4)
    settings = Settings(db=pg_url, allow_private_networks=True, per_host_delay_s=0, batch_size=4)
    engine = make_engine(pg_url)
    init_db(engine)

    def database_time() -> datetime:
        with engine.connect() as conn:
            return database_now(conn)

    with engine.begin() as conn:
        feed_state.sync_feeds(conn, [feed_state.FeedConfig(u) for u in feeds])
    try:
        with time_machine.travel(datetime.now(UTC) + skew, tick=True):
            assert abs(datetime.now(UTC) - database_time() - skew) < timedelta(minutes=1)  # the machine is off
            assert try_acquire(engine, "ingest")
            run_id = start_run(engine, "ingest")
            beat(engine, run_id)
            with engine.begin() as conn:
                due = feed_state.due_feeds(conn, feeds, database_now(conn))
                # The run stands for another machine's: only silence can close it from here.
                conn.execute(RunRow.__table__.update().where(RunRow.id == run_id).values(owner="skewed-host:1"))
            assert poll_feeds(engine, settings, due).extra["items_new"] == 8
            first = claim_and_fetch(engine, settings, origins=["feed"])
        assert len(first.work) == 4

        # A machine whose clock is right, with the same database.
        now = database_time()
        assert abs(datetime.now(UTC) - now) < timedelta(minutes=1)
        with engine.connect() as conn:
            lease = conn.execute(Lease.__table__.select()).one()
            run = conn.execute(RunRow.__table__.select().where(RunRow.id == run_id)).one()
            claimed = conn.execute(QueuedUrl.__table__.select().where(QueuedUrl.status == "fetching")).all()
            next_polls = conn.execute(text("SELECT next_poll_at FROM feeds")).scalars().all()
        window = timedelta(minutes=2)  # the test's own few seconds, nowhere near the 40 minutes
        assert now - window < lease.expires_at - timedelta(minutes=10) < now
        assert now - window < run.heartbeat_at <= now and now - window < run.started_at <= now
        assert len(claimed) == 4 and all(now - window < c.claimed_at <= now for c in claimed)
        assert all(now + timedelta(minutes=13) < t <= now + timedelta(minutes=15) for t in next_polls)

        assert not try_acquire(engine, "ingest")  # no second ingest beside the first
        start_run(engine, "ingest")  # which closes runs gone silent: not this one
        with engine.connect() as conn:
            assert conn.execute(select(RunRow.status).where(RunRow.id == run_id)).scalar_one() == "running"
            assert feed_state.due_feeds(conn, feeds, database_now(conn), claim=False) == []
        second = claim_and_fetch(engine, settings, origins=["feed"])
        assert {w.id for w in second.work}.isdisjoint(w.id for w in first.work) and len(second.work) == 4
        # `status` says when each run was heard from by the clock the heartbeat was written by.
        status = subprocess.run(
            cli_command("status", "--db", pg_url), capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert re.search(rf"\b{run_id} +│ ingest +│[^│]+│ running \(heard \d+ s ago\)", status.stdout), status.stdout
    finally:
        release(engine, "ingest")
        engine.dispose()


def test_an_ingest_slower_than_its_lease_keeps_it_and_says_it_is_alive(tmp_path, http_server):
    """The ingest itself wires the renewal: its lease lapsed after its TTL while it ran (the next scheduled
    ingest then started beside it), and nothing but this run's heartbeat renews it now. Held by a slow
    feed, the run finds its lapsed lease renewed within a beat (a minute), its heartbeat moved on, and
    another ingest refused meanwhile."""
    from sqlalchemy import select, update

    from flows.leases import try_acquire
    from storage.models import Lease, RunRow

    feeds = _many_feeds(http_server, n_feeds=1, per_feed=2)
    http_server.routes["/feed0.xml"].delay_s = 100
    feeds_file = quiet_settings(tmp_path, feeds, read_timeout_s=110, total_timeout_s=120)
    db = f"sqlite:///{tmp_path / 'long.db'}"
    lapsed_at: list[datetime] = []
    seen: dict[str, object] = {}

    def lease_renewed_after_it_lapsed() -> bool:
        if not http_server.hits("/feed0.xml"):
            return False  # the run holds its lease and has started polling
        engine = make_engine(db)
        try:
            with engine.begin() as conn:
                if not lapsed_at:  # as if the TTL went by while the run went on
                    lapsed_at.append(datetime.now(UTC))
                    conn.execute(update(Lease).values(expires_at=lapsed_at[0] - timedelta(seconds=1)))
                    return False
                expires_at = conn.execute(select(Lease.expires_at)).scalar_one_or_none()
                if expires_at is None or expires_at < datetime.now(UTC):
                    return False  # still lapsed (unless the run ended, which fails the test where it waits)
                run = conn.execute(select(RunRow.started_at, RunRow.heartbeat_at)).one()
            seen["heard_after_start"] = run.heartbeat_at - run.started_at
            seen["another_ingest_refused"] = not try_acquire(engine, "ingest")
            return True
        finally:
            engine.dispose()

    _sigterm_ingest_when(ingest_command(feeds_file, db), lease_renewed_after_it_lapsed, tmp_path / "ingest.log")
    assert seen["another_ingest_refused"], seen
    assert seen["heard_after_start"] >= timedelta(seconds=50), seen  # a beat, not the start's own stamp


def test_prefect_yaml_deploys_all_three(prefect_harness, tmp_path):
    from prefect.settings import PREFECT_API_URL

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert {d["name"] for d in spec["deployments"]} == {"ingest", "backfill", "reprocess"}
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_LEVEL": "WARNING"}
    subprocess.run(
        [sys.executable, "-m", "prefect", "work-pool", "create", "claimwire", "--type", "process"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    deployed = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]

    import asyncio

    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return await client.read_deployments()

    deployments = {d.name: d for d in asyncio.run(read())}
    assert {"ingest", "backfill", "reprocess"} <= set(deployments)
    ingest = deployments["ingest"]
    assert ingest.schedules and ingest.schedules[0].schedule.interval.total_seconds() == 900
    assert not deployments["backfill"].schedules and not deployments["reprocess"].schedules
    assert "urls_file" in deployments["backfill"].parameter_openapi_schema["properties"]
    assert deployments["reprocess"].parameter_openapi_schema["properties"]["everything"]["type"] == "boolean"
    for name in ("ingest", "backfill", "reprocess"):  # workers' processes keep to one malloc arena
        assert deployments[name].job_variables["env"]["MALLOC_ARENA_MAX"] == "1"


@pytest.mark.parametrize("runner", ["process", "dask"])
def test_parallel_task_runners_store_every_article_once(runner, pg_url, tmp_path, http_server):
    feeds = _many_feeds(http_server, n_feeds=3, per_feed=3)
    # Rounds of one batch: the nine URLs take five rounds, so the workers hand over four times or more.
    feeds_file = quiet_settings(tmp_path, feeds, batch_size=2, round_articles=2)
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    command = ingest_command(feeds_file, pg_url, "--workers", "2", "--task-runner", runner)
    # Output to a file: a pipe nobody reads while the run goes on would stall the run once it filled.
    with (tmp_path / "ingest.log").open("w+") as output:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        descendants = _descendants_while_running(process, timeout_s=300)
        if process.poll() is None:  # the run takes ~40 s: one that has not ended is stuck
            process.kill()
            process.wait()
            pytest.fail(f"the ingest did not end within 300 s; its output ends:\n{_tail(output)}")
        assert process.returncode == 0, _tail(output)
    # The workers report to the run's own throwaway API rather than each starting one more (Prefect's
    # own throwaway server runs as `uvicorn`, claimwire's as flows.prefect_server).
    api_servers = [pid for pid, cmd in descendants.items() if "uvicorn" in cmd or "flows.prefect_server" in cmd]
    assert len(api_servers) == 1, descendants
    # Every round in a fresh process (a new one per task run, or the Dask worker restarted after its
    # round): five rounds, five worker processes or more.
    workers = [pid for pid, cmdline in descendants.items() if "multiprocessing.spawn" in cmdline]
    assert len(workers) >= 5, descendants
    detail = counts(pg_url, "SELECT detail FROM runs WHERE kind = 'ingest'")[0][0]
    # A round is one batch of two URLs: 2 + 2 + 2 + 2 + 1, and maybe one more that found the queue empty.
    assert json.loads(detail)["rounds"] >= 5
    rows = counts(pg_url, "SELECT canonical_url, count(*) FROM articles GROUP BY canonical_url")
    assert len(rows) == 9 and all(r[1] == 1 for r in rows)
    # Nine URLs carry seven distinct stories (the fixture pool repeats): two are stored as duplicates.
    assert counts(pg_url, "SELECT articles_new, status FROM v_runs WHERE kind = 'ingest'")[0] == (7, "completed")
    assert counts(pg_url, "SELECT count(*) FROM v_articles WHERE duplicate_of IS NOT NULL")[0][0] == 2
    assert counts(pg_url, "SELECT count(*) FROM fetch_queue WHERE status NOT IN ('done', 'duplicate')")[0][0] == 0


@pytest.mark.parametrize("fresh_process_per_task", [False, True])
def test_task_engine_exiting_in_a_worker_process_fails_the_round_instead_of_hanging(
    fresh_process_per_task, prefect_harness
):
    """In a worker process Prefect turns an error outside the task (its API unreachable) into exit(1).
    With Prefect's own process runner that SystemExit killed the pool's manager thread in the parent and
    the round's future never resolved: a run hung for 20 minutes in CI. The round must fail with a
    reason, and the pool must still run the next one."""
    from prefect import flow, task
    from prefect.futures import wait

    from flows.process_runner import FreshProcessTaskRunner, ProcessTaskRunner, TaskEngineExited

    @task
    def round_that_exits() -> None:
        raise SystemExit(1)

    @task
    def round_that_works() -> int:
        return os.getpid()

    runner = FreshProcessTaskRunner if fresh_process_per_task else ProcessTaskRunner

    @flow(task_runner=runner(max_workers=1))
    def two_rounds() -> tuple[str, int]:
        exited = round_that_exits.submit()
        done, not_done = wait([exited], timeout=120)
        assert not not_done, "the round's future never resolved"
        with pytest.raises(TaskEngineExited, match="SystemExit .exit code 1.") as failure:
            exited.result()
        return str(failure.value), round_that_works.submit().result()

    reason, worker_pid = two_rounds()
    assert "Prefect API" in reason
    assert worker_pid not in (os.getpid(), 0)


def test_dask_workers_keep_no_profile_of_what_they_run_before_or_after_a_restart(prefect_harness):
    """A worker's task runs for a whole round; Dask's profiler would keep a call tree of it that grows
    all round (~0.11 MiB per article in the benchmark). claimwire's local cluster restarts a worker
    between rounds, and the worker that replaces it must not profile either (a configuration set only
    while the cluster was built once let it). The same probe on a stock Dask runner shows the
    profiler's record, so the probe can tell."""
    from prefect import flow, task
    from prefect_dask import DaskTaskRunner

    from flows.ingest import fresh_worker_after
    from flows.runtime import task_runner
    from flows.settings import Settings

    @task
    def busy_round(seconds: float) -> tuple[str, int]:
        """Work in the worker's task thread, long enough for the profiler to sample it and close a
        cycle (1 s); report the worker and how many sampled seconds and tasks it keeps."""
        from distributed import get_worker

        worker = get_worker()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sum(range(10_000))
        time.sleep(1.2)  # past the profiler's next cycle, which files the samples away
        return worker.address, len(worker.profile_history) + len(worker.profile_keys)

    @flow
    def two_rounds() -> tuple[list[tuple[str, int]], str | None]:
        """Two rounds with the drain's hand-over between them; what each saw and which slot's worker
        was restarted."""
        first = busy_round.submit(1.5)
        rounds = [first.result()]
        restarted = fresh_worker_after(first)
        rounds.append(busy_round.submit(1.5).result())
        return rounds, restarted

    claimwire_dask = task_runner(Settings(task_runner="dask", workers=1))
    rounds, restarted = two_rounds.with_options(task_runner=claimwire_dask)()
    (first_worker, first_kept), (second_worker, second_kept) = rounds
    assert restarted == "claimwire-slot-0" and second_worker != first_worker  # a new process, a new address
    assert (first_kept, second_kept) == (0, 0)
    stock_dask = DaskTaskRunner(
        cluster_kwargs={"n_workers": 1, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    )
    ((_, kept), (_, kept_later)), restarted = two_rounds.with_options(task_runner=stock_dask)()
    assert restarted is None and kept > 0 and kept_later > kept  # not claimwire's cluster: left as it is


def test_dask_round_is_never_hit_by_the_restart_of_the_worker_beside_it(prefect_harness, tmp_path):
    """Two rounds finish together; the drain hands over the first (its worker restarted, a new round
    submitted) before it has read the second. The new round must go to the restarted worker, not to
    the second round's idle one, which is restarted next: there it would be killed and run again."""
    from prefect import flow, task

    from flows.ingest import fresh_worker_after
    from flows.runtime import task_runner
    from flows.settings import Settings

    starts = tmp_path / "starts"

    @task
    def a_round(label: str, seconds: float) -> tuple[str, str]:
        from distributed import get_worker

        with starts.open("a") as log:
            log.write(label + "\n")
        time.sleep(seconds)
        return label, str(get_worker().name)

    @flow
    def hand_over() -> dict[str, object]:
        first, second = a_round.submit("first", 0.5), a_round.submit("second", 0.5)
        done = {"first": first.result()}
        second.wait()  # finished, not yet handed over
        slots = [fresh_worker_after(first)]
        third = a_round.submit("third", 3.0)
        time.sleep(1.0)  # the third round has started somewhere
        done["second"] = second.result()
        slots.append(fresh_worker_after(second))
        done["third"] = third.result(timeout=120)
        return {"done": done, "slots": slots}

    outcome = hand_over.with_options(task_runner=task_runner(Settings(task_runner="dask", workers=2)))()
    done = outcome["done"]
    assert sorted(outcome["slots"]) == ["claimwire-slot-0", "claimwire-slot-1"]
    assert done["first"][1] != done["second"][1]
    assert done["third"][1] == done["first"][1]  # the first round's worker, restarted
    assert starts.read_text().split().count("third") == 1  # ran once: the second restart missed it


def test_dask_round_outlives_its_worker_dying(prefect_harness, tmp_path):
    """A worker process that dies mid-round (killed, out of memory) is started again by its nanny with
    the same slot, so the round pinned to that slot runs again there instead of waiting for ever."""
    from prefect import flow, task

    from flows.runtime import task_runner
    from flows.settings import Settings

    died = tmp_path / "died"

    @task
    def a_round() -> str:
        from distributed import get_worker

        if not died.exists():
            died.touch()
            os._exit(1)
        return str(get_worker().name)

    @flow
    def one_round() -> str:
        return a_round.submit().result(timeout=120)

    assert one_round.with_options(task_runner=task_runner(Settings(task_runner="dask", workers=2)))() == "0"
    assert died.exists()


def test_dask_worker_restarted_again_soon_keeps_its_nanny(prefect_harness):
    """Dask's SpecCluster closes a worker's nanny for good when no worker of that name is connected
    ``lost-worker-timeout`` (15 s) after one left. A worker whose rounds take about that long is being
    restarted again just then, and lost its nanny: the restart timed out after two minutes, the slot
    was retired and the run went on a worker short (seen with rounds of ten articles). Here the timeout
    is shorter than a restart, so every restart meets that check while its worker is away."""
    import dask
    from prefect import flow, task

    from flows.ingest import fresh_worker_after
    from flows.runtime import task_runner
    from flows.settings import Settings

    @task
    def a_round() -> tuple[str, int | None]:
        from distributed import get_worker

        worker = get_worker()
        return worker.address, worker.monitor.maxlen

    @flow
    def three_rounds() -> tuple[list[tuple[str, int | None]], list[str | None], int, int | None, set[int | None]]:
        from prefect.context import FlowRunContext

        workers, slots = [], []
        for _ in range(3):
            finished = a_round.submit()
            workers.append(finished.result(timeout=60))
            slots.append(fresh_worker_after(finished))
        runner = FlowRunContext.get().task_runner
        scheduler, client = runner._cluster.scheduler, runner._client
        logs = {scheduler.transition_log.maxlen, client.scheduler_comm.recent_message_log.maxlen}
        return workers, slots, len(scheduler.computations), scheduler.monitor.maxlen, logs

    # The runner first: making it imports distributed, which loads its configuration defaults. Imported
    # inside the ``set`` below, they would all be removed again on its exit, for every later test.
    runner = task_runner(Settings(task_runner="dask", workers=1))
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "50ms"}):
        workers, slots, computations, monitor_length, logs = three_rounds.with_options(task_runner=runner)()
    assert slots == ["claimwire-slot-0"] * 3  # each restart came back
    assert len({address for address, _ in workers}) == 3  # each round in a new worker process
    # The flow's process, which holds the scheduler, keeps no dashboard history of the rounds (one
    # submission each) nor more than 30 s of system readings; nor do the workers.
    assert computations == 1 and monitor_length == 60
    assert logs == {20}  # nor the last thousand messages (each round's graph among them)
    assert {length for _, length in workers} == {60}


def test_dask_scheduler_forgets_the_workers_it_restarted(prefect_harness):
    """Every round's worker is restarted, so a long backfill meets a new worker each round. The scheduler
    (in the flow's process) must keep none of those that left: Dask's work stealing kept each worker it
    weighed while another was idle, and with it the worker's last round and that round's unpickled task
    (~40 KiB a round, the flow process's growth in benchmarks/flow_memory.py)."""
    import gc

    from distributed.scheduler import WorkerState
    from prefect import flow, task

    from flows.ingest import fresh_worker_after
    from flows.runtime import task_runner
    from flows.settings import Settings

    @task
    def a_round() -> str:
        from distributed import get_worker

        time.sleep(1.0)  # long enough for the scheduler to weigh the busy worker against the idle one
        return get_worker().address

    @flow
    def rounds_beside_an_idle_worker() -> tuple[set[str], int, int, int | None]:
        from prefect.context import FlowRunContext

        addresses = set()
        for _ in range(3):
            finished = a_round.submit()
            addresses.add(finished.result(timeout=60))
            fresh_worker_after(finished)
        scheduler = FlowRunContext.get().task_runner._cluster.scheduler
        gc.collect()
        live = {id(ws) for ws in scheduler.workers.values()}
        gone = [o for o in gc.get_objects() if isinstance(o, WorkerState) and id(o) not in live]
        return addresses, len(gone), len(live), scheduler._deque_handler.deque.maxlen

    runner = task_runner(Settings(task_runner="dask", workers=2))
    addresses, gone, live, log_length = rounds_beside_an_idle_worker.with_options(task_runner=runner)()
    assert len(addresses) == 3 and live == 2  # three rounds, each in a worker that was then restarted
    assert gone == 0
    assert log_length == 100  # and not the last 10,000 log records of the scheduler


def _tail(output, chars: int = 3000) -> str:
    output.seek(0)
    return output.read()[-chars:]


def _descendants_while_running(process: subprocess.Popen, timeout_s: float) -> dict[int, str]:
    """Every process started under ``process`` (PID: command line), sampled until it exits."""
    import psutil

    root = psutil.Process(process.pid)
    seen: dict[int, str] = {}
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            children = root.children(recursive=True)
        except psutil.NoSuchProcess:
            break
        for child in children:
            if child.pid not in seen:
                try:
                    seen[child.pid] = " ".join(child.cmdline())
                except psutil.Error:
                    continue
        time.sleep(0.2)
    return seen


# The served runner looks for due runs every 10 s by default; a test's schedule fires every 6 s.
SERVE_TEST_ENV = {"PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_RUNNER_POLL_FREQUENCY": "2"}


def test_serve_runs_the_schedule_and_stops_cleanly_on_ctrl_c(tmp_path, http_server):
    feed = http_server.add("/s.xml", body=atom_feed("S", http_server.base, []), content_type="application/atom+xml")
    feeds_file = quiet_settings(tmp_path, [feed])
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {**os.environ, **SERVE_TEST_ENV}
    env.pop("PREFECT_API_URL", None)  # no server set up: serve brings its own
    process = subprocess.Popen(
        cli_command("serve", "--feeds", str(feeds_file), "--db", db, "--interval", "0.1", "--allow-private-networks"),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        runs = 0
        while time.monotonic() < deadline and runs < 2:
            time.sleep(2)
            try:
                runs = counts(db, "SELECT count(*) FROM v_runs WHERE kind = 'ingest' AND status = 'completed'")[0][0]
            except Exception:
                runs = 0
        assert runs >= 2, "the schedule should have fired at least twice"
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output[-2000:]
    assert "stopped" in output
    assert len(http_server.hits("/s.xml")) == 1  # the second run found the feed not yet due again


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_serve_stopped_during_a_run_stops_the_run_before_its_server(tmp_path, http_server, stop_signal):
    """A service manager's SIGTERM, or Ctrl-C, reaches the serve command (not the run's process, which is
    in a session of its own) while a scheduled run is polling a slow feed. The run is stopped and
    reports how it ended before the local server goes, so nothing is left behind retrying a server that
    is gone, and the command exits at once."""
    import psutil

    from flows.serving import flow_run_processes

    children: list[psutil.Process] = []
    feed = http_server.add("/slow.xml", body=atom_feed("S", http_server.base, []), delay_s=60)
    feeds_file = quiet_settings(tmp_path, [feed])
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | SERVE_TEST_ENV
    with (tmp_path / "serve.log").open("w+") as output:
        process = subprocess.Popen(
            cli_command(
                "serve", "--feeds", str(feeds_file), "--db", db, "--interval", "0.1", "--allow-private-networks"
            ),
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 180
            while not http_server.hits("/slow.xml"):  # a scheduled run is polling its feed
                assert process.poll() is None and time.monotonic() < deadline, "no scheduled run polled its feed"
                time.sleep(0.2)
            runs = flow_run_processes(psutil.Process(process.pid))
            # The schedule keeps starting runs (each skips while the first holds the lease): one started
            # between two snapshots is in the later one only, so the runs are counted with the children.
            children = list(set(psutil.Process(process.pid).children(recursive=True)) | set(runs))
            assert runs, [p.cmdline() for p in children]
            started = time.monotonic()
            process.send_signal(stop_signal)
            assert process.wait(timeout=60) == 0
            stopping_s = time.monotonic() - started
            gone, alive = psutil.wait_procs(children, timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        output.seek(0)
        log = output.read()
    assert "stopped" in log, log[-2000:]
    assert set(runs) <= set(gone) and alive == [], [p.pid for p in alive]
    assert stopping_s < 30, stopping_s  # not a client retrying a server that is gone
    # The interrupted run recorded itself failed; none is left 'running'. (A run the schedule started
    # while the runner was stopping may have finished: the feed, taken by the first run, was not due.)
    runs = counts(db, "SELECT kind, status FROM v_runs ORDER BY run_id")
    assert tuple(runs[0]) == ("ingest", "failed") and all(r.status != "running" for r in runs), runs


def test_two_prefect_workers_on_one_pool_split_the_feeds(pg_url, tmp_path, http_server):
    """The scale-out path: a Prefect server, one work pool, two `prefect worker` processes (one run each)
    and one PostgreSQL database. Two ingest runs at once split the feeds and store every article once."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from flows.cli import app
    from flows.prefect_server import local_prefect_server

    feeds = _many_feeds(http_server)
    feeds_file = quiet_settings(tmp_path, feeds, batch_size=2)
    assert CliRunner().invoke(app, ["init", "--db", pg_url, "--no-seed"]).exit_code == 0
    with local_prefect_server(tmp_path / "prefect") as api, temporary_settings({PREFECT_API_URL: api}):

        async def create_pool():
            async with get_client() as client:
                await client.create_work_pool(WorkPoolCreate(name="split-test", type="process"))

        asyncio.run(create_pool())
        ingest_flow.from_source(source=str(ROOT), entrypoint="flows/ingest.py:ingest_flow").deploy(
            name="split-test",
            work_pool_name="split-test",
            build=False,
            push=False,
            print_next_steps=False,
            parameters={
                "feeds_file": str(feeds_file),
                "db": pg_url,
                "allow_private_networks": True,
                "overlap": "parallel",
            },
        )
        env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_LOGGING_LEVEL": "WARNING"}
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "worker",
                    "start",
                    "--pool",
                    "split-test",
                    "--limit",
                    "1",
                    "--name",
                    f"worker-{i}",
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for i in range(2)
        ]
        try:
            runs = [run_deployment("ingest/split-test", timeout=0) for _ in range(2)]

            async def states():
                async with get_client() as client:
                    return [(await client.read_flow_run(r.id)).state for r in runs]

            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                current = asyncio.run(states())
                if all(s is not None and s.is_final() for s in current):
                    break
                time.sleep(3)
            assert all(s.is_completed() for s in current), [s.name if s else None for s in current]
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=60)
    rows = counts(pg_url, "SELECT canonical_url, count(*) FROM articles GROUP BY canonical_url")
    assert len(rows) == 18 and all(r[1] == 1 for r in rows)
    assert [len(http_server.hits(f"/feed{f}.xml")) for f in range(6)] == [1] * 6
    runs_rows = counts(pg_url, "SELECT status, feeds_polled FROM v_runs WHERE kind = 'ingest'")
    assert len(runs_rows) == 2 and sum(r.feeds_polled for r in runs_rows) == 6


def _queued_by_status(db: str) -> dict[str, int]:
    return {r[0]: r[1] for r in counts(db, "SELECT status, count(*) FROM fetch_queue GROUP BY status")}


def test_drain_told_to_stop_stores_the_article_in_hand_and_hands_back_the_rest(db_url, http_server):
    """flows/stopping.py: a drain that is asked to stop ends after the article it is storing; what it had
    claimed (the rest of its batch, the batch fetched ahead) is pending again, not stuck as claimed."""
    from datetime import UTC, datetime

    from flows.poll import poll_feeds
    from flows.settings import Settings
    from flows.stages import drain
    from storage import feed_state, init_db

    feeds = _many_feeds(http_server, n_feeds=2, per_feed=6)
    settings = Settings(db=db_url, allow_private_networks=True, per_host_delay_s=0, batch_size=4)
    engine = make_engine(db_url)
    init_db(engine)
    with engine.begin() as conn:
        feed_state.sync_feeds(conn, [feed_state.FeedConfig(u) for u in feeds])
        due = feed_state.due_feeds(conn, feeds, datetime.now(UTC))
    assert poll_feeds(engine, settings, due).extra["items_new"] == 12

    def one_article_stored() -> bool:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM articles")).scalar_one() >= 1

    try:
        stopped = drain(engine, settings, origins=["feed"], should_stop=one_article_stored)
        assert stopped.articles_new + stopped.articles_duplicate == 1
        assert stopped.extra["batches"] == 1
        # Three from the batch in hand, four fetched ahead: all pending again, none left claimed.
        assert stopped.extra["articles_handed_back"] == 7
        assert _queued_by_status(db_url) == {"done": 1, "pending": 11}

        rest = drain(engine, settings, origins=["feed"])
    finally:
        engine.dispose()
    assert rest.articles_new + rest.articles_duplicate == 11 and "articles_handed_back" not in rest.extra
    rows = counts(db_url, "SELECT canonical_url, count(*) FROM articles GROUP BY canonical_url")
    assert len(rows) == 12 and all(r[1] == 1 for r in rows)


def _ingest_env() -> dict[str, str]:
    """A one-off ingest with no Prefect server configured: it starts its own."""
    return {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_LOGGING_LEVEL": "WARNING"}


def _sigterm_ingest_when(command: list[str], ready: Callable[[], bool], log: Path) -> float:
    """Start the ingest ``command``, send SIGTERM to its process alone once ``ready()``, and return how long it
    took to exit then. It must have exited, and with an error."""
    with log.open("w+") as output:
        # A session of its own: the signal reaches the ingest's process and nothing else.
        process = subprocess.Popen(
            command, env=_ingest_env(), cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 240
            while not ready():
                assert process.poll() is None and time.monotonic() < deadline, _tail(output)
                time.sleep(0.1)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            stopping_s = time.monotonic() - started
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        assert process.returncode != 0, _tail(output)
    return stopping_s


@pytest.mark.parametrize(("runner", "workers"), [("thread", "1"), ("process", "2")])
def test_ingest_sent_sigterm_stops_within_seconds_and_the_next_run_resumes(runner, workers, tmp_path, http_server):
    """SIGTERM to the ingest's process alone, as ``docker stop``, Kubernetes or ``kill PID`` send it. The
    task runner used to wait for its workers: the thread runner for the whole drain, the process runner
    for the rounds in progress, while a service manager allows seconds before it kills. Now the run
    stops in seconds, records itself failed with the reason, and the next run picks up every article
    left, stored once each."""
    feeds = _many_feeds(http_server, n_feeds=4, per_feed=7)  # 28 URLs (a feed repeats no story)
    feeds_file = quiet_settings(tmp_path, feeds, batch_size=2)
    db = f"sqlite:///{tmp_path / 'stopped.db'}"
    command = ingest_command(feeds_file, db, "--workers", workers, "--task-runner", runner)

    def stored_two() -> bool:
        with contextlib.suppress(Exception):  # the schema may not be there yet
            return counts(db, "SELECT count(*) FROM articles")[0][0] >= 2
        return False

    _sigterm_ingest_when(command, stored_two, tmp_path / "ingest.log")
    [(status, detail)] = counts(db, "SELECT status, detail FROM runs WHERE kind = 'ingest'")
    assert status == "failed" and json.loads(detail)["error"].startswith("TerminationSignal"), detail
    queued = _queued_by_status(db)
    assert sum(queued.values()) == 28 and queued.get("pending", 0) > 0, queued  # stopped, not drained
    if runner == "thread":  # handed back by the drain; a killed worker process's claims wait for the next claim
        assert "fetching" not in queued, queued

    resumed = subprocess.run(command, env=_ingest_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert set(_queued_by_status(db)) <= {"done", "duplicate"}
    rows = counts(db, "SELECT canonical_url, count(*) FROM articles GROUP BY canonical_url")
    assert len(rows) == 28 and all(r[1] == 1 for r in rows)
    assert [tuple(r) for r in counts(db, "SELECT status FROM runs WHERE kind = 'ingest' ORDER BY id")] == [
        ("failed",),
        ("completed",),
    ]


def test_ingest_sent_sigterm_while_polling_stops_at_once_and_hands_its_feeds_back(tmp_path, http_server):
    """SIGTERM while a feed is slow to answer. The run's poll child was waited for until every feed of its
    batch had answered or timed out (a slow feed held a stopped run for the read timeout; a poll of a
    thousand feeds, for the whole poll). It is terminated now, and the feeds whose poll it had not
    recorded are due again at once, rather than when their claim runs out, so the next run polls them."""
    feeds = _many_feeds(http_server, n_feeds=2, per_feed=3)
    http_server.routes["/feed1.xml"].delay_s = 45
    feeds_file = quiet_settings(tmp_path, feeds, read_timeout_s=50, total_timeout_s=60)
    db = f"sqlite:///{tmp_path / 'stopped-poll.db'}"
    command = ingest_command(feeds_file, db)

    def polling_the_slow_feed() -> bool:
        if not http_server.hits("/feed1.xml"):
            return False
        time.sleep(0.5)  # the fast feed's answer is in, and not yet written (a batch writes at its end)
        return True

    stopping_s = _sigterm_ingest_when(command, polling_the_slow_feed, tmp_path / "ingest.log")
    assert stopping_s < 15, stopping_s  # not the slow feed's 45 s
    [(status, detail)] = counts(db, "SELECT status, detail FROM runs WHERE kind = 'ingest'")
    assert status == "failed" and json.loads(detail)["error"].startswith("TerminationSignal"), detail
    engine = make_engine(db)
    with engine.begin() as conn:
        due = feed_state.due_feeds(conn, feeds, datetime.now(UTC), claim=False)
    engine.dispose()
    assert sorted(f.url for f in due) == sorted(feeds)  # both handed back, the answered one too

    http_server.routes["/feed1.xml"].delay_s = 0
    resumed = subprocess.run(command, env=_ingest_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert [len(http_server.hits(f"/feed{f}.xml")) for f in range(2)] == [2, 2]
    rows = counts(db, "SELECT canonical_url, count(*) FROM articles GROUP BY canonical_url")
    assert len(rows) == 6 and all(r[1] == 1 for r in rows)

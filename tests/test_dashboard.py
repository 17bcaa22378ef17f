"""The dashboard in a real headless Chromium (Debian's chromium, driven by Playwright), plus the
read-only guarantee, the token gate and export round trips."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from extractors.pipeline import PageJob, process_pages
from extractors.records import Page
from flows.settings import Settings
from flows.stages import claim_extractor, load_seed_corpus, topic_model
from storage import init_db, make_engine
from storage.articles import save_processed
from storage.runs import RunStats, finish_run, start_run
from tests.fixtures.site import article_html, off_topic_articles

EVIL_TITLE = "<script>window.__pwned = 1</script>Recruiters & <b>bonuses</b>"


def populate(db: str) -> None:
    engine = make_engine(db)
    init_db(engine)
    load_seed_corpus(engine, Settings(db=db))
    arts = off_topic_articles()
    jobs = []
    for i, art in enumerate([replace(arts[0], title=EVIL_TITLE), arts[1]]):
        body = article_html(art, "https://news.example.com").encode()
        jobs.append(
            PageJob(
                Page(
                    url=f"https://news.example.com/a{i}",
                    final_url=f"https://news.example.com/a{i}",
                    status=200,
                    content_type="text/html",
                    body=body,
                    fetched_at=datetime.now(UTC),
                ),
                origin="feed",
                feed_published_at=datetime(2026, 11, 3 + i, tzinfo=UTC),
            )
        )
    processed = process_pages(jobs, topic=topic_model(()), claims=claim_extractor(), relevance_threshold=0.0)
    with engine.begin() as conn:
        for p in processed:
            save_processed(conn, p)
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium; the test set-up installs it when it is missing (CI runs as root)."""
    path = shutil.which("chromium")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            check=True,
            capture_output=True,
            timeout=1200,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        path = shutil.which("chromium")
    assert path, "chromium is required for the dashboard tests (apt-get install chromium)"
    return path


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    import uvicorn

    from flows.dashboard.app import create_app

    db = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'd.db'}"
    populate(db)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(db), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", db
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.browser
def test_dashboard_in_headless_chromium(dashboard, chromium):
    from playwright.sync_api import sync_playwright

    base, _db = dashboard
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                "--no-sandbox",
                "--headless",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: errors.append("dialog: " + d.message))

        page.goto(base + "/")
        assert page.locator("svg[data-chart='claims-over-time'] rect.bar").count() > 0
        assert page.locator("svg[data-chart='claims-over-time'] .seed-mark").count() > 0
        assert page.locator("#claimants .claimant-link").count() > 3
        assert page.locator("#health").count() == 1

        page.goto(base + "/claims")
        all_rows = page.locator("tr.claim-row").count()
        assert all_rows == 50  # first page of a paginated table
        page.fill("#claimant-filter", "Ukraine's National Resistance Center")
        page.click("#apply-filters")
        page.wait_for_load_state()
        filtered = page.locator("tr.claim-row")
        assert 0 < filtered.count() < all_rows
        assert all("Resistance Center" in t for t in filtered.locator("td.claimant").all_inner_texts())

        page.goto(base + "/claims?q=rainfall")
        page.locator("a.article-link").first.click()
        page.wait_for_load_state()
        assert page.locator("mark.claim.focus").count() == 1
        assert "<script>" in page.locator("#article-title").inner_text()  # shown as text, never run
        assert page.evaluate("window.__pwned") is None

        page.goto(base + "/quantities")
        assert page.locator("svg[data-chart='quantities']").count() + page.locator(".empty").count() > 0
        browser.close()
    assert errors == []


def test_dashboard_never_writes_and_needs_a_token_off_loopback(dashboard):
    from starlette.testclient import TestClient

    from flows.dashboard.app import create_app

    _base, db = dashboard
    app = create_app(db, token="s3cret")
    with pytest.raises(OperationalError), app.state.engine.begin() as conn:
        conn.execute(text("DELETE FROM claims"))
    client = TestClient(app)
    assert client.get("/").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    ok = client.get("/?token=s3cret")
    assert ok.status_code == 200 and "claimwire" in ok.text
    assert client.get("/claims").status_code == 200  # the cookie set above
    assert TestClient(app).get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200

    from typer.testing import CliRunner

    from flows.cli import app as cli

    refused = CliRunner().invoke(cli, ["dashboard", "--db", db, "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "token" in refused.output


def test_pages_escape_strangers_text(dashboard):
    import httpx

    base, _ = dashboard
    html = httpx.get(base + "/claims?q=rainfall").text + httpx.get(base + "/").text
    assert "<script>window.__pwned" not in html
    listing = httpx.get(base + "/claims?q=rainfall").text
    article_id = listing.split('href="/articles/')[1].split("?")[0]
    page = httpx.get(f"{base}/articles/{article_id}").text
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_round_trips(db_url, fmt, tmp_path):
    from storage.export import export

    populate(db_url)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        expected = [
            tuple(r)
            for r in conn.execute(text("SELECT claim_id, text, claimant, verification FROM v_claims ORDER BY claim_id"))
        ]
    path = tmp_path / f"claims.{fmt}"
    if fmt == "parquet":
        with path.open("wb") as handle:
            count = export(engine, "claims", fmt, handle)
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pylist()
        got = [(r["claim_id"], r["text"], r["claimant"], r["verification"]) for r in table]
    else:
        with path.open("w", encoding="utf-8", newline="") as handle:
            count = export(engine, "claims", fmt, handle)
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
            got = [(int(r["claim_id"]), r["text"], r["claimant"] or None, r["verification"]) for r in rows]
        else:
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            got = [(r["claim_id"], r["text"], r["claimant"], r["verification"]) for r in rows]
    assert count == len(expected) > 100
    assert got == expected
    since = io.StringIO()
    recent = export(engine, "articles", "jsonl", since, since=datetime(2026, 11, 4, tzinfo=UTC))
    assert recent == 1 and json.loads(since.getvalue())["published_at"].startswith("2026-11-04")
    engine.dispose()


def test_dashboard_pages_on_both_databases(db_url):
    from starlette.testclient import TestClient

    from flows.dashboard.app import create_app

    populate(db_url)
    app = create_app(db_url)
    with TestClient(app) as client:  # as a server runs it: startup, requests, shutdown
        overview = client.get("/")
        assert overview.status_code == 200 and 'data-chart="claims-over-time"' in overview.text
        assert overview.text.count('class="bar"') >= 3  # weekly buckets computed in SQL on this backend
        everything = client.get("/claims")
        narrowed = client.get("/claims", params={"claimant": "Ukraine's National Resistance Center"})
        count = lambda r: int(r.text.split('id="claim-count">')[1].split(" ")[0])  # noqa: E731
        assert 0 < count(narrowed) < count(everything)
        assert client.get("/claims", params={"verification": "hedged", "page": "2"}).status_code == 200
        figures = client.get("/quantities")
        assert figures.status_code == 200 and "<table>" in figures.text
        assert client.get("/articles/1").status_code == 200 and client.get("/articles/999999").status_code == 404
        assert "Pipeline health" in client.get("/health").text
        engine = make_engine(db_url)
        stopped, running = start_run(engine, "backfill"), start_run(engine, "ingest")
        finish_run(engine, stopped, RunStats(extra={"error": "SIGTERM"}), "failed")
        engine.dispose()
        health = client.get("/health").text
        assert f"<td>{running}</td><td>ingest</td>" in health and re.search(r"running \(heard \d+ s ago\)", health)
        assert f"<td>{stopped}</td><td>backfill</td>" in health and "failed: SIGTERM" in health
    assert app.state.engine.pool.checkedin() == 0  # shutdown closed the pooled connections

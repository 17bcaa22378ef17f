"""Throughput benchmark: a realistic local workload through the full ``ingest`` and through the bare
work alone, with per-stage times, Prefect's overhead and peak memory.

    python benchmarks/throughput.py --feeds 20 --items 25            # 500 articles, SQLite and PostgreSQL
    python benchmarks/throughput.py --feeds 40 --items 25 --workers 2 --only sqlite
    python benchmarks/throughput.py --feeds 40 --items 25 --workers 2 --only sqlite --round-articles 250
    python benchmarks/throughput.py --feeds 40 --items 25 --workers 2 --only sqlite --seed 8  # other articles
    python benchmarks/throughput.py --unchanged-feeds 1000 [--poll-per-host 2]  # 1,000 feeds answering 304

Articles are unique news-length texts (600–1,500 words) assembled from the PolNeAR news paragraphs in
../shared/eval (so no two are near-duplicates), wrapped in realistic page HTML and served from
127.0.0.1 with feeds pointing at them. Results are printed as JSON. Each ingest's
processes are sampled for their own peaks (``process_peaks_mib``: the flow's process, the Prefect API
server, and every worker round in the order it started, with the flow process's RSS once a minute; see
benchmarks/process_peaks.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.cli import cli_command, ingest_command  # noqa: E402
from tests.fixtures.site import FixtureArticle, article_html, atom_feed  # noqa: E402
from tests.httpserver import TestServer  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from process_peaks import PeakSampler  # noqa: E402

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from flows.settings import Settings
    from storage.feed_state import FeedState

POLNEAR = ROOT.parent / "shared" / "eval" / "polnear" / "dev" / "text"
# The workload's settings: everything is on 127.0.0.1, so no politeness delay, and every item is taken.
WORKLOAD_SETTINGS = {
    "per_host_delay_s": 0,
    "per_host_concurrency": 32,
    "total_concurrency": 32,
    "max_initial_items": 100000,
    "relevance_threshold": 0.0,
}
PG_ADMIN = os.environ.get("CLAIMWIRE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_articles(count: int, seed: int = 7) -> list[FixtureArticle]:
    if not POLNEAR.exists():
        raise SystemExit(f"benchmark needs the evaluation texts at {POLNEAR}")
    paragraphs = [
        p.strip()
        for f in sorted(POLNEAR.glob("*.txt"))
        for p in f.read_text(encoding="utf-8").split("\n")
        if len(p.split()) >= 25
    ]
    rng = random.Random(seed)
    base = datetime(2026, 10, 1, tzinfo=UTC)
    out = []
    for i in range(count):
        target = rng.randint(600, 1500)
        body, words = [], 0
        while words < target:
            paragraph = rng.choice(paragraphs)
            body.append(paragraph)
            words += len(paragraph.split())
        title = " ".join(body[0].split()[:10]).rstrip(",.;:") + f" ({i})"
        out.append(FixtureArticle(f"news/{i}", title, "\n".join(body), base + timedelta(minutes=i)))
    return out


def serve_workload(server: TestServer, articles: list[FixtureArticle], n_feeds: int) -> list[str]:
    per_feed = -(-len(articles) // n_feeds)
    feeds = []
    for f in range(n_feeds):
        items = []
        for art in articles[f * per_feed : (f + 1) * per_feed]:
            items.append((server.add("/" + art.slug, body=article_html(art, server.base).encode()), art))
        feeds.append(
            server.add(
                f"/feeds/{f}.xml",
                body=atom_feed(f"Feed {f}", server.base, items),
                content_type="application/atom+xml",
                etag=f'"feed-{f}"',
            )
        )
    return feeds


def serve_workload_until_killed(articles: int, n_feeds: int, feed_urls: multiprocessing.Queue) -> None:
    """A process target: serve ``articles`` in ``n_feeds`` feeds, put the feeds' URLs on ``feed_urls`` and
    serve until killed, so that a benchmark measuring its own process does not hold the pages it serves."""
    server = TestServer().start()
    feed_urls.put(serve_workload(server, make_articles(articles), n_feeds))
    while True:
        time.sleep(3600)


def workload_database(db: str, feeds: list[str]) -> tuple[Engine, Settings, list[FeedState]]:
    """For a stage run in this process: a database at the newest schema with ``feeds`` configured, the
    workload's settings, and the feeds as due (engine, settings, due feeds)."""
    from flows.settings import Settings
    from storage import feed_state, init_db, make_engine

    settings = Settings(db=db, allow_private_networks=True, **WORKLOAD_SETTINGS)
    engine = make_engine(db)
    init_db(engine)
    with engine.begin() as conn:
        feed_state.sync_feeds(conn, [feed_state.FeedConfig(url) for url in feeds])
        due = feed_state.due_feeds(conn, feeds, datetime.now(UTC))
    return engine, settings, due


def fresh_db(kind: str, tmp: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}", lambda: None
    from sqlalchemy import create_engine, text

    name = f"claimwire_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


@contextlib.contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """The URL of a new, empty database of ``kind`` (a file in a temporary folder, or a PostgreSQL
    database next to CLAIMWIRE_BENCH_PG), gone when the block ends."""
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = fresh_db(kind, Path(tmp))
        try:
            yield url
        finally:
            drop()


def run_measured(command: list[str], env: dict) -> tuple[float, int, dict]:
    """Run a command in a wrapper that reports its children's peak RSS (KiB), sampling every process it
    starts meanwhile; returns (seconds, KiB, peaks by role: see process_peaks)."""
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)"
    )
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", wrapper, *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    sampler = PeakSampler(process.pid).start()
    _, stderr = process.communicate()
    sampler.stop()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(command)}\n{stderr[-3000:]}")
    return seconds, int(stderr.strip().splitlines()[-1]), sampler.summary()


def run_stats(db: str) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(db)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT articles_new, claims_new, articles_failed, detail, started_at, finished_at "
                "FROM runs WHERE kind = 'ingest' ORDER BY id DESC LIMIT 1"
            )
        ).one()
        articles = conn.execute(text("SELECT count(*) FROM articles WHERE origin = 'feed'")).scalar_one()
    engine.dispose()
    detail = json.loads(row.detail or "{}")
    return {
        "articles_new": row.articles_new,
        "claims_new": row.claims_new,
        "articles_failed": row.articles_failed,
        "articles_stored": articles,
        **{k: detail.get(k) for k in ("poll_s", "fetch_s", "extract_claims_s", "store_s")},
    }


def bare_work(articles: list[FixtureArticle], base_url: str) -> dict:
    """Text extraction plus claim extraction called directly in a loop: no Prefect, no HTTP, no database."""
    from extractors.article import extract_article
    from extractors.claims import ClaimExtractor

    pages = [article_html(a, base_url) for a in articles]
    extractor = ClaimExtractor()
    extractor.extract("Warm-up: the model loads before the clock starts, officials said.")
    start = time.perf_counter()
    texts = [extract_article(p, f"{base_url}/{a.slug}").text for p, a in zip(pages, articles, strict=True)]
    extract_s = time.perf_counter() - start
    claims = 0
    for i in range(0, len(texts), 50):
        claims += sum(len(c) for c in extractor.extract_many(texts[i : i + 50]))
    total = time.perf_counter() - start
    words = sum(len(t.split()) for t in texts)
    return {
        "articles": len(texts),
        "seconds": total,
        "articles_per_s": len(texts) / total,
        "extract_s": extract_s,
        "claims_s": total - extract_s,
        "claims": claims,
        "claim_words_per_s": words / (total - extract_s),
    }


def ingest(
    db: str,
    feeds: list[str],
    tmp: Path,
    workers: int,
    runner: str,
    per_host: int = WORKLOAD_SETTINGS["per_host_concurrency"],
    round_articles: int | None = None,
) -> dict:
    feeds_file = tmp / f"feeds-{uuid.uuid4().hex[:6]}.yaml"
    feeds_file.write_text(
        json.dumps(
            {
                "feeds": [{"url": u} for u in feeds],
                "settings": {
                    **WORKLOAD_SETTINGS,
                    "per_host_concurrency": per_host,
                    **({"round_articles": round_articles} if round_articles is not None else {}),
                },
            }
        )
    )
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"}
    subprocess.run(cli_command("init", "--db", db, "--no-seed"), env=env, cwd=ROOT, check=True, capture_output=True)
    command = ingest_command(feeds_file, db, "--workers", str(workers), "--task-runner", runner)
    seconds, peak_kib, process_peaks = run_measured(command, env)
    stats = run_stats(db)
    # Fetching overlaps extraction (the next batch is prefetched), so it is not counted as a stage here:
    # what remains is process start, Prefect's server and task runs, model loading and any fetch wait.
    stage_sum = sum(stats[k] or 0 for k in ("poll_s", "extract_claims_s", "store_s")) / max(1, workers)
    return {
        "seconds": seconds,
        "peak_rss_mib": peak_kib / 1024,
        "articles_per_s": stats["articles_stored"] / seconds,
        "overhead_s_per_article": max(0.0, seconds - stage_sum) / max(1, stats["articles_stored"]),
        **stats,
        "process_peaks_mib": process_peaks,
    }


def unchanged_poll(n_feeds: int, tmp: Path, per_host: int) -> dict:
    """Poll ``n_feeds`` feeds on 127.0.0.1 twice; the second time each answers 304 to its ETag.

    Every feed here is on one host, so ``per_host`` connections carry the whole poll: 32 is the
    throughput workload's setting, 2 the default, which is what each host's pool holds when a real
    poll spreads over many hosts (the client's CPU per request grows with the connections in a pool)."""
    server = TestServer().start()
    try:
        feeds = [
            server.add(
                f"/u/{i}.xml",
                body=atom_feed(f"U{i}", server.base, []),
                content_type="application/atom+xml",
                etag=f'"u{i}"',
            )
            for i in range(n_feeds)
        ]
        db, drop = fresh_db("sqlite", tmp)
        first = ingest(db, feeds, tmp, 1, "thread", per_host)
        from sqlalchemy import create_engine, text

        engine = create_engine(db)
        with engine.begin() as conn:
            conn.execute(text("UPDATE feeds SET next_poll_at = NULL"))
        engine.dispose()
        second = ingest(db, feeds, tmp, 1, "thread", per_host)
        not_modified = sum(1 for r in server.requests if r.path.startswith("/u/")) - n_feeds
        drop()
        return {
            "feeds": n_feeds,
            "connections_per_host": per_host,
            "first_poll_s": first["poll_s"],
            "unchanged_poll_s": second["poll_s"],
            "unchanged_run_s": second["seconds"],
            "conditional_requests": not_modified,
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--items", type=int, default=25)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--runner", default="process", help="task runner for --workers > 1: process | dask")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    parser.add_argument("--no-bare", action="store_true")
    parser.add_argument("--seed", type=int, default=7, help="the workload's random sample of paragraphs")
    parser.add_argument("--round-articles", type=int, default=None, help="articles per worker process (default 500)")
    parser.add_argument("--unchanged-feeds", type=int, default=0)
    parser.add_argument(
        "--poll-per-host",
        type=int,
        default=WORKLOAD_SETTINGS["per_host_concurrency"],
        help="connections to the one host, --unchanged-feeds",
    )
    args = parser.parse_args()
    results: dict = {"machine": f"{os.cpu_count()} cores, {os.uname().machine}", "date": datetime.now(UTC).isoformat()}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if args.unchanged_feeds:
            results["unchanged"] = unchanged_poll(args.unchanged_feeds, tmp, args.poll_per_host)
            print(json.dumps(results, indent=1))
            return
        articles = make_articles(args.feeds * args.items, seed=args.seed)
        server = TestServer().start()
        try:
            feeds = serve_workload(server, articles, args.feeds)
            if not args.no_bare:
                results["bare"] = bare_work(articles[: min(len(articles), 300)], server.base)
            for kind in [args.only] if args.only else ["sqlite", "postgresql"]:
                db, drop = fresh_db(kind, tmp)
                runner = "thread" if args.workers == 1 else args.runner
                results[kind] = ingest(db, feeds, tmp, args.workers, runner, round_articles=args.round_articles)
                drop()
                server.requests.clear()
        finally:
            server.stop()
    if "bare" in results:
        for kind in ("sqlite", "postgresql"):
            if kind in results:
                results[kind]["ratio_to_bare"] = results[kind]["articles_per_s"] / results["bare"]["articles_per_s"]
    results["articles"] = len(articles)
    results["workers"] = args.workers
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()

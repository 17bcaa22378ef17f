"""How long a worker's claim of its next batch takes as the queue grows.

    python benchmarks/queue_claims.py --pending 100000                     # a fresh SQLite file
    python benchmarks/queue_claims.py --pending 100000 --database postgresql  # a fresh PostgreSQL database

Enqueues ``--pending`` URLs, then claims ``--limit`` of them ``--claims`` times, marking each claimed URL
done and keeping PostgreSQL's statistics as a worker would; prints the median claim time over all but
the first (cold) claim. The PostgreSQL database is created next to ``CLAIMWIRE_BENCH_PG`` (as
``throughput.py`` does) and dropped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from throughput import scratch_database  # noqa: E402

from storage import init_db, make_engine, queue  # noqa: E402

ENQUEUE_CHUNK = 5000


def measure(db_url: str, pending: int, limit: int, claims: int) -> dict:
    engine = make_engine(db_url)
    init_db(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for start in range(0, pending, ENQUEUE_CHUNK):
            entries = [
                queue.QueueEntry(f"http://127.0.0.1/news/{i}", f"127.0.0.1/news/{i}", "feed")
                for i in range(start, min(pending, start + ENQUEUE_CHUNK))
            ]
            queue.enqueue(conn, entries, now)
    with engine.begin() as conn:
        queue.refresh_statistics(conn, added=pending)  # as a poll or a backfill does after enqueuing
    times_ms = []
    for _ in range(claims):
        with engine.begin() as conn:
            queue.refresh_statistics(conn)  # as the drain does before each claim (untimed)
        with engine.begin() as conn:
            started = time.perf_counter()
            work = queue.claim_batch(conn, limit=limit, now=now)
            times_ms.append((time.perf_counter() - started) * 1000)
            for item in work:
                queue.mark_done(conn, item.id, now, None)
    engine.dispose()
    warm = times_ms[1:] or times_ms
    return {"pending": pending, "limit": limit, "median_ms": statistics.median(warm), "claims_ms": times_ms}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=10000)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--claims", type=int, default=11)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with scratch_database(args.database) as db_url:
        result = measure(db_url, args.pending, args.limit, args.claims)
    print(json.dumps(result | {"database": args.database}))


if __name__ == "__main__":
    main()

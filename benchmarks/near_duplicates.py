"""How long the near-duplicate lookup of one new article takes as the corpus grows.

    python benchmarks/near_duplicates.py --articles 1000000                          # a fresh SQLite file
    python benchmarks/near_duplicates.py --articles 1000000 --database postgresql   # a fresh PostgreSQL database

Stores ``--articles`` articles with random simhashes (the simhashes of real news texts are as evenly
spread: see benchmarks/RESULTS.md), keyed in the simhash index as ``save_processed`` keys them, then
looks up ``--lookups`` new random simhashes with ``find_duplicate``, as every stored article does, and
near copies of stored ones, which must be found. Prints the median lookup time and the index rows read
per lookup. The PostgreSQL database is created next to ``CLAIMWIRE_BENCH_PG`` and dropped.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from throughput import scratch_database  # noqa: E402

from storage import init_db, make_engine  # noqa: E402
from storage.articles import find_duplicate, near_duplicate_candidates, simhash_index_rows  # noqa: E402
from storage.models import ArticleRow, SimhashBand  # noqa: E402

CHUNK = 10_000


def random_simhash(rng: random.Random) -> int:
    return rng.getrandbits(64) - (1 << 63)


def fill(engine, articles: int, rng: random.Random) -> list[int]:
    """Store ``articles`` bare article rows and their index rows; returns their simhashes."""
    created = datetime.now(UTC)
    simhashes = [random_simhash(rng) for _ in range(articles)]
    for start in range(0, articles, CHUNK):
        ids = range(start + 1, min(articles, start + CHUNK) + 1)
        with engine.begin() as conn:
            conn.execute(
                ArticleRow.__table__.insert(),
                [
                    {
                        "id": i,
                        "url": f"https://news.example/{i}",
                        "canonical_url": f"https://news.example/{i}",
                        "origin": "feed",
                        "text": "",
                        "content_hash": f"{i:064x}",
                        "simhash": simhashes[i - 1],
                        "word_count": 0,
                        "created_at": created,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                SimhashBand.__table__.insert(), [row for i in ids for row in simhash_index_rows(i, simhashes[i - 1])]
            )
    return simhashes


def measure(db_url: str, articles: int, lookups: int, seed: int) -> dict:
    rng = random.Random(seed)
    engine = make_engine(db_url)
    init_db(engine)
    started = time.perf_counter()
    stored = fill(engine, articles, rng)
    fill_s = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE articles")
            conn.exec_driver_sql("ANALYZE article_simhash_bands")
    times_ms, rows_read, false_hits = [], [], 0
    with engine.connect() as conn:
        for _ in range(lookups + 1):
            signature = random_simhash(rng)
            t0 = time.perf_counter()
            found = find_duplicate(conn, "no such content", signature)
            times_ms.append((time.perf_counter() - t0) * 1000)
            false_hits += found is not None
            rows_read.append(len(near_duplicate_candidates(conn, signature)))
        # Copies of stored articles, 1-6 bits off anywhere, must be found: the lookup is exact, not likely.
        missed = 0
        for _ in range(50):
            original = rng.randrange(articles)
            copy = stored[original] ^ sum(1 << bit for bit in rng.sample(range(63), rng.randint(1, 6)))
            missed += find_duplicate(conn, "no such content", copy) != original + 1
    engine.dispose()
    warm = times_ms[1:]
    return {
        "articles": articles,
        "fill_s": round(fill_s, 1),
        "lookup_median_ms": round(statistics.median(warm), 3),
        "lookup_p95_ms": round(sorted(warm)[int(0.95 * len(warm))], 3),
        "index_rows_read_mean": round(statistics.mean(rows_read), 1),
        "index_rows_per_article": len(simhash_index_rows(1, 0)),
        "unrelated_judged_near": false_hits,
        "near_copies_missed": missed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with scratch_database(args.database) as db_url:
        result = measure(db_url, args.articles, args.lookups, args.seed)
    print(json.dumps(result | {"database": args.database}))


if __name__ == "__main__":
    main()

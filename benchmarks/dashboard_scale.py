"""Dashboard page times with a large database: N synthetic claims (default 100,000) over 5,000
articles in a fresh SQLite file (or --db URL), then each page fetched a few times.

    python benchmarks/dashboard_scale.py [--claims 100000] [--db URL]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from storage import init_db, make_engine  # noqa: E402
from storage.models import ArticleRow, ClaimRow, QuantityRow  # noqa: E402

CLAIMANTS = [f"Official {i}" for i in range(400)] + [None] * 100
COUNTED = ["soldiers", "recruits", "rubles", "volunteers", "prisoners", "deserters"]


def populate(db: str, n_claims: int, n_articles: int = 5000) -> None:
    engine = make_engine(db)
    init_db(engine)
    rng = random.Random(3)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(ArticleRow),
            [
                {
                    "id": i + 1,
                    "url": f"https://n.example/{i}",
                    "canonical_url": f"https://n.example/{i}",
                    "origin": "feed",
                    "outlet": f"Outlet {i % 40}",
                    "title": f"Story {i}",
                    "text": "x " * 800,
                    "content_hash": f"{i:064x}",
                    "published_at": base + timedelta(hours=i * 2),
                    "word_count": 800,
                    "claims_version": "bench",
                    "created_at": base,
                }
                for i in range(n_articles)
            ],
        )
        claims, quantities = [], []
        for c in range(n_claims):
            claims.append(
                {
                    "id": c + 1,
                    "article_id": c % n_articles + 1,
                    "extractor_version": "bench",
                    "start_char": (c // n_articles) * 40,
                    "end_char": (c // n_articles) * 40 + 30,
                    "text": f"Claim number {c} about recruitment",
                    "claimant": rng.choice(CLAIMANTS),
                    "cue": "said",
                    "verification": rng.choice(["asserted", "hedged", "unverified", "denied"]),
                    "entities": "[]",
                }
            )
            if c % 3 == 0:
                quantities.append(
                    {
                        "claim_id": c + 1,
                        "ordinal": 0,
                        "value": rng.randint(10, 200000),
                        "unit": None,
                        "counted": rng.choice(COUNTED),
                        "text": "n",
                    }
                )
            if len(claims) >= 20000:
                conn.execute(insert(ClaimRow), claims)
                conn.execute(insert(QuantityRow), quantities)
                claims, quantities = [], []
        if claims:
            conn.execute(insert(ClaimRow), claims)
            conn.execute(insert(QuantityRow), quantities)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    from starlette.testclient import TestClient

    from flows.dashboard.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{Path(tmp) / 'scale.db'}"
        start = time.perf_counter()
        populate(db, args.claims)
        load_s = time.perf_counter() - start
        client = TestClient(create_app(db))
        pages = [
            "/",
            "/?period=day",
            "/claims",
            "/claims?page=1000",
            "/claims?claimant=Official%207",
            "/claims?q=number%2012345",
            "/claims?verification=denied&outlet=Outlet%203",
            "/quantities",
            "/quantities?counted=rubles",
            "/articles/42",
            "/health",
        ]
        timings = {}
        for page in pages:
            best = None
            for _ in range(3):
                t = time.perf_counter()
                response = client.get(page)
                elapsed = time.perf_counter() - t
                assert response.status_code == 200, (page, response.status_code)
                best = elapsed if best is None else min(best, elapsed)
            timings[page] = round(best * 1000, 1)
    print(json.dumps({"claims": args.claims, "populate_s": round(load_s, 1), "page_ms_best_of_3": timings}, indent=1))


if __name__ == "__main__":
    main()

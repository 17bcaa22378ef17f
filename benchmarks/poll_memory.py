"""What one batch of feed polls holds in memory, with feeds that carry every article's full text.

    python benchmarks/poll_memory.py --feeds 200 --items 20

Serves ``--feeds`` RSS feeds on 127.0.0.1, each of ``--items`` items with the whole article in
``content:encoded`` (as WordPress and many newsrooms publish them: ~150 KB a feed here), and polls one
batch of them (``feed_batch_size``, 200) in this process with ``flows.poll.poll_feeds``, as an ingest
run's poll process does.
Prints the batch's peak resident memory over the process's size before it (VmHWM after resetting it),
after a warm-up poll of one feed has loaded every module, and what the process still holds after it
(resident size once collected and trimmed, over the size before). Linux only.
"""

from __future__ import annotations

import argparse
import gc
import html
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from process_peaks import status_mib  # noqa: E402
from throughput import make_articles, workload_database  # noqa: E402

from tests.httpserver import TestServer  # noqa: E402


def full_text_feed(title: str, base: str, articles, prefix: str) -> bytes:
    items = []
    for j, article in enumerate(articles):
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in article.body.split("\n"))
        items.append(
            f"<item><title>{html.escape(article.title)}</title><link>{base}/{prefix}/{j}</link>"
            f"<guid>{prefix}-{j}</guid><pubDate>Mon, 02 Nov 2026 12:00:00 GMT</pubDate>"
            f"<description>{html.escape(article.body[:300])}</description>"
            f"<content:encoded>{html.escape(paragraphs)}</content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{title}</title><link>{base}</link><description>News</description>"
        f"{''.join(items)}</channel></rss>"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=20)
    args = parser.parse_args()

    from flows.allocator import limit_malloc_arenas, release_free_memory
    from flows.poll import poll_feeds

    limit_malloc_arenas()  # as the CLI does
    articles = make_articles(args.items * 4)
    server = TestServer().start()
    try:
        feeds, feed_bytes = [], 0
        for f in range(args.feeds + 1):  # one more for the warm-up
            chosen = [articles[(f + j) % len(articles)] for j in range(args.items)]
            body = full_text_feed(f"Feed {f}", server.base, chosen, f"f{f}")
            feed_bytes += len(body)
            feeds.append(server.add(f"/feeds/{f}.xml", body=body, content_type="application/rss+xml"))
        with tempfile.TemporaryDirectory() as tmp:
            engine, settings, due = workload_database(f"sqlite:///{tmp}/poll-memory.db", feeds)
            poll_feeds(engine, settings, due[:1])
            release_free_memory()
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from the current RSS
            before = status_mib()["VmRSS"]
            started = time.perf_counter()
            stats = poll_feeds(engine, settings, due[1 : 1 + settings.feed_batch_size])
            seconds = time.perf_counter() - started
            peak = status_mib()["VmHWM"]
            gc.collect()
            release_free_memory()
            left = status_mib()["VmRSS"]
            engine.dispose()
    finally:
        server.stop()
    polled = min(args.feeds, settings.feed_batch_size)
    print(
        json.dumps(
            {
                "feeds_polled": stats.feeds_polled,
                "items_enqueued": stats.extra.get("items_new"),
                "feed_kib_mean": round(feed_bytes / (args.feeds + 1) / 1024, 1),
                "batch_feed_mib": round(feed_bytes / (args.feeds + 1) * polled / 2**20, 1),
                "seconds": round(seconds, 2),
                "peak_over_start_mib": round(peak - before, 1),
                "left_after_mib": round(left - before, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

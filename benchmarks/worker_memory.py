"""Where a worker's memory goes, batch by batch: one worker drains the throughput workload in this
process (no Prefect), and after each batch's heap trim the layers are read apart.

    python benchmarks/worker_memory.py --articles 1000 --feeds 40
    MALLOC_ARENA_MAX=8 python benchmarks/worker_memory.py ...     # glibc's default arena count, to compare

Per batch: the trimmed RSS, the batch's peak (VmHWM, reset after every article), glibc's live and free
heap bytes (mallinfo2, all arenas), pymalloc's arenas and the bytes in its blocks. A peak that climbs
with the batches while Python's objects stay put is the allocator's, not a leak: that is how the
drift the one-arena setting fixed was found (see flows/allocator.py). Linux with glibc only.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from process_peaks import status_mib  # noqa: E402


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from the current RSS


def _pymalloc() -> dict[str, float]:
    """Python's small-object allocator, from sys._debugmallocstats (written to the C-level stderr)."""
    with tempfile.TemporaryFile("w+") as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read()

    def number(label: str) -> int:
        return int(re.search(re.escape(label) + r"\s*=\s*([\d,]+)", text).group(1).replace(",", ""))

    return {
        "pymalloc_arenas": number("# arenas allocated current"),
        "pymalloc_mib": number("# bytes in allocated blocks") / 2**20,
    }


def _layers() -> dict[str, float]:
    from flows.allocator import _glibc

    libc = _glibc()
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {"malloc_live_mib": info.uordblks / 2**20, "malloc_free_mib": info.fordblks / 2**20, **_pymalloc()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--feeds", type=int, default=40)
    args = parser.parse_args()

    from throughput import serve_workload_until_killed

    urls: multiprocessing.Queue = multiprocessing.Queue()
    served = (args.articles, args.feeds, urls)
    server = multiprocessing.Process(target=serve_workload_until_killed, args=served, daemon=True)
    server.start()  # its own process, so the pages it serves are not in the worker's memory
    feeds = urls.get()

    from throughput import workload_database

    from flows import stages
    from flows.allocator import limit_malloc_arenas
    from flows.poll import poll_feeds

    limit_malloc_arenas()  # as the CLI does; an explicit MALLOC_ARENA_MAX wins
    with tempfile.TemporaryDirectory() as tmp:
        engine, settings, due = workload_database(f"sqlite:///{tmp}/worker-memory.db", feeds)
        poll_feeds(engine, settings, due)  # here, unlike an ingest run (flows/poll_process.py): as measured so far

        batches: list[dict] = []
        batch_peak = [0.0]
        store, release = stages._store_one, stages.release_free_memory

        def store_and_measure(*store_args) -> None:
            batch_peak[0] = max(batch_peak[0], status_mib()["VmHWM"])
            _reset_peak()
            store(*store_args)

        def release_and_measure() -> bool:
            released = release()
            row = {"batch": len(batches), "peak_mib": batch_peak[0], "trimmed_mib": status_mib()["VmRSS"]}
            batches.append(row | _layers())
            batch_peak[0] = 0.0
            return released

        stages._store_one, stages.release_free_memory = store_and_measure, release_and_measure
        started = time.perf_counter()
        done = stages.drain(engine, settings, origins=["feed"])
        seconds = time.perf_counter() - started
        engine.dispose()
    server.kill()

    settled = batches[2:] or batches  # the first batches load the model's lazy parts and the caches
    summary = {
        "articles": done.articles_new,
        "seconds": seconds,
        "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
        "peak_mib": max(b["peak_mib"] for b in batches),
        **{f"{key}_change_after_batch_2": settled[-1][key] - settled[0][key] for key in settled[0] if key != "batch"},
    }
    print(json.dumps({"batches": batches, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()

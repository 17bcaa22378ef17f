"""The flow's own process over many rounds: its resident size after every hand-over between rounds.

    python benchmarks/flow_memory.py --runner dask --articles 300 --round 10

Serves ``--articles`` benchmark articles from another process, then runs ``claimwire ingest`` in this
one with two workers and rounds of ``--round`` articles (batches of 5), so a short run has many rounds.
After each round is handed over (``flows.ingest.fresh_worker_after``) it prints this process's RSS.
With ``--runner dask`` this process holds Dask's scheduler, the nannies and the client besides the
flow; a line that rises round after round is memory that a long backfill keeps. ``--trace`` also
prints tracemalloc's largest differences between the fourth hand-over and the one after round
articles/round − 2, about the last (slow).
Linux only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runner", default="dask", help="process | dask")
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--round", type=int, default=10, help="articles per round")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.articles <= 2 * args.round:  # the two first rounds would drain it all: nothing to hand over
        parser.error(f"--articles must exceed two rounds ({2 * args.round}) for a round to be handed over")

    from process_peaks import status_mib
    from throughput import WORKLOAD_SETTINGS, serve_workload_until_killed

    urls: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve_workload_until_killed, args=(args.articles, 10, urls), daemon=True)
    server.start()  # its own process, so the pages it serves are not in this one's memory
    feeds = urls.get()

    from tests.fixtures.cli import cli_command

    tmp = Path(tempfile.mkdtemp())
    db = f"sqlite:///{tmp}/flow-memory.db"
    feeds_file = tmp / "feeds.yaml"
    settings = {**WORKLOAD_SETTINGS, "batch_size": 5, "round_articles": args.round}
    feeds_file.write_text(json.dumps({"feeds": [{"url": u} for u in feeds], "settings": settings}))
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    subprocess.run(cli_command("init", "--db", db, "--no-seed"), check=True, capture_output=True, cwd=ROOT)

    import flows.ingest as ingest
    from flows.cli import app

    if args.trace:
        tracemalloc.start(12)
    hand_over, readings, snapshots = ingest.fresh_worker_after, [], []

    def measured_hand_over(finished):
        slot = hand_over(finished)
        readings.append(round(status_mib()["VmRSS"], 2))
        if args.trace and len(readings) in (4, args.articles // args.round - 2):
            snapshots.append(tracemalloc.take_snapshot())  # two only: each holds every live block
        return slot

    ingest.fresh_worker_after = measured_hand_over
    command = ["ingest", "--feeds", str(feeds_file), "--db", db, "--allow-private-networks"]
    app([*command, "--workers", "2", "--task-runner", args.runner], standalone_mode=False)
    server.kill()
    per_round = (readings[-1] - readings[0]) / max(1, len(readings) - 1)
    # Written to the file descriptor: the flow's log_prints would take print() over.
    result = {"rss_after_each_round_mib": readings, "mib_per_round": round(per_round, 3)}
    os.write(1, (json.dumps(result) + "\n").encode())
    if len(snapshots) == 2:
        own = [tracemalloc.Filter(False, tracemalloc.__file__)]
        diff = snapshots[1].filter_traces(own).compare_to(snapshots[0].filter_traces(own), "traceback")
        for stat in diff[:10]:
            lines = "\n".join(stat.traceback.format()[-8:])
            os.write(1, f"{stat.size_diff / 1024:+.1f} KiB in {stat.count_diff:+d} blocks\n{lines}\n".encode())


if __name__ == "__main__":
    main()

"""The benchmark's per-process peak sampler, on a real process tree."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from process_peaks import PeakSampler  # noqa: E402

# A command that starts two spawned workers one after the other, as a task runner does: the first
# touches 96 MiB and holds it a moment, the second only starts and waits, as the pool's spare does.
COMMAND = textwrap.dedent(
    """
    import multiprocessing, time

    def round_of_work():
        held = bytearray(96 * 1024 * 1024)
        for i in range(0, len(held), 4096):
            held[i] = 1
        time.sleep(0.6)

    def spare():
        time.sleep(0.6)

    if __name__ == "__main__":
        spawn = multiprocessing.get_context("spawn")
        for target in (round_of_work, spare):
            worker = spawn.Process(target=target)
            worker.start()
            worker.join()
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sampler_keeps_each_process_peak_by_role_in_start_order(tmp_path):
    script = tmp_path / "command.py"
    script.write_text(COMMAND)
    wrapper = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    root = subprocess.Popen([sys.executable, "-c", wrapper, sys.executable, str(script)])
    sampler = PeakSampler(root.pid, interval_s=0.05).start()
    assert root.wait(timeout=60) == 0
    sampler.stop()

    summary = sampler.summary()
    assert summary["flow"] < 64  # the command itself, which only starts the workers
    assert len(summary["worker_rounds"]) == 1
    assert summary["worker_rounds"][0] >= 96  # the high-water mark, though the bytes were freed before exit
    assert len(summary["spare_workers"]) == 1 and summary["spare_workers"][0] < 48
    assert summary["worker_highest"] == summary["worker_rounds"][0]
    # The flow's process: what its highest RSS was made of, and a timeline that starts at its first sample.
    assert 0 < summary["flow_parts_at_highest_rss"]["RssAnon"] <= summary["flow_parts_at_highest_rss"]["VmRSS"] < 64
    assert summary["flow_timeline"][0]["s"] < 5 and summary["flow_timeline"][0]["VmRSS"] > 0

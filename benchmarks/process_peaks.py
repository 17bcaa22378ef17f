"""Peak memory of every process a benchmarked command starts, by role, sampled from ``/proc``.

``RUSAGE_CHILDREN`` gives one number, the largest process's peak. Whether memory stays flat as a
backfill grows needs more than that: each worker round runs in a process of its own, so a run of
10,000 articles draws the highest of 20 round peaks where a run of 1,000 draws the highest of 2, and
process-to-process spread alone (half a MiB or so: thread timing, address-space layout) makes the
larger run's maximum higher even when no round grows. This sampler keeps every process's peak
(``VmHWM``, a high-water mark, so a sample misses at most what a process gains in its last interval)
in the order the processes started, so a trend across rounds can be told apart from spread. Linux only.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

_SIZE = re.compile(r"^(\w+):\s+(\d+) kB$", re.MULTILINE)
_PARTS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")
SPARE_FRACTION = 0.6
TIMELINE_EVERY_S = 60.0


def status_mib(pid: int | str = "self") -> dict[str, float]:
    """Every size in a process's /proc status (VmRSS, VmHWM, RssAnon, ...), in MiB. Linux only."""
    return {key: int(kib) / 1024 for key, kib in _SIZE.findall(Path(f"/proc/{pid}/status").read_text())}


def _rounded(sizes: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 1) for key, value in sizes.items()}


@dataclass
class ProcessPeak:
    pid: int
    role: str  # 'flow' | 'api' | 'worker' | 'other'
    started_s: float  # when first seen, from the start of sampling
    peak_mib: float = 0.0
    # RSS and its kinds (RssAnon, RssFile, RssShmem) at the sample that read the highest RSS: what a peak is made of
    parts_at_highest: dict[str, float] = field(default_factory=dict)
    # (seconds since sampling began, RSS and its kinds) about once a minute: where a long-lived process's
    # peak was reached, and whether what grew was its own memory (RssAnon) or pages of mapped files (RssFile)
    timeline: list[dict[str, float]] = field(default_factory=list)


def role_of(cmdline: list[str], is_command: bool) -> str:
    """What a process of an ingest is, from its command line."""
    line = " ".join(cmdline)
    if is_command:
        return "flow"
    if "prefect" in line and "server" in line:  # flows.prefect_server, Prefect's own uvicorn, `prefect server start`
        return "api"
    if "resource_tracker" in line:
        return "other"
    if "multiprocessing" in line:  # spawned task-runner workers: process runner rounds, Dask workers
        return "worker"
    return "other"


@dataclass
class PeakSampler:
    """Samples the descendants of ``root_pid`` every ``interval_s`` seconds in a thread of its own."""

    root_pid: int
    interval_s: float = 0.5
    processes: dict[int, ProcessPeak] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = field(default_factory=time.perf_counter)

    def start(self) -> PeakSampler:
        self._thread = threading.Thread(target=self._run, name="peak-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        try:
            root = psutil.Process(self.root_pid)
            children = root.children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            known = self.processes.get(child.pid)
            try:
                if known is None:
                    is_command = child.ppid() == self.root_pid
                    known = ProcessPeak(child.pid, role_of(child.cmdline(), is_command), time.perf_counter() - self._t0)
                    self.processes[child.pid] = known
                sizes = status_mib(child.pid)
            except (psutil.Error, OSError):
                continue  # it ended between the listing and the read: its last sample stands
            known.peak_mib = max(known.peak_mib, sizes.get("VmHWM", 0.0))
            parts = {k: sizes[k] for k in _PARTS if k in sizes}
            if sizes.get("VmRSS", 0.0) > known.parts_at_highest.get("VmRSS", 0.0):
                known.parts_at_highest = parts
            now = time.perf_counter() - self._t0
            if not known.timeline or now - known.timeline[-1]["s"] >= TIMELINE_EVERY_S:
                known.timeline.append({"s": round(now), "VmHWM": sizes.get("VmHWM", 0.0), **parts})

    def summary(self) -> dict:
        """Peaks by role; workers in the order they started, with the means of the first and second half
        of them (a trend shows there, spread does not)."""
        by_role: dict[str, list[ProcessPeak]] = {}
        for process in sorted(self.processes.values(), key=lambda p: p.started_s):
            if process.peak_mib:
                by_role.setdefault(process.role, []).append(process)
        out: dict = {role: round(max(p.peak_mib for p in ps), 1) for role, ps in by_role.items() if role != "worker"}
        for process in by_role.get("flow", [])[:1]:
            # On the thread runner the flow's process is the worker too, for the whole run.
            out["flow_parts_at_highest_rss"] = _rounded(process.parts_at_highest)
            out["flow_timeline"] = [_rounded(point) for point in process.timeline]
        worker_processes = by_role.get("worker", [])
        # The process runner's pool replaces each worker that finished its round at once, so the last
        # replacements start, import and wait for a round that never comes: set them apart by size
        # (they never load the model, a third of a round's peak), or they would pass for small rounds.
        spare_below = SPARE_FRACTION * max((p.peak_mib for p in worker_processes), default=0.0)
        rounds = [p for p in worker_processes if p.peak_mib >= spare_below]
        spares = [round(p.peak_mib, 1) for p in worker_processes if p.peak_mib < spare_below]
        if spares:
            out["spare_workers"] = spares
        workers = [round(p.peak_mib, 1) for p in rounds]
        if workers:
            half = len(workers) // 2
            out["worker_rounds"] = workers
            out["worker_rounds_parts_at_highest_rss"] = [_rounded(p.parts_at_highest) for p in rounds]
            out["worker_highest"] = max(workers)
            out["worker_mean"] = round(statistics.fmean(workers), 2)
            if len(workers) > 1:
                out["worker_sd"] = round(statistics.stdev(workers), 2)
            if half:
                out["worker_first_half_mean"] = round(statistics.fmean(workers[:half]), 2)
                out["worker_second_half_mean"] = round(statistics.fmean(workers[half:]), 2)
        return out

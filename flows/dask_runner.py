"""The local Dask cluster of ``task_runner: dask``: no statistical profiler, a fresh worker every round.

Two things made a Dask worker's memory grow with the backfill where a process-runner worker's does not
(benchmarks/RESULTS.md, "Dask workers"):

- **The profiler.** Every Dask worker samples the stack of each running task 100 times a second and
  keeps what it saw: a call tree per task and one per second, for up to 1,000 seconds
  (``distributed.admin.low-level-log-length``). A claimwire worker runs one task for a whole round of
  articles, deep in spaCy, lxml and trafilatura, so those trees grew all round: in the 1,000-article
  benchmark each Dask worker went from 265 to 321.6 MiB, ~0.11 MiB per article. With the profiler off
  they peak at 260.3 MiB, as process-runner workers do, and run a little faster (the sampling takes
  the GIL). The profiler feeds Dask's dashboard, which claimwire's local cluster does not serve.
- **Long-lived workers.** With the profiler off, a Dask worker that drained round after round still
  crept, 260.7 → 265.5 MiB over the ten rounds it ran of a 10,000-article backfill, as process-runner
  workers did before each round got a fresh process (``flows/process_runner.py``). So the worker that
  finished a round is restarted by its nanny before the drain submits the next round.

A restart must never hit a round in flight. Left to itself Dask may put a new round on any idle
worker, including one whose finished round is about to be recycled (it happened: the round was killed,
run again, and the run's counts lost the first attempt). So every worker carries a resource of its own,
a *slot*, and every round asks for a free slot: it runs on that worker only, a restarted one included
(its nanny starts it with the same slot), and the worker restarted after a round is the one whose slot
that round held. A slot goes back to the free list only once its worker is back.

Workers of a cluster of your own (``dask_address``) read their own configuration and may serve other
clients, so nothing is done to them: start them with ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``
(README, "Scaling out").
"""

from __future__ import annotations

from collections import deque
from typing import Any

import dask
from distributed import LocalCluster, SpecCluster
from distributed.deploy.cluster import Cluster
from prefect.futures import PrefectFuture
from prefect.logging import get_logger
from prefect_dask import DaskTaskRunner

WORKER_PROFILER = "distributed.worker.profile.enabled"
logger = get_logger("claimwire.dask")


def slot_resource(worker_name: Any) -> str:
    """The Dask resource only worker ``worker_name`` has, one unit of it: a task that asks for it runs
    there and nowhere else, on whichever process the worker's nanny is running at the time."""
    return f"claimwire-slot-{worker_name}"


class _OneSlotPerWorker(SpecCluster):
    """Gives each worker of the spec its own slot resource (``slot_resource``). Sits between
    ``LocalCluster`` and ``SpecCluster`` so that LocalCluster's own worker spec is kept whole."""

    def __init__(self, *args: Any, workers: dict[Any, dict] | None = None, **kwargs: Any) -> None:
        workers = {
            name: {**spec, "options": {**spec["options"], "resources": {slot_resource(name): 1}}}
            for name, spec in (workers or {}).items()
        }
        self.slots = {slot_resource(name): name for name in workers}  # slot -> the worker holding it
        super().__init__(*args, workers=workers, **kwargs)

    def _update_worker_status(self, op: str, msg: Any) -> None:
        """A worker that leaves the scheduler keeps its nanny.

        SpecCluster closes a worker's nanny for good when no worker of that name is connected
        ``distributed.deploy.lost-worker-timeout`` (15 s) after one left, a clean-up meant for workers
        whose machine is gone. Here every nanny lives in this process and starts its worker again
        whatever ended it, and claimwire restarts workers on purpose: a restart that happened to be under
        way at that moment (a worker whose rounds take about 15 s, as with small rounds or claims off)
        closed the nanny, so the restart timed out after two minutes, the slot was retired and the run
        went on a worker short. Only the cluster's record of the worker is updated."""
        if op == "remove":
            Cluster._update_worker_status(self, op, msg)
            return
        super()._update_worker_status(op, msg)


class SlottedLocalCluster(LocalCluster, _OneSlotPerWorker):
    """A ``LocalCluster`` whose workers each carry a slot resource of their own."""


# What Dask keeps for its dashboard, which claimwire's local cluster does not serve: the scheduler's
# record of past graph submissions (one per round, ~24 KiB each, 100 kept) and every server's system
# monitor (cpu, memory, network and disk, twice a second, an hour kept). Both sit in the flow's own
# process, which holds the scheduler and the nannies; unbounded here they would hold a few MiB more after
# an hour or a hundred rounds. Worker processes get the same through their nannies.
DASHBOARD_HISTORY = {
    "distributed.diagnostics.computations.max-history": 1,
    "distributed.admin.system-monitor.log-length": 60,
}
# Dask also keeps its last 1,000 low-level messages and transitions per stream, scheduler and client, for
# debugging. The client's stream kept every round's serialized graph (~15 KiB) and the scheduler the
# graphs it unpickled, so the flow's process grew with each round of a backfill (tracemalloc, benchmarks/
# flow_memory.py --trace). A run keeps the last few.
LOW_LEVEL_LOG = "distributed.admin.low-level-log-length"
LOW_LEVEL_LOG_LENGTH = 20
# The scheduler's and each nanny's log records (10,000 each by default) are kept for Client.get_*_logs,
# which nothing here reads: ~6 records a round that a long backfill would have kept up to ~10 MiB of.
# They still reach Python's logging as they happen.
SERVER_LOG = "distributed.admin.log-length"
SERVER_LOG_LENGTH = 100
# Work stealing moves queued tasks from busy workers to idle ones. Here it has nothing to move (every
# round is pinned to its worker's slot, and a worker runs one round at a time), and its balancing kept
# every worker it ever weighed: it records each one's in-flight occupancy in a dict that the worker's
# removal does not clean. A restarted worker's record held its last round, and so the round's unpickled
# task (Prefect's Task, its Flow, their closures): ~40 KiB a round in the flow's process (found by
# following gc referrers from the TaskStates that outlived their rounds).
WORK_STEALING = "distributed.scheduler.work-stealing"
# Read by the cluster, the client and each restarted worker's stream when they are made, as the run goes.
RUN_CONFIG = {
    **DASHBOARD_HISTORY,
    LOW_LEVEL_LOG: LOW_LEVEL_LOG_LENGTH,
    SERVER_LOG: SERVER_LOG_LENGTH,
    WORK_STEALING: False,
}


def local_cluster(**cluster_kwargs: Any) -> SlottedLocalCluster:
    """A local cluster whose workers run without the statistical profiler, one slot each.

    The profiler setting goes to each worker's nanny, which applies it in every worker process it
    starts, restarts included. Setting it only while the cluster is built is not enough: a nanny keeps a
    shallow copy of the configuration, whose nested values follow the global one back to the default,
    so the workers that replaced the first ones profiled again (measured: 260 → 313 MiB in a round)."""
    return SlottedLocalCluster(**cluster_kwargs, config={WORKER_PROFILER: False, **DASHBOARD_HISTORY})


class LocalDaskTaskRunner(DaskTaskRunner):
    """Prefect's ``DaskTaskRunner`` on a local cluster of claimwire's own (``local_cluster``), each task
    run pinned to a worker of its own so that the worker can be restarted once the run is read."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cluster_class", local_cluster)
        super().__init__(**kwargs)
        self._free_slots: deque[str] | None = None
        self._slot_of: dict[Any, str] = {}
        self._recycling = True

    def __enter__(self) -> LocalDaskTaskRunner:
        # Set for the whole run: the cluster is started at the first submit, workers restart as it goes.
        self._run_config = dask.config.set(RUN_CONFIG)
        return super().__enter__()

    def __exit__(self, *args: Any) -> None:
        try:
            super().__exit__(*args)
        finally:
            self._run_config.__exit__(None, None, None)

    def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None, dependencies: Any = None) -> Any:
        if self._free_slots is None:
            _ = self.client  # the property starts the cluster on first use
            self._free_slots = deque(getattr(self._cluster, "slots", {}))
        if not self._free_slots:
            # More task runs than workers (or a cluster without slots): Dask places this one anywhere,
            # so a worker restart could now hit it; none is done for the rest of the run.
            self._recycling = False
            return super().submit(task, parameters, wait_for=wait_for, dependencies=dependencies)
        slot = self._free_slots.popleft()
        with dask.annotate(resources={slot: 1}):
            future = super().submit(task, parameters, wait_for=wait_for, dependencies=dependencies)
        self._slot_of[future.task_run_id] = slot
        return future

    def recycle_worker_of(self, future: PrefectFuture[Any]) -> str | None:
        """Restart the worker that ran ``future``, a finished task run whose result has been read, so
        that what its process accumulated goes with it; its slot takes the next task run. Returns the
        slot recycled, or None where nothing was restarted.

        Safe because every task run in flight holds a slot of its own: nothing else can be running on
        that worker. The result is released first: a result lost with its worker while still wanted
        would be computed again, i.e. the round run twice."""
        slot = self._slot_of.pop(future.task_run_id, None)
        if slot is None:
            return None
        if not self._recycling:
            self._free_slots.append(slot)
            return None
        future.wrapped_future.release()
        worker_name = self._cluster.slots[slot]
        outcome = self.client.restart_workers([worker_name], raise_for_error=False)
        if outcome.get(worker_name) != "OK":
            # A task run pinned to a worker that does not come back would wait for it forever: the slot
            # is retired and later task runs go wherever Dask puts them, with no more restarts.
            logger.warning("Dask worker %s did not restart (%s); its slot is retired", worker_name, outcome)
            return None
        self._free_slots.append(slot)
        return slot

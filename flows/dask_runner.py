"""The local Dask cluster of ``task_runner: dask``: workers without Dask's statistical profiler.

Two things made a Dask worker's memory grow with the backfill where a process-runner worker's does not
(benchmarks/RESULTS.md, "Dask workers"):

- **The profiler.** Every Dask worker samples the stack of each running task 100 times a second and
  keeps what it saw: a call tree per task and one per second, for up to 1,000 seconds
  (``distributed.admin.low-level-log-length``). A claimwire worker runs one task for a whole round of
  articles, deep in spaCy, lxml and trafilatura, so those trees grew all round: in the 1,000-article
  benchmark each Dask worker went from 265 to 321.6 MiB, ~0.11 MiB per article. With the profiler off
  they peak at 260.3 MiB, as process-runner workers do, and run a little faster (the sampling takes
  the GIL). The profiler feeds Dask's dashboard, which claimwire's local cluster does not serve.
- **Long-lived workers** (not fixed). With the profiler off, a Dask worker that drains round after
  round still creeps, 260.7 → 265.5 MiB over the ten rounds it ran of a 10,000-article backfill, as
  process-runner workers did before each round got a fresh process (``flows/process_runner.py``).
  Restarting the worker that finished a round before submitting the next (``Client.restart_workers``)
  held every round at 259.5–260.5 MiB, but raced: a round submitted meanwhile could land on a worker
  whose finished round was not yet handled, and that restart killed it mid-round (Dask ran it again;
  the articles were stored once, the run's counts lost the first attempt's). Doing it safely needs
  each round pinned to the worker it will restart; until then the Dask workers live for the run.

Workers of a cluster of your own (``dask_address``) read their own configuration and may serve other
clients, so nothing is done to them: start them with ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``
(README, "Scaling out").
"""

from __future__ import annotations

from typing import Any

from distributed import LocalCluster
from prefect_dask import DaskTaskRunner

WORKER_PROFILER = "distributed.worker.profile.enabled"


def local_cluster(**cluster_kwargs: Any) -> LocalCluster:
    """A ``LocalCluster`` whose workers run without the statistical profiler.

    The setting goes to each worker's nanny, which applies it in every worker process it starts,
    restarts included. Setting it only while the cluster is built is not enough: a nanny keeps a shallow
    copy of the configuration, whose nested values follow the global one back to the default, so the
    workers that replaced the first ones profiled again (measured: 260 → 313 MiB in a round)."""
    return LocalCluster(**cluster_kwargs, config={WORKER_PROFILER: False})


class LocalDaskTaskRunner(DaskTaskRunner):
    """Prefect's ``DaskTaskRunner`` on a local cluster of claimwire's own (``local_cluster``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cluster_class", local_cluster)
        super().__init__(**kwargs)

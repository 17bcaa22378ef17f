"""Prefect's process-pool task runner, with a fresh process for every task run.

A worker process that drains batch after batch creeps: about 1.5 MiB over seven minutes in the
10,000-article benchmark, from allocator fragmentation and state in the Prefect client it runs
(benchmarks/RESULTS.md). The queue is drained in rounds (``Settings.round_articles``), and each round
runs in a process of its own, so a backfill's peak is one round's however long it runs: the stdlib's
``max_tasks_per_child``, the same remedy as Celery's and gunicorn's worker recycling.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Self

from prefect.task_runners import ProcessPoolTaskRunner


class FreshProcessTaskRunner(ProcessPoolTaskRunner):
    """``ProcessPoolTaskRunner`` whose processes each run one task run and exit."""

    def __enter__(self) -> Self:
        super().__enter__()
        # Prefect builds its pool with arguments of its own (spawn context, an initializer wiring the
        # message queue): rebuilt from them with one task per process. No process has started yet:
        # a ProcessPoolExecutor spawns on first submit.
        pool = self._executor
        self._executor = ProcessPoolExecutor(
            max_workers=pool._max_workers,
            mp_context=pool._mp_context,
            initializer=pool._initializer,
            initargs=pool._initargs,
            max_tasks_per_child=1,
        )
        pool.shutdown(wait=True)
        return self

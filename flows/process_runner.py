"""Prefect's process-pool task runner, with a fresh process for every task run.

A worker process that drained batch after batch crept: in the 10,000-article benchmark its RSS rose
from 261.5 to about 264.5 MiB over 45 minutes (benchmarks/RESULTS.md). Most of that was later traced to
the near-duplicate lookup reading more with every article stored (fixed by migration 0002), not to the
process's age; rounds stay as the guard against whatever a long-lived process does accumulate (allocator
fragmentation, library caches). The queue is drained in rounds
(``Settings.round_articles``) and each round runs in a process of its own, so whatever a process
accumulates lasts one round however long the backfill runs: the stdlib's ``max_tasks_per_child``, the
remedy Celery and gunicorn use for long-lived workers.
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

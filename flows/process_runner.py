"""Prefect's process-pool task runner, made safe against a task engine that exits, and optionally with a
fresh process for every task run.

**An exiting task engine.** In a worker process Prefect runs each task under ``handle_engine_signals``,
which turns an error outside the task itself (the Prefect API unreachable, say) into ``exit(1)``. The
``SystemExit`` travels back to the parent as the task's outcome; there Prefect's chaining of futures
re-raises it inside the executor's manager thread, catching only ``Exception``, and the thread dies: the
task's future never resolves and the flow waits forever (seen in CI when a run lost its Prefect API).
``ProcessTaskRunner`` has each call turn such an exit into an ordinary error in the worker, so the round
fails, the run is recorded as failed with the reason, and nothing is left waiting.

**A fresh process per task run.** A worker process that drained batch after batch crept: in the
10,000-article benchmark its RSS rose from 261.5 to about 264.5 MiB over 45 minutes
(benchmarks/RESULTS.md). Most of that was later traced to the near-duplicate lookup reading more with
every article stored (fixed by migration 0002), not to the process's age; rounds stay as the guard against
whatever a long-lived process does accumulate (allocator fragmentation, library caches). The queue is
drained in rounds (``Settings.round_articles``) and each round runs in a process of its own, so whatever a
process accumulates lasts one round however long the backfill runs: the stdlib's ``max_tasks_per_child``,
the remedy Celery and gunicorn use for long-lived workers.

**A stopped run.** When the run is stopped (``SIGTERM``, Ctrl-C: a ``BaseException`` that is not an
``Exception`` leaves the runner), the pool's processes are terminated before the pool is shut down.
Prefect's runner would wait for the rounds in progress to end (2 min 23 s, measured); a killed round
loses at most the article in its transaction, and its claims go back to the queue as a dead
process's do (flows/stopping.py).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from typing import Any, Self

from prefect.task_runners import ProcessPoolTaskRunner

from flows.stopping import terminate_pool_processes


class TaskEngineExited(RuntimeError):
    """A task run's engine ended its worker process's work with an exit rather than a result."""


def _exit_as_error(call: Callable[[], Any]) -> Any:
    """Run one submitted call in a worker process; an exit or interrupt comes back as an error."""
    try:
        return call()
    except Exception:
        raise
    except BaseException as exc:  # SystemExit, KeyboardInterrupt: must not reach the parent as such
        code = f" (exit code {exc.code})" if isinstance(exc, SystemExit) else ""
        raise TaskEngineExited(
            f"the task run's engine stopped in its worker process with {type(exc).__name__}{code}; "
            "the error it logged just before says why (most often: the Prefect API could not be reached)"
        ) from None


class _ExitSafeProcessPoolExecutor(ProcessPoolExecutor):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return super().submit(partial(_exit_as_error, partial(fn, *args, **kwargs)))


class ProcessTaskRunner(ProcessPoolTaskRunner):
    """``ProcessPoolTaskRunner`` whose task runs end in a result or an error, never in a hung future."""

    max_tasks_per_child: int | None = None

    def __enter__(self) -> Self:
        super().__enter__()
        # Prefect builds its pool with arguments of its own (spawn context, an initializer wiring the
        # message queue): rebuilt from them. No process has started yet: a pool spawns on first submit.
        pool = self._executor
        self._executor = _ExitSafeProcessPoolExecutor(
            max_workers=pool._max_workers,
            mp_context=pool._mp_context,
            initializer=pool._initializer,
            initargs=pool._initargs,
            max_tasks_per_child=self.max_tasks_per_child,
        )
        pool.shutdown(wait=True)
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            terminate_pool_processes(self._executor)
        super().__exit__(exc_type, exc_value, traceback)


class FreshProcessTaskRunner(ProcessTaskRunner):
    """``ProcessTaskRunner`` whose processes each run one task run and exit."""

    max_tasks_per_child = 1

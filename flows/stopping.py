"""Telling a run's workers to stop when the run is stopped, so a signal ends the run in seconds.

A ``SIGTERM`` (``docker stop``, Kubernetes, ``kill``, a Prefect runner cancelling the run) or Ctrl-C
reaches a flow's main thread as ``TerminationSignal`` or ``KeyboardInterrupt``. The drain, though, runs
in the task runner's threads or processes, and the runner waits for them before the run can end: the
thread runner for the whole queue (181 s left of a 400-article drain when it was measured), the process
runner for the rounds in progress (2 min 23 s). A service manager gives a process seconds, not minutes,
before it kills it, and a killed run never records how it ended.

So the flow asks its drain to stop (``request_stop``), and a drain checks ``stop_requested`` between
articles: the article in hand is stored whole, the rest of the batch is handed back to the queue, and
the run records itself failed with the signal as the reason. Worker processes are stopped by their
runner instead (flows/process_runner.py): one article's transaction is all a killed process can lose,
and its claims go back to the queue as a dead process's do (storage/queue.py).

Each drain has its own token, so one stopped drain never stops another in the same process (a test
session, a long-lived worker serving several runs).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ProcessPoolExecutor

_stopped: set[str] = set()
_lock = threading.Lock()


def new_drain_token() -> str:
    return uuid.uuid4().hex


def request_stop(token: str) -> None:
    with _lock:
        _stopped.add(token)


def stop_requested(token: str | None) -> bool:
    return token is not None and token in _stopped


def forget(token: str) -> None:
    """The drain is over (its workers have returned): its token is no longer needed."""
    with _lock:
        _stopped.discard(token)


def terminate_pool_processes(pool: ProcessPoolExecutor, timeout_s: float = 30.0) -> None:
    """SIGTERM to every process of ``pool``, and wait for them to go. The pool's own ``shutdown`` would
    wait for the work they have in hand; after this it finds them gone and returns at once."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    for process in workers:
        process.terminate()
    for process in workers:
        process.join(timeout=timeout_s)

"""A Prefect API server of this process's own, on a port it holds from before the server starts.

Without PREFECT_API_URL, Prefect starts a throwaway API server on a random port from 8000–8999 that it
checks is free, then waits until ``/health`` on that port answers. Two runs starting at once can pick
the same port: the loser's server cannot bind, but its health check is answered by the winner's server,
so the loser reports to the other run's API — until that run ends, stops its server, and the loser's
workers can no longer reach any (a run hung this way in CI, see flows/process_runner.py).

Here the parent binds a socket on a port the kernel picks, keeps it, and hands it to the server process,
which serves on exactly that socket: no other process can hold the port, and whatever answers on it is
this server. Two kinds:

- ``throwaway_prefect_server()``: what a one-off ``claimwire ingest`` / ``backfill`` / ``reprocess``
  uses when no server is configured; the same app and settings as Prefect's own throwaway server.
- ``local_prefect_server(home)``: what ``claimwire serve`` uses; a full server with its services
  (the scheduler, which a throwaway server lacks, so a served schedule would never fire on it) and its
  own PREFECT_HOME under ./data.

``python -m flows.prefect_server FD PARENT_PID`` is the server process itself.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import httpx

# A machine's first run creates Prefect's own database before the API answers: on a busy two-core
# machine that outran Prefect's 20 s default and the run failed before it began.
STARTUP_TIMEOUT_S = 120.0


@contextmanager
def throwaway_prefect_server(timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Prefect's throwaway ("ephemeral") API for the length of one command; yields its API URL."""
    settings = {
        "PREFECT_SERVER_ANALYTICS_ENABLED": os.environ.get("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    with _prefect_server(settings, log=None, timeout_s=timeout_s) as url:
        yield url


@contextmanager
def local_prefect_server(home: Path, timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """A full Prefect server with its services and its own PREFECT_HOME; log in ``home/server.log``."""
    home.mkdir(parents=True, exist_ok=True)
    settings = {
        "PREFECT_HOME": str(home),
        "PREFECT__SERVER_FINAL": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        # A private server has one deployment: look for due runs often rather than once a minute.
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "10",
    }
    with ExitStack() as stack:
        log = stack.enter_context((home / "server.log").open("ab"))
        yield stack.enter_context(_prefect_server(settings, log=log, timeout_s=timeout_s))


@contextmanager
def reporting_to(url: str) -> Iterator[str]:
    """This process reports to the Prefect API at ``url`` while the block runs, and so do the processes it
    starts. Set in the environment and in Prefect's process-wide settings, not only in this thread's:
    Prefect's helper threads (the process runner's message forwarder, a served deployment's runner) read
    those, and one that found no API started Prefect's own throwaway server after all."""
    from prefect.context import refresh_global_settings_context

    os.environ["PREFECT_API_URL"] = url
    refresh_global_settings_context()
    try:
        yield url
    finally:
        # Logs and events still queued (a run stopped by Ctrl-C leaves some) go out while the server is
        # up; Prefect would otherwise send them at exit, to a server already stopped.
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for worker in (APILogWorker, EventsWorker):
            worker.drain_all(timeout=10, at_exit=False)
        os.environ.pop("PREFECT_API_URL", None)
        refresh_global_settings_context()


@contextmanager
def _prefect_server(settings: dict[str, str], log: IO[bytes] | None, timeout_s: float):
    # A server's start creates or migrates the database in its PREFECT_HOME. Two starting at once on a
    # new one both migrated it and the loser failed ("duplicate column name"), and so did its command:
    # two commands started together on a fresh machine. Starts that share a home take turns; once
    # started, servers share the database without trouble.
    with _start_lock(_prefect_home(settings)):
        process, url = _start(settings, log, timeout_s)
    try:
        yield url
    finally:
        _stop(process)


def _prefect_home(settings: dict[str, str]) -> Path:
    if "PREFECT_HOME" in settings:
        return Path(settings["PREFECT_HOME"])
    from prefect.settings import get_current_settings

    return Path(get_current_settings().home)


@contextmanager
def _start_lock(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with (home / "claimwire-server-start.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def _start(settings: dict[str, str], log: IO[bytes] | None, timeout_s: float) -> tuple[subprocess.Popen, str]:
    """Start the server process and wait until it answers; returns it and its API URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Bound, not listening: the port is ours, and a health check is refused until the server listens.
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | settings
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.prefect_server", str(listener.fileno()), str(os.getpid())],
        env=env,
        pass_fds=[listener.fileno()],
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        # A session of its own: Ctrl-C interrupts the command, which still reports how its run ended to
        # this server and then stops it (in the same session the server died with the command's first
        # breath and the command spent minutes retrying to report to it).
        start_new_session=True,
    )
    listener.close()  # the server process holds its own copy
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_until_healthy(process, url, timeout_s, log)
    except BaseException:
        _stop(process)
        raise
    return process, url


def _wait_until_healthy(process: subprocess.Popen, url: str, timeout_s: float, log: IO[bytes] | None) -> None:
    where = f"; see {log.name}" if log else ""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the Prefect API server exited with code {process.returncode}{where}")
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:  # the caller's `finally` stops it
                raise RuntimeError(f"the Prefect API server did not answer within {timeout_s:.0f} s{where}")
            time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _stop_when_orphaned(parent_pid: int) -> None:
    """A parent killed outright (SIGKILL) cannot stop its server: the server stops itself instead."""
    while os.getppid() == parent_pid:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


def serve(fd: int, parent_pid: int) -> None:
    """Serve Prefect's API app on the inherited, already bound socket ``fd``."""
    import uvicorn

    threading.Thread(target=_stop_when_orphaned, args=(parent_pid,), daemon=True).start()
    config = uvicorn.Config(
        "prefect.server.api.server:create_app", factory=True, lifespan="on", log_level="error", access_log=False
    )
    server = uvicorn.Server(config)
    server.run(sockets=[socket.socket(fileno=fd)])
    if not server.started:
        sys.exit(3)  # what `uvicorn` itself exits with when the app fails to start


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))

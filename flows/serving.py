"""Serving a deployment's schedule in this process (``claimwire serve``) and stopping it cleanly.

``prefect.serve`` leaves two things undone when the command is stopped:

- Its runner replaces the process's SIGTERM handler with one that calls the runner's async ``stop()``
  without awaiting it, then ``sys.exit(0)``: a service manager's SIGTERM ended the command with
  tracebacks, past the code that stops it in order.
- A scheduled run in progress is a process of its own (``python -m prefect.engine``) in a session of
  its own, so neither Ctrl-C in a terminal nor a signal to the command reaches it. It went on after the
  command stopped, and once the command's local Prefect server was gone it retried reporting to it for
  minutes, while the command waited for it before it could exit.

So here SIGTERM stops the schedule the way Ctrl-C does, and the runs still in progress are stopped,
and have reported how they ended, before the caller stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

# A run told to stop records itself failed and reports to the Prefect server; this is how long it has
# for that before it is killed.
RUN_STOP_GRACE_S = 20.0


def serve_until_stopped(deployment: RunnerDeployment) -> None:
    """Run ``deployment``'s schedule until Ctrl-C or SIGTERM. The first asks the runner to stop, which
    cancels the runs in progress (each records itself failed and reports Cancelled), then interrupts any
    run the runner did not know of; a second signal stops at once. Runs still going after that are
    stopped here."""
    from prefect.runner import Runner

    runner = Runner(pause_on_shutdown=True)  # as prefect.serve makes it
    runner.add_deployment(deployment)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        asked_to_stop = False
        stopping: list[asyncio.Task] = []  # a reference, so the task is not collected while it runs

        def stop() -> None:
            nonlocal asked_to_stop
            if asked_to_stop or not runner.started:
                raise KeyboardInterrupt  # ends the event loop where it is
            asked_to_stop = True
            stopping.append(loop.create_task(stop_runner_and_its_runs()))

        async def stop_runner_and_its_runs() -> None:
            await runner.astop()  # cancels the runs it knows of and waits until they have gone
            # A run the runner was still starting when told to stop is not among them, and the runner waits
            # for it to end, however long it polls or drains. It is interrupted as Ctrl-C would interrupt it
            # (it records itself failed), as is any other that turns up before the runner has stopped.
            interrupted: set[int] = set()
            while True:
                fresh = [run for run in flow_run_processes(psutil.Process()) if run.pid not in interrupted]
                interrupted.update(run.pid for run in fresh)
                interrupt(fresh)
                await asyncio.sleep(0.5)

        # Runner.start() installs whatever this attribute holds as the process's SIGTERM handler.
        runner.handle_sigterm = lambda *_: loop.call_soon_threadsafe(stop)  # type: ignore[method-assign]
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # as a shell's background job leaves it
            loop.add_signal_handler(signal.SIGINT, stop)
        await runner.start()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
    finally:
        stop_flow_runs(RUN_STOP_GRACE_S)


def flow_run_processes(parent: psutil.Process) -> list[psutil.Process]:
    """The flow-run processes a runner in ``parent`` started and that are still running."""
    runs = []
    for child in parent.children():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if child.cmdline()[1:3] == ["-m", "prefect.engine"]:
                runs.append(child)
    return runs


def interrupt(runs: list[psutil.Process]) -> None:
    """What Ctrl-C would do to each run: it records itself failed and exits."""
    for run in runs:
        with contextlib.suppress(psutil.NoSuchProcess):
            run.send_signal(signal.SIGINT)


def stop_flow_runs(grace_s: float) -> None:
    """Interrupt the flow runs this process started (what Ctrl-C would do to each: the run records itself
    failed), wait up to ``grace_s`` for them, then kill what is left."""
    runs = flow_run_processes(psutil.Process())
    interrupt(runs)
    _, left = psutil.wait_procs(runs, timeout=grace_s)
    for run in left:  # SIGINT ignored (started from a shell's background job) or stuck
        with contextlib.suppress(psutil.NoSuchProcess):
            run.kill()
    psutil.wait_procs(left, timeout=5)

"""What every flow needs: settings in, an engine, a run row, a lease, a task runner, an artifact."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import asdict

from sqlalchemy import Engine

from flows.leases import renew
from flows.settings import Settings
from storage import init_db, make_engine
from storage.runs import RunHeartbeat, RunStats, finish_run, start_run


def engine_for(settings: Settings) -> Engine:
    engine = make_engine(settings.db)
    init_db(engine)
    return engine


def task_runner(settings: Settings):
    """Thread pool for I/O-bound single-worker runs; processes or Dask to use several cores."""
    from prefect.task_runners import ThreadPoolTaskRunner

    if settings.task_runner == "process":
        from flows.process_runner import FreshProcessTaskRunner, ProcessTaskRunner

        runner = FreshProcessTaskRunner if settings.round_articles else ProcessTaskRunner
        return runner(max_workers=max(1, settings.workers))
    if settings.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        from flows.dask_runner import LocalDaskTaskRunner

        if settings.dask_address:  # a shared cluster: workers on other machines do the heavy stages
            return DaskTaskRunner(address=settings.dask_address)
        return LocalDaskTaskRunner(
            cluster_kwargs={
                "n_workers": max(1, settings.workers),
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    return ThreadPoolTaskRunner(max_workers=max(1, settings.workers))


@contextlib.contextmanager
def api_shared_with_worker_processes() -> Iterator[None]:
    """Worker processes started inside the block talk to the Prefect API this run already uses.

    With no PREFECT_API_URL, Prefect starts a throwaway API server for the process that first needs one.
    A worker process (process or Dask runner) inherits no address, so each started a server of its own:
    ~215 MiB and seconds of CPU per worker, taken from the work. Spawned processes copy the environment,
    so the parent's address is exported for as long as the block runs. (The CLI starts and exports an
    API of its own before any flow, flows/prefect_server.py; this covers flows called from Python.)"""
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.client is None:
        yield
        return
    os.environ["PREFECT_API_URL"] = str(context.client.api_url).rstrip("/")
    try:
        yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)


def summary_markdown(kind: str, run_id: int, stats: RunStats) -> str:
    rows = {k: v for k, v in asdict(stats).items() if k != "extra"}
    rows.update({k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in stats.extra.items()})
    lines = [f"# claimwire {kind} run {run_id}", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows.items()]
    return "\n".join(lines)


def publish_artifact(kind: str, run_id: int, stats: RunStats) -> None:
    """A markdown table of what the run did, attached to the Prefect flow run."""
    from prefect.artifacts import create_markdown_artifact

    # An artifact is a report, never a reason to fail the run.
    with contextlib.suppress(Exception):
        create_markdown_artifact(
            markdown=summary_markdown(kind, run_id, stats),
            key=f"claimwire-{kind}",
            description=f"claimwire {kind} run {run_id}",
        )


@contextlib.contextmanager
def recorded_run(engine: Engine, kind: str, lease: str | None = None) -> Iterator[tuple[int, RunStats]]:
    """A ``runs`` row (``v_runs``) and a Prefect artifact for the work inside: 'completed' when the block
    finishes, 'failed' when it raises; the counts gathered in the yielded RunStats either way. The run's
    heartbeat goes on meanwhile, renewing the ``lease`` it holds, so neither the run nor its lease is
    taken for gone however long it lasts."""
    run_id = start_run(engine, kind)
    stats = RunStats()
    status = "failed"
    renewal = [functools.partial(renew, engine, lease)] if lease else []
    try:
        with RunHeartbeat(engine, run_id, also=renewal):
            yield run_id, stats
        status = "completed"
    except BaseException as exc:  # why it failed, in the run's detail: an error, a signal, Ctrl-C
        stats.extra["error"] = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:1000]
        raise
    finally:
        finish_run(engine, run_id, stats, status)
        publish_artifact(kind, run_id, stats)

"""The ``ingest`` flow: poll every due feed, then drain the fetch queue in batches."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.futures import PrefectFuture

from flows.config import effective_settings
from flows.leases import LeaseBusy, acquire, release
from flows.poll_process import poll, polling_in_child_process
from flows.runtime import api_shared_with_worker_processes, engine_for, recorded_run, task_runner
from flows.settings import Settings
from flows.stages import drain
from flows.stopping import forget, new_drain_token, request_stop, stop_requested
from storage import feed_state, make_engine, queue
from storage.clock import database_now
from storage.runs import RunStats


@task(name="poll-feeds", retries=1, retry_delay_seconds=5)
def poll_feeds_task(settings_json: str, feed_urls: list[str], run_id: int) -> RunStats:
    return poll(settings_json, feed_urls, run_id)  # in the run's poll process (flows/poll_process.py)


@task(name="process-batches")
def process_batches_task(
    settings_json: str,
    origins: list[str],
    run_id: int,
    max_batches: int | None = None,
    force_retries: bool = False,
    only_retries: bool = False,
    drain_token: str | None = None,
) -> RunStats:
    """Drain the queue one batch at a time; several of these run side by side as workers. On threads
    the drain ends early when its run asks it to (``drain_token``, flows/stopping.py)."""
    settings = Settings.model_validate_json(settings_json)
    engine = engine_for(settings)
    try:
        return drain(
            engine,
            settings,
            origins=origins,
            max_batches=max_batches,
            should_stop=lambda: stop_requested(drain_token),
            force_retries=force_retries,
            only_retries=only_retries,
        )
    finally:
        engine.dispose()


@flow(name="drain-queue")
def drain_queue_flow(
    settings_json: str,
    origins: list[str],
    run_id: int,
    force_retries: bool = False,
    only_retries: bool = False,
    drain_token: str | None = None,
) -> RunStats:
    """The workers' part of a run, as a subflow so its task runner (threads, processes, Dask) can be chosen
    by the settings at run time, whether the parent was started by the CLI or by a deployment."""
    settings = Settings.model_validate_json(settings_json)
    return _submit_workers(
        settings, origins, run_id, force_retries=force_retries, only_retries=only_retries, drain_token=drain_token
    )


def drain_queue(settings: Settings, origins: list[str], run_id: int, **kwargs) -> RunStats:
    """Drain the queue with ``settings.workers`` workers on the task runner the settings name."""
    runner_flow = drain_queue_flow.with_options(task_runner=task_runner(settings))
    token = new_drain_token()
    try:
        with api_shared_with_worker_processes():
            return runner_flow(settings.model_dump_json(), origins, run_id, drain_token=token, **kwargs)
    finally:
        forget(token)  # the runner has waited for its workers by now


def _submit_workers(
    settings: Settings, origins: list[str], run_id: int, drain_token: str | None = None, **claim_options
) -> RunStats:
    """Keep one draining task run per worker going, a round of batches each, until the queue is drained.

    A round that comes back full may have left work behind: if the queue still has some, another task
    run takes over (in a fresh process with the process runner). A round that ends short found the queue
    empty."""
    from prefect.futures import as_completed

    round_batches = batches_per_round(settings)
    settings_json = settings.model_dump_json()

    def start_round():
        return process_batches_task.submit(
            settings_json, origins, run_id, max_batches=round_batches, drain_token=drain_token, **claim_options
        )

    running = {start_round() for _ in range(max(1, settings.workers))}
    total = RunStats()
    engine = make_engine(settings.db)
    try:
        while running:
            finished = next(as_completed(list(running)))
            running.remove(finished)
            stats = finished.result()
            total.add(stats)
            total.extra["rounds"] = total.extra.get("rounds", 0) + 1  # task runs that drained, in the run's detail
            if round_batches and stats.extra.get("batches", 0) >= round_batches:
                with engine.connect() as conn:
                    if queue.has_claimable(conn, now=database_now(conn), origins=origins, **claim_options):
                        fresh_worker_after(finished)
                        running.add(start_round())
    except BaseException as exc:
        # The run is stopping (a signal, Ctrl-C): the task runner is about to wait for the rounds still
        # going, so they are told to end after the article in hand (flows/stopping.py). A round that
        # failed leaves the others to finish, as before.
        if drain_token and not isinstance(exc, Exception):
            request_stop(drain_token)
        raise
    finally:
        engine.dispose()
    return total


def batches_per_round(settings: Settings) -> int | None:
    """How many batches a worker's task run drains before another takes over; None: the whole queue.

    Rounds exist so that a worker's memory lasts one round: the process runner starts each task run in a
    fresh process and claimwire's Dask cluster restarts the worker after it (a cluster of your own keeps
    its workers; rounds there only hand work out again, as before). Threads share the flow's
    process, where a round only added a task run, an engine and a prefetch thread, and some of each stayed
    in the one heap: one worker on threads settled 0.7 MiB higher between batches from its second round on
    (three 1,000-article runs), and 0.05 higher over the same batches without rounds (benchmarks/RESULTS.md)."""
    if settings.task_runner == "thread" or not settings.round_articles:
        return None
    return -(-settings.round_articles // settings.batch_size)


def fresh_worker_after(finished: PrefectFuture) -> str | None:
    """The next round starts in a fresh worker process: the process runner starts one per task run
    (flows/process_runner.py); claimwire's local Dask cluster restarts the worker that ran the round
    (flows/dask_runner.py). Threads share the flow's process, and a cluster of your own is left as is.
    Returns the Dask slot whose worker was restarted, None where nothing was."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    recycle = getattr(context.task_runner, "recycle_worker_of", None) if context else None
    return recycle(finished) if recycle is not None else None


@flow(name="ingest", log_prints=True)
def ingest_flow(
    feeds_file: str | None = None,
    db: str | None = None,
    allow_private_networks: bool | None = None,
    workers: int | None = None,
    task_runner_name: str | None = None,
    overlap: str | None = None,
) -> dict:
    settings, config = effective_settings(
        feeds_file,
        db=db,
        allow_private_networks=allow_private_networks,
        workers=workers,
        task_runner=task_runner_name,
        overlap=overlap,
    )
    return run_ingest(settings, config)


def run_ingest(settings: Settings, config) -> dict:
    logger = get_run_logger()
    engine = engine_for(settings)
    # 'skip' and 'wait' serialise runs; 'parallel' lets runs (workers) share the work, split by row claims.
    lease = settings.overlap != "parallel"
    if lease:
        try:
            acquire(engine, "ingest", wait=settings.overlap == "wait")
        except LeaseBusy as exc:
            logger.warning("skipped: %s (overlap policy 'skip')", exc)
            engine.dispose()
            return {"status": "skipped", "reason": str(exc)}
    try:
        with recorded_run(engine, "ingest", lease="ingest" if lease else None) as (run_id, stats):
            with engine.begin() as conn:
                feed_state.sync_feeds(conn, config.feeds)
            urls = [f.url for f in config.feeds]
            with polling_in_child_process():
                for i in range(0, len(urls), settings.feed_batch_size):
                    batch = urls[i : i + settings.feed_batch_size]
                    stats.add(poll_feeds_task(settings.model_dump_json(), batch, run_id))
            logger.info(
                "polled %d feeds: %d not modified, %d failed",
                stats.feeds_polled,
                stats.feeds_not_modified,
                stats.feeds_failed,
            )
            stats.add(drain_queue(settings, ["feed"], run_id))
        logger.info("ingest run %d completed: %s", run_id, stats.flat())
        return {"status": "completed", "run_id": run_id, **stats.flat()}
    finally:
        if lease:
            release(engine, "ingest")
        engine.dispose()

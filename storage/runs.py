"""Pipeline run rows (``v_runs``): one per ingest, backfill, reprocess or seed load."""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, func, insert, select, update

from storage.clock import database_now
from storage.models import RunRow
from storage.owners import owner_is_gone, owner_is_local, process_owner

log = logging.getLogger(__name__)

# The reason a run left 'running' by a process that is gone is closed with, in its detail.
ABANDONED = "its process ended without finishing the run (killed, out of memory, or the machine stopped)"

# A run in progress says so this often (RunHeartbeat). One of another host not heard from for
# RUN_SILENT_AFTER is taken for gone: ten beats, so a database busy for minutes does not close a live run.
# Beats and silence are both read off the database's clock (storage/clock.py), whatever the hosts' say.
HEARTBEAT_EVERY = timedelta(minutes=1)
RUN_SILENT_AFTER = timedelta(minutes=10)
SILENT = (
    "its process stopped saying it was alive (its machine stopped or lost the database, or it was killed)"
    f" and was not heard from for {int(RUN_SILENT_AFTER.total_seconds() // 60)} minutes"
)


@dataclass
class RunStats:
    feeds_polled: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    articles_new: int = 0
    articles_duplicate: int = 0
    articles_failed: int = 0
    claims_new: int = 0
    extra: dict = field(default_factory=dict)

    def flat(self) -> dict:
        """Counters and extras in one mapping, for summaries and flow results."""
        values = asdict(self)
        values.update(values.pop("extra"))
        return values

    def add(self, other: RunStats) -> None:
        for name in (
            "feeds_polled",
            "feeds_not_modified",
            "feeds_failed",
            "articles_new",
            "articles_duplicate",
            "articles_failed",
            "claims_new",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, value in other.extra.items():
            self.extra[key] = self.extra.get(key, 0) + value if isinstance(value, int | float) else value


def start_run(engine: Engine, kind: str) -> int:
    with engine.begin() as conn:
        now = database_now(conn)
        close_abandoned_runs(conn, now)
        return conn.execute(
            insert(RunRow)
            .values(kind=kind, started_at=now, heartbeat_at=now, status="running", owner=process_owner())
            .returning(RunRow.id)
        ).scalar_one()


def close_abandoned_runs(conn: Connection, now: datetime) -> list[int]:
    """Runs still 'running' that never recorded how they ended become 'failed' with the reason, so a
    dashboard stops counting them as in progress: those whose process on this host is gone (SIGKILL, the
    OOM killer, a reboot), and those of other hosts not heard from for RUN_SILENT_AFTER (a machine that
    stopped for good, whose processes cannot be checked from here; a live process here is believed
    over its heartbeat, stopped with SIGSTOP say). Their unfinished work is already safe: the queue
    takes back a dead process's claims, at once or when they go stale.
    `now` is the database's time (storage/clock.py). Returns the runs closed."""
    last_heard = func.coalesce(RunRow.heartbeat_at, RunRow.started_at).label("last_heard")
    running = conn.execute(
        select(RunRow.id, RunRow.owner, RunRow.detail, last_heard).where(RunRow.status == "running")
    ).all()
    silent_since = now - RUN_SILENT_AFTER
    closed = []
    for run in running:
        if owner_is_gone(run.owner):
            reason = ABANDONED
        elif not owner_is_local(run.owner) and run.last_heard < silent_since:
            reason = SILENT
        else:
            continue
        detail = {**json.loads(run.detail or "{}"), "error": reason}
        conn.execute(
            update(RunRow)
            .where(RunRow.id == run.id, RunRow.status == "running")
            .values(status="failed", finished_at=now, detail=json.dumps(detail))
        )
        closed.append(run.id)
    return closed


def beat(engine: Engine, run_id: int) -> None:
    """Record that the run's process is alive. A run already closed (as silent, by another host) stays
    closed: its own end, recorded by finish_run, is what tells the rest."""
    with engine.begin() as conn:
        conn.execute(
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.status == "running")
            .values(heartbeat_at=database_now(conn))
        )


class RunHeartbeat:
    """A daemon thread that beats for a run every ``every`` until stopped, so a run that lasts hours is
    not taken for gone, and calls ``also`` with each beat (renewing the run's lease, flows/leases.py). A
    beat that fails (database busy or unreachable for a while) is logged and the next one tried: the
    run itself decides whether the database is lost."""

    def __init__(
        self,
        engine: Engine,
        run_id: int,
        every: timedelta = HEARTBEAT_EVERY,
        also: Sequence[Callable[[], object]] = (),
    ) -> None:
        self._run_id, self._every_s = run_id, every.total_seconds()
        self._beats = [functools.partial(beat, engine, run_id), *also]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat_until_stopped, name=f"run-{run_id}-heartbeat", daemon=True)

    def __enter__(self) -> RunHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._thread.join()

    def _beat_until_stopped(self) -> None:
        while not self._stopped.wait(self._every_s):
            for each in self._beats:
                try:
                    each()
                except Exception as exc:  # noqa: BLE001 - a missed beat is retried; ten in a row close the run
                    log.warning("run %s: heartbeat not recorded: %s", self._run_id, exc)


def finish_run(engine: Engine, run_id: int, stats: RunStats, status: str = "completed") -> None:
    values = asdict(stats)
    extra = values.pop("extra")
    with engine.begin() as conn:
        conn.execute(
            update(RunRow)
            .where(RunRow.id == run_id)
            .values(finished_at=database_now(conn), status=status, detail=json.dumps(extra, default=str), **values)
        )

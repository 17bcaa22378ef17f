"""Pipeline run rows (``v_runs``): one per ingest, backfill, reprocess or seed load."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import Connection, Engine, insert, select, update

from storage.models import RunRow
from storage.owners import owner_is_gone, process_owner
from storage.types import utcnow

# The reason a run left 'running' by a process that is gone is closed with, in its detail.
ABANDONED = "its process ended without finishing the run (killed, out of memory, or the machine stopped)"


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
        close_abandoned_runs(conn)
        return conn.execute(
            insert(RunRow)
            .values(kind=kind, started_at=utcnow(), status="running", owner=process_owner())
            .returning(RunRow.id)
        ).scalar_one()


def close_abandoned_runs(conn: Connection) -> list[int]:
    """Runs still 'running' whose process on this host is gone (SIGKILL, the OOM killer, a reboot) never
    recorded how they ended; they become 'failed' with the reason, so a dashboard stops counting them
    as in progress. Their unfinished work is already safe: the queue takes back a dead process's claims.
    Returns the runs closed."""
    running = conn.execute(select(RunRow.id, RunRow.owner, RunRow.detail).where(RunRow.status == "running")).all()
    closed = []
    for run in running:
        if not owner_is_gone(run.owner):
            continue
        detail = {**json.loads(run.detail or "{}"), "error": ABANDONED}
        conn.execute(
            update(RunRow)
            .where(RunRow.id == run.id, RunRow.status == "running")
            .values(status="failed", finished_at=utcnow(), detail=json.dumps(detail))
        )
        closed.append(run.id)
    return closed


def finish_run(engine: Engine, run_id: int, stats: RunStats, status: str = "completed") -> None:
    values = asdict(stats)
    extra = values.pop("extra")
    with engine.begin() as conn:
        conn.execute(
            update(RunRow)
            .where(RunRow.id == run_id)
            .values(finished_at=utcnow(), status=status, detail=json.dumps(extra, default=str), **values)
        )

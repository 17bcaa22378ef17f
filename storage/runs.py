"""Pipeline run rows (``v_runs``): one per ingest, backfill, reprocess or seed load."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import Engine, insert, update

from storage.models import RunRow
from storage.types import utcnow


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
        return conn.execute(
            insert(RunRow).values(kind=kind, started_at=utcnow(), status="running").returning(RunRow.id)
        ).scalar_one()


def finish_run(engine: Engine, run_id: int, stats: RunStats, status: str = "completed") -> None:
    values = asdict(stats)
    extra = values.pop("extra")
    with engine.begin() as conn:
        conn.execute(
            update(RunRow)
            .where(RunRow.id == run_id)
            .values(finished_at=utcnow(), status=status, detail=json.dumps(extra, default=str), **values)
        )

"""The failure table: one row per failing feed or URL with stage, error, attempts and next retry."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from storage.models import FailureRow
from storage.writes import dialect_insert

RETRY_BASE_S = 15 * 60
RETRY_CAP_S = 24 * 3600
MAX_ATTEMPTS = 6


def retry_delay_s(attempts: int, retry_after_s: float | None = None) -> float:
    delay = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, attempts - 1))
    return max(delay, retry_after_s or 0.0)


def record_failure(
    conn: Connection,
    *,
    kind: str,
    target: str,
    stage: str,
    error: str,
    now: datetime,
    retry_after_s: float | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> bool:
    """Upsert a failure and schedule its retry, or give up on it after ``max_attempts``. Returns whether
    it gave up."""
    table = FailureRow.__table__
    stmt = dialect_insert(conn, table).values(
        kind=kind,
        target=target,
        stage=stage,
        error=error[:4000],
        attempts=1,
        first_failed_at=now,
        last_failed_at=now,
        gave_up=0,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "target"],
        set_={
            "stage": stage,
            "error": error[:4000],
            "last_failed_at": now,
            "resolved_at": None,
            "attempts": table.c.attempts + 1,
        },
    ).returning(table.c.id, table.c.attempts)
    row = conn.execute(stmt).one()
    gave_up = row.attempts >= max_attempts
    next_retry = None if gave_up else now + timedelta(seconds=retry_delay_s(row.attempts, retry_after_s))
    conn.execute(
        update(FailureRow).where(FailureRow.id == row.id).values(next_retry_at=next_retry, gave_up=int(gave_up))
    )
    return gave_up


def resolve_failure(conn: Connection, *, kind: str, target: str, now: datetime) -> None:
    conn.execute(
        update(FailureRow)
        .where(FailureRow.kind == kind, FailureRow.target == target, FailureRow.resolved_at.is_(None))
        .values(resolved_at=now, next_retry_at=None)
    )


def due_targets(conn: Connection, kind: str, now: datetime, *, include_not_due: bool = False) -> list[str]:
    query = select(FailureRow.target).where(
        FailureRow.kind == kind, FailureRow.resolved_at.is_(None), FailureRow.gave_up == 0
    )
    if not include_not_due:
        query = query.where(FailureRow.next_retry_at <= now)
    return list(conn.execute(query.order_by(FailureRow.next_retry_at)).scalars())

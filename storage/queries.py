"""Read-only queries for ``claimwire status`` (and reused by the dashboard)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, func, select

from storage.models import ArticleRow, ClaimRow, FailureRow, Feed, QuantityRow, RunRow


def article_counts(conn: Connection) -> dict[str, dict[str, int]]:
    rows = conn.execute(
        select(
            ArticleRow.origin, func.count(), func.count(ArticleRow.duplicate_of), func.count(ArticleRow.claims_version)
        ).group_by(ArticleRow.origin)
    ).all()
    return {origin: {"articles": n, "duplicates": d, "with_claims": c} for origin, n, d, c in rows}


def claim_counts(conn: Connection) -> dict[str, int]:
    total = conn.execute(select(func.count()).select_from(ClaimRow)).scalar_one()
    quantities = conn.execute(select(func.count()).select_from(QuantityRow)).scalar_one()
    by_verification = dict(
        conn.execute(select(ClaimRow.verification, func.count()).group_by(ClaimRow.verification)).all()
    )
    return {"claims": total, "quantities": quantities, **{f"verification:{k}": v for k, v in by_verification.items()}}


def recent_runs(conn: Connection, limit: int = 10) -> list:
    return list(conn.execute(select(RunRow.__table__).order_by(RunRow.id.desc()).limit(limit)).all())


def run_state(run, now: datetime) -> str:
    """A run's status as a reader needs it: how long ago a run in progress was last heard from (one gone
    quiet is about to be closed, storage/runs.py), and why a failed run failed."""
    if run.status == "running":
        seconds = max(0, int((now - (run.heartbeat_at or run.started_at)).total_seconds()))
        ago = f"{seconds} s" if seconds < 120 else f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"
        return f"running (heard {ago} ago)"
    if run.status == "failed":
        error = json.loads(run.detail or "{}").get("error")
        return f"failed: {error}" if error else "failed"
    return run.status


def failing_feeds(conn: Connection, limit: int = 50) -> list:
    return list(
        conn.execute(
            select(Feed.__table__)
            .where(Feed.consecutive_failures > 0)
            .order_by(Feed.consecutive_failures.desc(), Feed.url)
            .limit(limit)
        ).all()
    )


def feeds_overview(conn: Connection) -> dict[str, int]:
    total = conn.execute(select(func.count()).select_from(Feed)).scalar_one()
    failing = conn.execute(select(func.count()).select_from(Feed).where(Feed.consecutive_failures > 0)).scalar_one()
    return {"feeds": total, "failing": failing}


def open_failures(conn: Connection, limit: int = 50) -> list:
    return list(
        conn.execute(
            select(FailureRow.__table__)
            .where(FailureRow.resolved_at.is_(None))
            .order_by(FailureRow.last_failed_at.desc())
            .limit(limit)
        ).all()
    )


def open_failure_count(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(FailureRow.kind, FailureRow.gave_up, func.count())
        .where(FailureRow.resolved_at.is_(None))
        .group_by(FailureRow.kind, FailureRow.gave_up)
    ).all()
    return {f"{kind}{' (gave up)' if gave_up else ''}": n for kind, gave_up, n in rows}

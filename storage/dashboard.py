"""Read-only queries behind the dashboard. Aggregation and pagination happen in SQL, so pages stay
fast with hundreds of thousands of claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, func, literal, or_, select

from storage.clock import database_now
from storage.models import ArticleRow, ClaimRow, FailureRow, Feed, QuantityRow, RunRow
from storage.queries import run_state
from storage.types import UTCDateTime

PAGE_SIZE = 50


def bucket(conn: Connection, column, period: str):
    """The start of the day or week a timestamp falls in, as a sortable string, on either backend."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.date_trunc(period, column), "YYYY-MM-DD")
    if period == "week":
        return func.date(column, "weekday 0", "-6 days")
    return func.date(column)


@dataclass(frozen=True)
class ClaimFilter:
    q: str | None = None
    claimant: str | None = None
    verification: str | None = None
    outlet: str | None = None
    origin: str | None = None
    article_id: int | None = None

    def conditions(self):
        out = []
        if self.q:
            like = f"%{self.q.lower()}%"
            out.append(
                or_(func.lower(ClaimRow.text).like(like), func.lower(func.coalesce(ClaimRow.claimant, "")).like(like))
            )
        if self.claimant == "(outlet)":
            out.append(ClaimRow.claimant.is_(None))
        elif self.claimant:
            out.append(ClaimRow.claimant == self.claimant)
        if self.verification:
            out.append(ClaimRow.verification == self.verification)
        if self.outlet:
            out.append(ArticleRow.outlet == self.outlet)
        if self.origin:
            out.append(ArticleRow.origin == self.origin)
        if self.article_id:
            out.append(ClaimRow.article_id == self.article_id)
        return out


def claims_over_time(conn: Connection, period: str = "week") -> list[dict]:
    when = bucket(conn, ArticleRow.published_at, period)
    rows = conn.execute(
        select(when.label("bucket"), ClaimRow.verification, ArticleRow.origin, func.count())
        .join(ArticleRow, ArticleRow.id == ClaimRow.article_id)
        .where(ArticleRow.published_at.is_not(None))
        .group_by(when, ClaimRow.verification, ArticleRow.origin)
        .order_by(when)
    ).all()
    return [{"bucket": str(b), "verification": v, "seed": origin == "seed", "count": n} for b, v, origin, n in rows]


def undated_claims(conn: Connection) -> int:
    return conn.execute(
        select(func.count())
        .select_from(ClaimRow)
        .join(ArticleRow, ArticleRow.id == ClaimRow.article_id)
        .where(ArticleRow.published_at.is_(None))
    ).scalar_one()


def top_claimants(conn: Connection, limit: int = 15) -> list[tuple[str, int, datetime | None]]:
    last = func.max(ArticleRow.published_at)
    rows = conn.execute(
        select(ClaimRow.claimant, func.count().label("n"), last)
        .join(ArticleRow, ArticleRow.id == ClaimRow.article_id)
        .where(ClaimRow.claimant.is_not(None))
        .group_by(ClaimRow.claimant)
        .order_by(func.count().desc(), ClaimRow.claimant)
        .limit(limit)
    ).all()
    return [
        (c, n, UTCDateTime().process_result_value(d, conn.dialect) if isinstance(d, str) else d) for c, n, d in rows
    ]


def counted_groups(conn: Connection, limit: int = 12) -> list[tuple[str, int]]:
    return [
        tuple(r)
        for r in conn.execute(
            select(QuantityRow.counted, func.count())
            .where(QuantityRow.counted.is_not(None))
            .group_by(QuantityRow.counted)
            .order_by(func.count().desc(), QuantityRow.counted)
            .limit(limit)
        ).all()
    ]


def quantities_for(conn: Connection, counted: str, limit: int = 500) -> list:
    return conn.execute(
        select(
            QuantityRow.value,
            QuantityRow.unit,
            QuantityRow.text.label("quantity_text"),
            ClaimRow.claimant,
            ClaimRow.id.label("claim_id"),
            ClaimRow.verification,
            ArticleRow.published_at,
            ArticleRow.id.label("article_id"),
            ArticleRow.origin,
            ArticleRow.outlet,
        )
        .join(ClaimRow, ClaimRow.id == QuantityRow.claim_id)
        .join(ArticleRow, ArticleRow.id == ClaimRow.article_id)
        .where(QuantityRow.counted == counted)
        .order_by(ArticleRow.published_at.is_(None), ArticleRow.published_at.desc(), QuantityRow.id.desc())
        .limit(limit)
    ).all()


def claims_page(conn: Connection, flt: ClaimFilter, page: int = 1, page_size: int = PAGE_SIZE) -> tuple[list, int]:
    conditions = flt.conditions()
    base = (
        select(ClaimRow.id)
        .join(ArticleRow, ArticleRow.id == ClaimRow.article_id)
        .where(and_(literal(True), *conditions))
    )
    total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = conn.execute(
        select(
            ClaimRow.id,
            ClaimRow.text,
            ClaimRow.claimant,
            ClaimRow.cue,
            ClaimRow.verification,
            ClaimRow.article_id,
            ArticleRow.title,
            ArticleRow.url,
            ArticleRow.outlet,
            ArticleRow.published_at,
            ArticleRow.origin,
        )
        .join(ArticleRow, ArticleRow.id == ClaimRow.article_id)
        .where(and_(literal(True), *conditions))
        .order_by(ArticleRow.published_at.is_(None), ArticleRow.published_at.desc(), ClaimRow.id.desc())
        .limit(page_size)
        .offset(max(0, page - 1) * page_size)
    ).all()
    return rows, total


def outlets(conn: Connection, limit: int = 100) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            select(ArticleRow.outlet)
            .where(ArticleRow.outlet.is_not(None))
            .group_by(ArticleRow.outlet)
            .order_by(func.count().desc())
            .limit(limit)
        )
    ]


def article(conn: Connection, article_id: int):
    return conn.execute(select(ArticleRow.__table__).where(ArticleRow.id == article_id)).first()


def article_claims(conn: Connection, article_id: int) -> list:
    return conn.execute(
        select(ClaimRow.__table__).where(ClaimRow.article_id == article_id).order_by(ClaimRow.start_char)
    ).all()


def claim_quantities(conn: Connection, claim_ids: list[int]) -> dict[int, list]:
    if not claim_ids:
        return {}
    out: dict[int, list] = {}
    for row in conn.execute(
        select(QuantityRow.__table__)
        .where(QuantityRow.claim_id.in_(claim_ids))
        .order_by(QuantityRow.claim_id, QuantityRow.ordinal)
    ):
        out.setdefault(row.claim_id, []).append(row)
    return out


def health(conn: Connection) -> dict:
    now = database_now(conn)  # the clock the runs' heartbeats were written by
    runs = [
        {**run._mapping, "state": run_state(run, now)}
        for run in conn.execute(select(RunRow.__table__).order_by(RunRow.id.desc()).limit(10))
    ]
    failing = conn.execute(
        select(Feed.__table__).where(Feed.consecutive_failures > 0).order_by(Feed.consecutive_failures.desc()).limit(20)
    ).all()
    waiting = conn.execute(
        select(FailureRow.__table__)
        .where(FailureRow.resolved_at.is_(None), FailureRow.gave_up == 0)
        .order_by(FailureRow.next_retry_at)
        .limit(20)
    ).all()
    waiting_total = conn.execute(
        select(func.count()).select_from(FailureRow).where(FailureRow.resolved_at.is_(None), FailureRow.gave_up == 0)
    ).scalar_one()
    return {"runs": runs, "failing_feeds": failing, "waiting": waiting, "waiting_total": waiting_total}


def totals(conn: Connection) -> dict:
    return {
        "articles": conn.execute(select(func.count()).select_from(ArticleRow)).scalar_one(),
        "claims": conn.execute(select(func.count()).select_from(ClaimRow)).scalar_one(),
        "claimants": conn.execute(select(func.count(func.distinct(ClaimRow.claimant)))).scalar_one(),
        "quantities": conn.execute(select(func.count()).select_from(QuantityRow)).scalar_one(),
    }

"""Idempotent writes. Unique constraints decide what exists; ``ON CONFLICT DO NOTHING`` makes a
second write (or a second process writing at the same time) a no-op on both SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from extractors.records import Article, Claim
from storage.models import ArticleRow, ClaimRow, QuantityRow
from storage.types import utcnow


def dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT for ``table`` in this connection's dialect, which has ``on_conflict_do_*``."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], conflict: Sequence[str]) -> int:
    """Insert rows, skipping those that collide on the ``conflict`` columns. Returns rows inserted."""
    if not rows:
        return 0
    # RETURNING counts what was really inserted; rowcount is unreliable for executemany on some drivers.
    stmt = (
        dialect_insert(conn, table)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(*[table.c[name] for name in conflict])
    )
    return len(conn.execute(stmt, list(rows)).all())


def insert_ignore_returning_id(
    conn: Connection, table: Table, row: dict[str, Any], conflict: Sequence[str]
) -> tuple[int, bool]:
    """Insert one row unless it exists; return (id, created). The loser of a race gets the winner's id."""
    stmt = dialect_insert(conn, table).on_conflict_do_nothing(index_elements=list(conflict)).returning(table.c.id)
    new_id = conn.execute(stmt, row).scalar()
    if new_id is not None:
        return new_id, True
    where = [table.c[name] == row[name] for name in conflict]
    return conn.execute(select(table.c.id).where(*where)).scalar_one(), False


def store_article(
    conn: Connection,
    article: Article,
    *,
    origin: str,
    content_hash: str,
    simhash: int | None,
    feed_id: int | None = None,
    outlet: str | None = None,
    feed_published_at=None,
    fetched_at=None,
    duplicate_of: int | None = None,
    relevance: float | None = None,
) -> tuple[int, bool]:
    row = {
        "url": article.url,
        "canonical_url": article.canonical_url,
        "origin": origin,
        "feed_id": feed_id,
        "outlet": outlet or article.site_name,
        "title": article.title,
        "author": article.author,
        "text": article.text,
        "content_hash": content_hash,
        "simhash": simhash,
        "published_at": article.published_at,
        "published_source": article.published_source,
        "feed_published_at": feed_published_at,
        "page_published_at": article.page_published_at,
        "fetched_at": fetched_at,
        "language": article.language,
        "word_count": article.word_count,
        "extraction_method": article.method,
        "duplicate_of": duplicate_of,
        "relevance": relevance,
        "created_at": utcnow(),
    }
    return insert_ignore_returning_id(conn, ArticleRow.__table__, row, ["canonical_url"])


def replace_claims(conn: Connection, article_id: int, claims: Iterable[Claim], extractor_version: str) -> int:
    """Swap an article's claims for a new extractor version inside the caller's transaction.

    Called in one transaction per article, so a dashboard sees the old set or the new one, never half.
    Returns the number of claims written.
    """
    conn.execute(
        delete(ClaimRow).where(ClaimRow.article_id == article_id, ClaimRow.extractor_version != extractor_version)
    )
    claims = list(claims)
    claim_table, qty_table = ClaimRow.__table__, QuantityRow.__table__
    rows = [
        {
            "article_id": article_id,
            "extractor_version": extractor_version,
            "start_char": claim.start,
            "end_char": claim.end,
            "text": claim.text,
            "claimant": claim.claimant,
            "cue": claim.cue,
            "verification": claim.verification,
            "entities": json.dumps(list(claim.entities)),
        }
        for claim in claims
    ]
    written = 0
    if rows:
        # One multi-row INSERT … RETURNING for the claims and one for their quantities: a round trip per
        # article, not per claim. Rows that already exist (a second writer) come back as nothing.
        stmt = (
            dialect_insert(conn, claim_table)
            .on_conflict_do_nothing(index_elements=["article_id", "extractor_version", "start_char", "end_char"])
            .returning(claim_table.c.id, claim_table.c.start_char, claim_table.c.end_char)
        )
        created = {(r.start_char, r.end_char): r.id for r in conn.execute(stmt, rows)}
        written = len(created)
        quantities = [
            {
                "claim_id": created[(c.start, c.end)],
                "ordinal": i,
                "value": q.value,
                "unit": q.unit,
                "counted": q.counted,
                "text": q.text,
            }
            for c in claims
            if (c.start, c.end) in created
            for i, q in enumerate(c.quantities)
        ]
        insert_ignore(conn, qty_table, quantities, ["claim_id", "ordinal"])
    conn.execute(update(ArticleRow).where(ArticleRow.id == article_id).values(claims_version=extractor_version))
    return written

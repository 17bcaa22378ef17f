"""Storing processed articles: exact and near-duplicate detection, the article row, its claims."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from extractors.dedup import NEAR_DUPLICATE_DISTANCE, hamming, simhash_blocks, simhash_probes
from extractors.records import ProcessedArticle
from storage.models import ArticleRow, SimhashBand
from storage.writes import insert_ignore, replace_claims, store_article


@dataclass(frozen=True)
class StoredArticle:
    article_id: int
    created: bool
    duplicate_of: int | None
    claims_written: int


def find_duplicate(conn: Connection, content_hash: str, simhash: int) -> int | None:
    """The earliest stored article with the same content or a simhash within the near-duplicate distance."""
    exact = conn.execute(
        select(ArticleRow.id).where(ArticleRow.content_hash == content_hash).order_by(ArticleRow.id).limit(1)
    ).scalar()
    if exact is not None:
        return exact
    # Candidates are judged from the covering index; ``articles`` is read only for the few that are near.
    distances: dict[int, int] = {}
    for article_id, other in near_duplicate_candidates(conn, simhash):
        distance = hamming(simhash, other)
        if distance <= NEAR_DUPLICATE_DISTANCE:
            distances[article_id] = distance
    if not distances:
        return None
    near = conn.execute(select(ArticleRow.id, ArticleRow.duplicate_of).where(ArticleRow.id.in_(distances)))
    return min((distances[article_id], duplicate_of or article_id) for article_id, duplicate_of in near)[1]


def near_duplicate_candidates(conn: Connection, simhash: int) -> list[tuple[int, int]]:
    """(article_id, simhash) of every stored article within one bit of ``simhash`` in some 16-bit block:
    all its near duplicates, and about one unrelated article in 964 (see extractors.dedup)."""
    from sqlalchemy import and_, or_

    probes = simhash_probes(simhash)
    query = select(SimhashBand.article_id, SimhashBand.simhash).where(
        or_(*[and_(SimhashBand.band == block, SimhashBand.value.in_(keys)) for block, keys in enumerate(probes)])
    )
    return [(article_id, other) for article_id, other in conn.execute(query)]


def simhash_index_rows(article_id: int, simhash: int) -> list[dict]:
    """The rows that make an article findable as a near duplicate: one per 16-bit block."""
    return [
        {"article_id": article_id, "band": block, "value": value, "simhash": simhash}
        for block, value in enumerate(simhash_blocks(simhash))
    ]


def save_processed(conn: Connection, processed: ProcessedArticle, *, feed_id: int | None = None) -> StoredArticle:
    """Store one article and its claims in the caller's transaction; idempotent on canonical URL."""
    article = processed.article
    existing = conn.execute(
        select(ArticleRow.id, ArticleRow.duplicate_of).where(ArticleRow.canonical_url == article.canonical_url)
    ).first()
    if existing is not None:
        return StoredArticle(existing.id, False, existing.duplicate_of, 0)
    duplicate_of = find_duplicate(conn, processed.content_hash, processed.simhash)
    article_id, created = store_article(
        conn,
        article,
        origin=processed.origin,
        content_hash=processed.content_hash,
        simhash=processed.simhash,
        feed_id=feed_id,
        outlet=processed.outlet,
        feed_published_at=processed.feed_published_at,
        fetched_at=processed.fetched_at,
        duplicate_of=duplicate_of,
        relevance=processed.relevance,
    )
    if not created:  # another writer stored the same canonical URL a moment ago
        return StoredArticle(article_id, False, duplicate_of, 0)
    insert_ignore(
        conn, SimhashBand.__table__, simhash_index_rows(article_id, processed.simhash), ["article_id", "band"]
    )
    written = 0
    # Claims of a duplicate are the original's claims: storing them twice would count a story twice.
    if duplicate_of is None and processed.claims is not None and processed.claims_version:
        written = replace_claims(conn, article_id, processed.claims, processed.claims_version)
    return StoredArticle(article_id, True, duplicate_of, written)

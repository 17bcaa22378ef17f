"""Tables. Alembic owns the schema (storage/migrations); these models describe it for queries.

The public contract for dashboards is the set of views (v_articles, v_claims, v_quantities, v_runs),
not these tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Feed(Base):
    """A feed and its polling state (as Media Cloud's rss-fetcher keeps it, one row per feed)."""

    __tablename__ = "feeds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    name: Mapped[str | None] = mapped_column(String(512))
    tags: Mapped[str | None] = mapped_column(Text)  # JSON list
    poll_interval_s: Mapped[int] = mapped_column(Integer, default=900)
    etag: Mapped[str | None] = mapped_column(String(1024))
    last_modified: Mapped[str | None] = mapped_column(String(256))
    body_hash: Mapped[str | None] = mapped_column(String(64))
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(64))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    items_seen: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FeedEntry(Base):
    """Items already seen in a feed; identity is the GUID, else the canonical URL."""

    __tablename__ = "feed_entries"
    __table_args__ = (UniqueConstraint("feed_id", "entry_key", name="uq_feed_entries_feed_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    entry_key: Mapped[str] = mapped_column(String(2048))
    url: Mapped[str] = mapped_column(String(2048))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QueuedUrl(Base):
    """Durable work list of article URLs: a crash leaves rows 'pending' for the next run to take."""

    __tablename__ = "fetch_queue"
    # Claims read one status at a time in id order (storage/queue.py): the index hands them over sorted.
    __table_args__ = (Index("ix_fetch_queue_status_id", "status", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url_key: Mapped[str] = mapped_column(String(2048), unique=True)  # canonical URL
    url: Mapped[str] = mapped_column(String(2048))
    origin: Mapped[str] = mapped_column(String(16))  # 'feed' | 'backfill'
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="SET NULL"))
    title: Mapped[str | None] = mapped_column(Text)
    feed_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|fetching|done|duplicate|failed|gave_up
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id", ondelete="SET NULL"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ArticleRow(Base):
    __tablename__ = "articles"
    __table_args__ = (Index("ix_articles_published_at", "published_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    canonical_url: Mapped[str] = mapped_column(String(2048), unique=True)
    origin: Mapped[str] = mapped_column(String(16))  # 'seed' | 'feed' | 'backfill'
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="SET NULL"))
    outlet: Mapped[str | None] = mapped_column(String(512))
    title: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    simhash: Mapped[int | None] = mapped_column(BigInteger)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_source: Mapped[str | None] = mapped_column(String(16))
    feed_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    page_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    language: Mapped[str | None] = mapped_column(String(16))
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    extraction_method: Mapped[str | None] = mapped_column(String(32))
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("articles.id", ondelete="SET NULL"))
    relevance: Mapped[float | None] = mapped_column(Float)
    claims_version: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClaimRow(Base):
    __tablename__ = "claims"
    __table_args__ = (
        UniqueConstraint("article_id", "extractor_version", "start_char", "end_char", name="uq_claims_article_span"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    extractor_version: Mapped[str] = mapped_column(String(32))
    start_char: Mapped[int] = mapped_column(Integer)
    end_char: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    claimant: Mapped[str | None] = mapped_column(String(512), index=True)
    cue: Mapped[str | None] = mapped_column(String(128))
    verification: Mapped[str] = mapped_column(String(16))
    entities: Mapped[str | None] = mapped_column(Text)  # JSON list


class QuantityRow(Base):
    __tablename__ = "claim_quantities"
    __table_args__ = (UniqueConstraint("claim_id", "ordinal", name="uq_claim_quantities_claim_ordinal"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(64))
    counted: Mapped[str | None] = mapped_column(String(256))
    text: Mapped[str] = mapped_column(Text)


class RunRow(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # 'ingest' | 'backfill' | 'reprocess' | 'seed'
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    feeds_polled: Mapped[int] = mapped_column(Integer, default=0)
    feeds_not_modified: Mapped[int] = mapped_column(Integer, default=0)
    feeds_failed: Mapped[int] = mapped_column(Integer, default=0)
    articles_new: Mapped[int] = mapped_column(Integer, default=0)
    articles_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    articles_failed: Mapped[int] = mapped_column(Integer, default=0)
    claims_new: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)
    # host:pid of the process running it (storage/owners.py): a run whose process is gone without
    # finishing it (killed, out of memory) is closed as failed by the next run on its host.
    owner: Mapped[str | None] = mapped_column(String(128))
    # When its process last said it was alive (storage/runs.py::RunHeartbeat): how a run whose machine
    # stopped is told from one in progress when its process cannot be checked from here.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FailureRow(Base):
    """One row per failing feed or URL: stage, last error, attempts and when to try again."""

    __tablename__ = "failures"
    __table_args__ = (UniqueConstraint("kind", "target", name="uq_failures_kind_target"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # 'feed' | 'url'
    target: Mapped[str] = mapped_column(String(2048))
    stage: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    gave_up: Mapped[int] = mapped_column(Integer, default=0)


class Lease(Base):
    """Named run leases: how overlapping scheduled runs detect each other across processes."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SimhashBand(Base):
    """Each article's simhash under its four 16-bit blocks (``band`` 0-3, lowest bits first), indexed so
    near-duplicate candidates are found in SQL (probed within one bit: extractors/dedup.py).

    Each row repeats the whole simhash and the index covers it, so candidates are judged without reading
    ``articles`` (on SQLite its simhash sits behind the text's overflow pages)."""

    __tablename__ = "article_simhash_bands"
    __table_args__ = (Index("ix_article_simhash_bands_lookup", "band", "value", "simhash", "article_id"),)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    band: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    simhash: Mapped[int] = mapped_column(BigInteger)

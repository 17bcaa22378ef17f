"""Typed records passed between the pipeline's stages.

Every record is small and immutable; failures are records too, so one bad page never sinks a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of a feed, identified by its GUID or, failing that, its canonical URL."""

    feed_url: str
    url: str
    canonical_url: str
    guid: str | None
    title: str | None
    published_at: datetime | None
    summary: str | None = None

    @property
    def key(self) -> str:
        """Identity of the item within its feed: the GUID when the feed gives one, else the URL."""
        return self.guid or self.canonical_url


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What the feed stage makes of one response body."""

    items: list[FeedItem]
    title: str | None
    bozo: bool
    bozo_message: str | None
    version: str | None


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched HTTP resource: what the server said and the body it sent."""

    url: str
    final_url: str
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime
    headers: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        from extractors.article import decode_html

        return decode_html(self.body, self.content_type)


@dataclass(frozen=True, slots=True)
class Article:
    """The main text and metadata extracted from one page."""

    url: str
    canonical_url: str
    title: str | None
    text: str
    author: str | None
    site_name: str | None
    language: str | None
    published_at: datetime | None
    published_source: str | None  # 'feed' | 'page' | 'manifest' | None
    page_published_at: datetime | None
    method: str  # which extractor produced the text

    @property
    def word_count(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True, slots=True)
class Quantity:
    value: float
    unit: str | None
    counted: str | None
    text: str

    def as_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit, "counted": self.counted, "text": self.text}


@dataclass(frozen=True, slots=True)
class Claim:
    """A checkable statement in a text. ``text == source_text[start:end]`` always."""

    text: str
    start: int
    end: int
    claimant: str | None
    cue: str | None
    verification: str  # 'asserted' | 'hedged' | 'unverified' | 'denied'
    quantities: tuple[Quantity, ...] = ()
    entities: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "claimant": self.claimant,
            "cue": self.cue,
            "verification": self.verification,
            "quantities": [q.as_dict() for q in self.quantities],
            "entities": list(self.entities),
        }


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed stage for one feed or URL; stored, counted and retried later."""

    kind: str  # 'feed' | 'url'
    target: str
    stage: str  # 'poll' | 'parse' | 'fetch' | 'extract' | 'claims' | 'store'
    error: str
    retry_after_s: float | None = None
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class ProcessedArticle:
    """An article ready to store: text, identity signatures, relevance and (if relevant) claims."""

    article: Article
    content_hash: str
    simhash: int
    relevance: float
    claims: tuple[Claim, ...] | None  # None: not extracted (below the relevance threshold)
    claims_version: str | None
    origin: str
    feed_url: str | None = None
    feed_published_at: datetime | None = None
    fetched_at: datetime | None = None
    outlet: str | None = None

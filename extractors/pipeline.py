"""The pure middle of the pipeline: pages (or plain texts) → ProcessedArticles, streamed.

A batch's texts go through the NLP model as one stream (paragraphs batched by tokens) and each
article comes out as soon as its claims are found; a page that fails any stage becomes a Failure
record and the rest of the batch goes on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import chain
from typing import TypeVar

from extractors.article import ExtractionError, extract_article
from extractors.claims import ClaimExtractor
from extractors.dedup import content_hash, simhash
from extractors.records import Article, Claim, Failure, Page, ProcessedArticle
from extractors.relevance import TopicModel

HTML_TYPES = ("text/html", "application/xhtml+xml")
K = TypeVar("K")


@dataclass(frozen=True)
class PageJob:
    """A fetched page with what the queue knew about it."""

    page: Page
    origin: str
    feed_url: str | None = None
    feed_title: str | None = None
    feed_published_at: datetime | None = None


def _article_from_page(job: PageJob, now: datetime) -> Article:
    page = job.page
    ctype = page.content_type.split(";")[0].strip().lower()
    if ctype and ctype not in HTML_TYPES:
        raise ExtractionError(f"not an HTML page: {ctype}")
    return extract_article(
        page.text(),
        page.final_url or page.url,
        feed_published_at=job.feed_published_at,
        feed_title=job.feed_title,
        now=now,
    )


def stream_pages(
    jobs: Iterable[PageJob],
    *,
    topic: TopicModel | None,
    claims: ClaimExtractor | None,
    relevance_threshold: float,
    now: datetime | None = None,
) -> Iterator[tuple[int, ProcessedArticle | Failure]]:
    """(job number, result) for each page, in order, each as soon as it is done.

    Pages are extracted as the model needs their text and each result comes out before later pages'
    claims are parsed, so a worker that stores each result as it comes never holds a batch's pages,
    texts and claims all at once.
    """
    now = now or datetime.now(UTC)
    return _stream_with_claims((_stage_page(job, topic, now) for job in jobs), claims, relevance_threshold)


def process_pages(
    jobs: Sequence[PageJob],
    *,
    topic: TopicModel | None,
    claims: ClaimExtractor | None,
    relevance_threshold: float,
    now: datetime | None = None,
) -> list[ProcessedArticle | Failure]:
    """Every page's result, in order (``stream_pages`` collected)."""
    stream = stream_pages(jobs, topic=topic, claims=claims, relevance_threshold=relevance_threshold, now=now)
    return [result for _, result in stream]


def _stage_page(job: PageJob, topic: TopicModel | None, now: datetime) -> ProcessedArticle | Failure:
    """A page's text, metadata and signatures (no claims yet), or the Failure that stopped it."""
    try:
        article = _article_from_page(job, now)
    except ExtractionError as exc:
        return Failure("url", job.page.url, "extract", str(exc), permanent=True)
    except Exception as exc:  # an extractor bug on one page must not sink the batch
        return Failure("url", job.page.url, "extract", f"{type(exc).__name__}: {exc}")
    if job.page.final_url != job.page.url and article.canonical_url == job.page.url:
        article = replace(article, url=job.page.url)
    return _signatures(
        article,
        topic,
        origin=job.origin,
        feed_url=job.feed_url,
        feed_published_at=job.feed_published_at,
        fetched_at=job.page.fetched_at,
    )


def process_texts(
    articles: Sequence[Article],
    *,
    origin: str,
    topic: TopicModel | None,
    claims: ClaimExtractor | None,
    relevance_threshold: float,
    outlets: Sequence[str | None] | None = None,
) -> list[ProcessedArticle | Failure]:
    """Plain-text articles (the seed corpus) through the same signatures, relevance and claims."""
    staged = (
        _signatures(article, topic, origin=origin, outlet=outlets[index] if outlets else None)
        for index, article in enumerate(articles)
    )
    return [result for _, result in _stream_with_claims(staged, claims, relevance_threshold)]


def _signatures(
    article: Article,
    topic: TopicModel | None,
    *,
    origin: str,
    feed_url: str | None = None,
    feed_published_at: datetime | None = None,
    fetched_at: datetime | None = None,
    outlet: str | None = None,
) -> ProcessedArticle:
    return ProcessedArticle(
        article=article,
        content_hash=content_hash(article.text),
        simhash=simhash(article.text),
        relevance=topic.score(article.text, article.title) if topic else 1.0,
        claims=None,
        claims_version=None,
        origin=origin,
        feed_url=feed_url,
        feed_published_at=feed_published_at,
        fetched_at=fetched_at,
        outlet=outlet,
    )


def _stream_with_claims(
    staged: Iterable[ProcessedArticle | Failure], claims: ClaimExtractor | None, threshold: float
) -> Iterator[tuple[int, ProcessedArticle | Failure]]:
    """(number, result) in input order: relevant articles get their claims (all of them through one
    model stream), the rest pass through as they are."""
    finished: dict[int, ProcessedArticle | Failure] = {}  # done, waiting for an earlier one to be done
    drawn: dict[int, ProcessedArticle] = {}  # given to the model, claims not out yet
    following = 0

    def texts() -> Iterator[tuple[int, str]]:
        for number, item in enumerate(staged):
            if claims is not None and isinstance(item, ProcessedArticle) and item.relevance >= threshold:
                drawn[number] = item
                yield number, item.article.text
            else:
                finished[number] = item

    def ready() -> Iterator[tuple[int, ProcessedArticle | Failure]]:
        nonlocal following
        while following in finished:
            yield following, finished.pop(following)
            following += 1

    if claims is None:
        for _ in texts():  # nothing goes to a model: this only stages every item
            pass
    else:
        for number, found in claims_stream(claims, texts()):
            processed = drawn.pop(number)
            if isinstance(found, Exception):
                error = f"{type(found).__name__}: {found}"
                finished[number] = Failure("url", processed.article.url, "claims", error)
            else:
                finished[number] = replace(processed, claims=tuple(found), claims_version=claims.version)
            yield from ready()
    yield from ready()


class _SourceError(Exception):
    """An error raised by the iterable of texts itself, not by the extractor: passed on, never retried."""


def claims_stream(
    claims: ClaimExtractor, texts: Iterable[tuple[K, str]]
) -> Iterator[tuple[K, list[Claim] | Exception]]:
    """(key, claims) for each (key, text), in order, as the model finishes each text. If a text breaks
    the extractor, the texts the stream held are done again one at a time, so only that text gets its
    exception (an extractor bug on one article must not sink the batch), and the rest go on one by one."""
    source = iter(texts)
    held: deque[tuple[K, str]] = deque()

    def feed() -> Iterator[str]:
        try:
            for key, text in source:
                held.append((key, text))
                yield text
        except Exception as exc:
            raise _SourceError from exc

    try:
        for found in claims.extract_each(feed()):
            key, _ = held.popleft()
            yield key, found
    except _SourceError as exc:
        raise exc.__cause__ from None
    except Exception:
        for key, text in chain(list(held), source):
            yield key, _claims_or_exception(claims, text)


def claims_per_text(claims: ClaimExtractor, texts: Sequence[str]) -> list[list[Claim] | Exception]:
    """Claims for each text, in one stream; a text that breaks the extractor gets its exception."""
    return [found for _, found in claims_stream(claims, enumerate(texts))]


def _claims_or_exception(claims: ClaimExtractor, text: str) -> list[Claim] | Exception:
    try:
        # extract_many, the one method every extractor has (the workers' locked wrapper has no extract)
        return claims.extract_many([text])[0]
    except Exception as exc:
        return exc

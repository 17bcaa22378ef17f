"""The pure middle of the pipeline: pages (or plain texts) → ProcessedArticles, in batches.

Claims for a whole batch go through the NLP model in one ``pipe`` call; a page that fails any
stage becomes a Failure record and the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from extractors.article import ExtractionError, extract_article
from extractors.claims import ClaimExtractor
from extractors.dedup import content_hash, simhash
from extractors.records import Article, Claim, Failure, Page, ProcessedArticle
from extractors.relevance import TopicModel

HTML_TYPES = ("text/html", "application/xhtml+xml")


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


def process_pages(
    jobs: Sequence[PageJob],
    *,
    topic: TopicModel | None,
    claims: ClaimExtractor | None,
    relevance_threshold: float,
    now: datetime | None = None,
) -> list[ProcessedArticle | Failure]:
    now = now or datetime.now(UTC)
    staged: list[tuple[int, ProcessedArticle]] = []
    results: list[ProcessedArticle | Failure | None] = [None] * len(jobs)
    for index, job in enumerate(jobs):
        try:
            article = _article_from_page(job, now)
        except ExtractionError as exc:
            results[index] = Failure("url", job.page.url, "extract", str(exc), permanent=True)
            continue
        except Exception as exc:  # an extractor bug on one page must not sink the batch
            results[index] = Failure("url", job.page.url, "extract", f"{type(exc).__name__}: {exc}")
            continue
        if job.page.final_url != job.page.url and article.canonical_url == job.page.url:
            article = replace(article, url=job.page.url)
        staged.append(
            (
                index,
                _signatures(
                    article,
                    topic,
                    origin=job.origin,
                    feed_url=job.feed_url,
                    feed_published_at=job.feed_published_at,
                    fetched_at=job.page.fetched_at,
                ),
            )
        )
    return _with_claims(results, staged, claims, relevance_threshold)


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
    staged = []
    for index, article in enumerate(articles):
        processed = _signatures(article, topic, origin=origin)
        if outlets:
            processed = replace(processed, outlet=outlets[index])
        staged.append((index, processed))
    return _with_claims([None] * len(articles), staged, claims, relevance_threshold)


def _signatures(
    article: Article,
    topic: TopicModel | None,
    *,
    origin: str,
    feed_url: str | None = None,
    feed_published_at: datetime | None = None,
    fetched_at: datetime | None = None,
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
    )


def _with_claims(results, staged, claims: ClaimExtractor | None, threshold: float):
    wanted = [(i, p) for i, p in staged if claims is not None and p.relevance >= threshold]
    if wanted:
        extracted = claims_per_text(claims, [p.article.text for _, p in wanted])
        for (index, processed), found in zip(wanted, extracted, strict=True):
            if isinstance(found, Exception):
                error = f"{type(found).__name__}: {found}"
                results[index] = Failure("url", processed.article.url, "claims", error)
            else:
                results[index] = replace(processed, claims=tuple(found), claims_version=claims.version)
    for index, processed in staged:
        if results[index] is None:
            results[index] = processed
    return results


def claims_per_text(claims: ClaimExtractor, texts: Sequence[str]) -> list[list[Claim] | Exception]:
    """Claims for each text, in one batch; if a text breaks the extractor, that text gets its exception
    and the others still get their claims (an extractor bug on one article must not sink the batch)."""
    try:
        return claims.extract_many(texts)
    except Exception:
        return [_claims_or_exception(claims, text) for text in texts]


def _claims_or_exception(claims: ClaimExtractor, text: str) -> list[Claim] | Exception:
    try:
        # extract_many, the one method every extractor has (the workers' locked wrapper has no extract)
        return claims.extract_many([text])[0]
    except Exception as exc:
        return exc

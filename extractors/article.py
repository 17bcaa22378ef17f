"""HTML → Article: main text and metadata with trafilatura, readability as a second opinion.

Text selection: trafilatura tuned for precision is the primary; readability-lxml is a second
extractor. When both agree the primary wins; when the primary is empty or clearly truncated
relative to an agreeing second opinion, the second is taken. The method that produced the text
is recorded on the Article.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import UTC, datetime

import trafilatura
from htmldate import find_date
from lxml import html as lxml_html
from trafilatura.metadata import extract_metadata

from extractors.dedup import canonical_url
from extractors.records import Article

logging.getLogger("trafilatura").setLevel(logging.ERROR)
logging.getLogger("readability").setLevel(logging.ERROR)
logging.getLogger("htmldate").setLevel(logging.ERROR)


class _NoUncachedHelperError(logging.Filter):
    """htmldate's ``reset_caches`` clears charset_normalizer helpers by name and logs an ERROR when one
    has no cache: charset_normalizer 3.5 stopped caching ``is_accentuated`` (the last one it tries, so
    the others are cleared first). Nothing is left behind, and the record came once per page."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("impossible to clear cache for function")


logging.getLogger("htmldate.meta").addFilter(_NoUncachedHelperError())

MIN_TEXT_CHARS = 200
_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w-]+)""", re.I)
_WORD = re.compile(r"\w+")


class ExtractionError(ValueError):
    """No usable main text could be extracted from the page."""


def decode_html(body: bytes, content_type: str = "") -> str:
    """Decode HTML bytes: HTTP charset, then <meta charset>, then UTF-8, then cp1252."""
    candidates: list[str] = []
    match = re.search(r"charset=([\w-]+)", content_type or "", re.I)
    if match:
        candidates.append(match.group(1))
    meta = _CHARSET.search(body[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    candidates += ["utf-8", "cp1252"]
    for encoding in candidates:
        try:
            return body.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", errors="replace")


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _shingles(text: str, n: int = 4) -> Counter:
    tokens = _tokens(text)
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)))


def containment(inner: str, outer: str) -> float:
    """Share of ``inner``'s word 4-grams that also occur in ``outer``."""
    a, b = _shingles(inner), _shingles(outer)
    total = sum(a.values())
    if not total:
        return 0.0
    return sum(min(count, b.get(key, 0)) for key, count in a.items()) / total


def _trafilatura_text(tree, *, precision: bool) -> str:
    text = trafilatura.extract(
        tree,
        include_comments=False,
        favor_precision=precision,
        favor_recall=not precision,
    )
    return (text or "").strip()


def _readability_text(html: str) -> str:
    from readability import Document

    try:
        summary = Document(html).summary(html_partial=True)
    except Exception:  # readability raises on degenerate documents
        return ""
    tree = lxml_html.fromstring(summary) if summary.strip() else None
    if tree is None:
        return ""
    blocks = []
    for element in tree.iter("p", "h2", "h3", "h4", "li", "blockquote", "pre"):
        if element.getparent() is not None and element.getparent().tag in ("li", "blockquote"):
            continue
        text = " ".join(element.text_content().split())
        if text:
            blocks.append(text)
    return "\n".join(blocks)


SHORT_PRIMARY_WORDS = 60
LONGER_SECOND_RATIO = 2.0


def choose_text(primary: str, second: str) -> tuple[str, str]:
    """Pick between two extractions of the same page. Returns (text, which).

    Measured on the 181 pages of the article-extraction-benchmark (benchmarks/RESULTS.md): trafilatura
    in precision mode is right on most pages; its two failure modes are (a) next to nothing found and
    (b) an article body split across containers, where it keeps only the first part. Readability
    catches both; elsewhere its extra text is usually boilerplate, so it is not taken.
    """
    primary_words, second_words = len(_tokens(primary)), len(_tokens(second))
    if primary_words < SHORT_PRIMARY_WORDS and second_words > 2 * primary_words:
        return second, "second"
    if second_words > LONGER_SECOND_RATIO * primary_words and containment(primary, second) > 0.9:
        return second, "second"
    return primary, "primary"


def _paragraph_words(tree) -> int:
    return sum(len(_tokens(p.text_content())) for p in tree.iter("p"))


def extract_main_text(html: str) -> tuple[str, str]:
    """Main text of a page and the method that produced it."""
    tree = trafilatura.load_html(html)
    if tree is None:
        raise ExtractionError("not parseable as HTML")
    paragraph_words = _paragraph_words(tree)
    primary = _trafilatura_text(tree, precision=True)
    primary_words = len(_tokens(primary))
    # Readability costs as much as trafilatura; skip it when it cannot change the choice: the page's
    # paragraphs hold too little text for a second opinion twice as long.
    if primary_words >= SHORT_PRIMARY_WORDS and paragraph_words < LONGER_SECOND_RATIO * primary_words * 0.9:
        return primary, "trafilatura"
    text, which = choose_text(primary, _readability_text(html))
    return text, ("trafilatura" if which == "primary" else "readability")


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def page_date(html: str, url: str | None = None, now: datetime | None = None) -> datetime | None:
    """The page's own publication date (htmldate), never in the future."""
    now = now or datetime.now(UTC)
    try:
        found = find_date(
            html,
            url=url,
            original_date=True,
            extensive_search=False,
            outputformat="%Y-%m-%dT%H:%M:%S%z",
            max_date=now.strftime("%Y-%m-%d"),
        )
    except Exception:
        return None
    value = _parse_date(found)
    return value if value and value <= now else None


def forget_page_caches(*, collect_garbage: bool = True) -> None:
    """Empty the caches trafilatura and its helpers keep of what pages contained, then (unless
    ``collect_garbage=False``) collect cyclic garbage: together, trafilatura's own ``reset_caches``.

    htmldate remembers every date string it has parsed, 8,192 per function, and trafilatura every
    paragraph it has cleaned, 1,024 per function; every article brings new ones. Left to fill, a
    worker's memory grew with the articles it had seen (a 10,000-article backfill peaked ~5 MiB above a
    1,000-article one), and even emptied between batches they cost ~5 MiB of a worker's peak: a batch's
    cached strings, spread over the heap, keep whole pages of it resident. ``extract_article`` empties
    them after every page (~0.5 ms); the worker adds the collection once a batch, because with the NLP
    model loaded a full collection takes ~140 ms.
    """
    import gc

    from trafilatura import meta

    # What meta.reset_caches clears, by the names it clears them through (a test checks the two agree).
    meta.define_stoplist.cache_clear()
    meta.reset_caches_htmldate()
    meta.reset_caches_courlan()
    for cached in (
        meta.is_similar_domain,
        meta.line_processing,
        meta.return_printables_and_spaces,
        meta.trim,
        meta._vector_to_add,
    ):
        cached.cache_clear()
    meta.LRU_TEST.clear()
    if collect_garbage:
        gc.collect()


def extract_article(
    html: str,
    url: str,
    *,
    feed_published_at: datetime | None = None,
    feed_title: str | None = None,
    now: datetime | None = None,
) -> Article:
    """Extract an Article from a page. Raises ExtractionError when there is no main text.

    Leaves nothing of the page in trafilatura's and htmldate's caches (see ``forget_page_caches``)."""
    try:
        return _extract_article(html, url, feed_published_at=feed_published_at, feed_title=feed_title, now=now)
    finally:
        forget_page_caches(collect_garbage=False)


def _extract_article(
    html: str,
    url: str,
    *,
    feed_published_at: datetime | None,
    feed_title: str | None,
    now: datetime | None,
) -> Article:
    now = now or datetime.now(UTC)
    text, method = extract_main_text(html)
    if len(text) < MIN_TEXT_CHARS:
        raise ExtractionError(f"no main text found ({len(text)} characters)")
    tree = trafilatura.load_html(html)
    meta = extract_metadata(tree, default_url=url) if tree is not None else None
    page_published = page_date(html, url, now)
    feed_date = feed_published_at if feed_published_at and feed_published_at <= now else None
    # The feed's date is what the publisher announced for this item; the page's date is a fallback.
    if feed_date:
        published, source = feed_date, "feed"
    elif page_published:
        published, source = page_published, "page"
    else:
        published, source = None, None
    page_canonical = getattr(meta, "url", None) if meta else None
    return Article(
        url=url,
        canonical_url=canonical_url(url, page_canonical),
        title=(getattr(meta, "title", None) if meta else None) or feed_title,
        text=text,
        author=getattr(meta, "author", None) if meta else None,
        site_name=getattr(meta, "sitename", None) if meta else None,
        language=_language(tree, text),
        published_at=published,
        published_source=source,
        page_published_at=page_published,
        method=method,
    )


_EN_STOP = frozenset(
    [
        "the",
        "of",
        "and",
        "to",
        "in",
        "a",
        "is",
        "that",
        "for",
        "on",
        "with",
        "as",
        "by",
        "was",
        "said",
        "it",
        "from",
        "at",
        "he",
        "be",
    ]
)


def _language(tree, text: str) -> str | None:
    """Language from <html lang>, else a stop-word check for English (our models are English)."""
    if tree is not None:
        lang = (tree.get("lang") or tree.get("xml:lang") or "").strip().lower()
        if lang:
            return lang.split("-")[0][:8]
    tokens = _tokens(text[:3000])
    if not tokens:
        return None
    share = sum(t in _EN_STOP for t in tokens) / len(tokens)
    return "en" if share > 0.12 else None

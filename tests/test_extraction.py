"""Text extraction and article identity: the fallback chain on realistic pages, dates, canonical URLs,
the extract-text command, and the quality bar on the article-extraction-benchmark pages."""

from __future__ import annotations

import gzip
import json
import logging
import random
import sys
from datetime import UTC, datetime

import pytest

from extractors.article import (
    ExtractionError,
    _extract_article,
    choose_text,
    extract_article,
    forget_page_caches,
)
from extractors.dedup import canonical_url, content_hash, hamming, simhash, simhash_blocks, simhash_probes
from tests.conftest import shared_eval
from tests.fixtures.cli import cli_json_lines
from tests.fixtures.site import article_html, seed_articles

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))


def test_article_from_realistic_page_drops_site_furniture():
    art = seed_articles()[2]
    page = article_html(art, "https://news.example.com")
    article = extract_article(
        page, "https://news.example.com/world/story?utm_source=rss", now=datetime(2026, 11, 22, tzinfo=UTC)
    )
    assert article.title == art.title
    assert article.canonical_url == f"https://news.example.com/{art.slug}"
    assert article.site_name == "The Daily Fixture" and article.language == "en"
    assert article.published_at == art.published and article.published_source == "page"
    first_paragraph = art.body.split("\n")[1]
    assert first_paragraph in article.text
    for furniture in ("Subscribe now", "Related Articles", "Accept all", "All rights reserved", "Share on Facebook"):
        assert furniture not in article.text


def test_extraction_leaves_no_page_in_library_caches(caplog):
    """htmldate keeps every date string it parsed (8,192 per function) and trafilatura every paragraph
    it cleaned (1,024 per function): left to fill, a worker's memory grows with the articles it has seen,
    and even a batch's worth kept ~5 MiB of its heap resident. Each page's entries go with the page,
    without an error logged, and extraction works as before afterwards."""
    from htmldate.extractors import try_date_expr
    from trafilatura.utils import line_processing, trim

    art = seed_articles()[0]
    page = article_html(art, "https://news.example.com")
    with caplog.at_level(logging.WARNING):
        first = extract_article(page, f"https://news.example.com/{art.slug}")
        assert [try_date_expr.cache_info().currsize, line_processing.cache_info().currsize] == [0, 0]
        assert trim.cache_info().currsize == 0
        again = extract_article(page, f"https://news.example.com/{art.slug}")
        forget_page_caches()  # the worker's once-a-batch sweep, with its garbage collection
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert again == first and first.published_at is not None
    # The emptiness is the sweep's doing: the extraction alone fills them.
    _extract_article(page, f"https://news.example.com/{art.slug}", feed_published_at=None, feed_title=None, now=None)
    assert try_date_expr.cache_info().currsize > 0 and line_processing.cache_info().currsize > 0
    forget_page_caches(collect_garbage=False)


def test_the_sweep_without_collection_clears_what_trafilatura_clears():
    """``forget_page_caches`` names trafilatura's caches itself, to be able to skip the ~140 ms
    collection; a trafilatura that clears a cache more must not leave that one filling."""
    import inspect

    from trafilatura import meta

    cleared_by_trafilatura = set(meta.reset_caches.__code__.co_names) - {"gc", "collect", "cache_clear", "clear"}
    ours = inspect.getsource(forget_page_caches)
    assert cleared_by_trafilatura and {name for name in cleared_by_trafilatura if f"meta.{name}" not in ours} == set()


def test_feed_date_wins_and_future_dates_are_rejected():
    art = seed_articles()[0]
    page = article_html(art, "https://n.example.com")
    feed_date = datetime(2026, 11, 2, 8, tzinfo=UTC)
    chosen = extract_article(
        page, "https://n.example.com/a", feed_published_at=feed_date, now=datetime(2026, 11, 22, tzinfo=UTC)
    )
    assert chosen.published_at == feed_date and chosen.published_source == "feed"
    assert chosen.page_published_at == art.published
    future = extract_article(
        page.replace("2026-11-01", "2099-11-01"),
        "https://n.example.com/a",
        feed_published_at=datetime(2099, 1, 1, tzinfo=UTC),
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )
    assert future.published_at is None or future.published_at <= datetime(2026, 11, 22, tzinfo=UTC)


def test_split_article_body_falls_back_to_readability():
    paragraphs = [
        f"Paragraph {i} of the report says that recruitment offices in region {i} missed their quota "
        f"again this month, according to local officials who spoke to reporters."
        for i in range(30)
    ]
    first, rest = paragraphs[:6], paragraphs[6:]
    html = (
        "<html><head><title>Split story</title></head><body><nav>Home News Sport</nav>"
        "<article><div class='part1'>" + "".join(f"<p>{p}</p>" for p in first) + "</div></article>"
        "<aside class='ad'>Advertisement</aside><div class='continued'><div class='more'>"
        + "".join(f"<p>{p}</p>" for p in rest)
        + "</div></div><footer>© 2026</footer></body></html>"
    )
    text, which = choose_text(" ".join(first), " ".join(paragraphs))
    assert which == "second" and text.count("Paragraph") == 30
    article = extract_article(html, "https://e.com/split")
    assert article.text.count("Paragraph") >= 24


def test_pages_without_text_are_refused():
    with pytest.raises(ExtractionError):
        extract_article("<html><body><nav>Home</nav><p>Short.</p></body></html>", "https://e.com/x")


def test_canonical_urls_and_signatures():
    assert canonical_url("https://www.Example.com/a/b/?utm_source=x&fbclid=1&id=7#c") == "https://example.com/a/b?id=7"
    assert canonical_url("https://m.example.com/a") == canonical_url("https://example.com/a")
    assert canonical_url("https://e.com/amp/x", page_canonical="https://www.e.com/x") == "https://e.com/x"
    text = " ".join(seed_articles()[1].body.split("\n"))
    assert content_hash(text) == content_hash(text.upper().replace(".", " . "))
    near = simhash(text + " Reporting by the wire service; editing by the desk.")
    assert hamming(simhash(text), near) <= 6
    assert hamming(simhash(text), simhash(" ".join(seed_articles()[3].body.split("\n")))) > 12


def _shares_a_probe(stored: int, new: int) -> bool:
    """Whether a lookup for ``new`` reads an index row of ``stored`` (same block number, probed value)."""
    return any(value in probes for value, probes in zip(simhash_blocks(stored), simhash_probes(new), strict=True))


def test_the_simhash_probes_reach_every_signature_within_seven_bits():
    rng = random.Random(20261129)
    for _ in range(3000):
        stored = rng.getrandbits(64) - (1 << 63)
        flipped = rng.sample(range(64), rng.randint(0, 7))
        assert _shares_a_probe(stored, stored ^ sum(1 << bit for bit in flipped)), flipped
    # The hardest spread within the distance: no block left whole, one of them a single bit off.
    hardest = (1 << 0) | (1 << 9) | (1 << 16) | (1 << 30) | (1 << 33) | (1 << 47) | (1 << 60)
    assert min(simhash_blocks(hardest)) > 0 and _shares_a_probe(-5, -5 ^ hardest)
    # Eight bits, two in every block, is beyond what the index promises, and out of its reach.
    assert not _shares_a_probe(-5, -5 ^ ((0b11 << 3) | (0b11 << 20) | (0b11 << 36) | (0b11 << 50)))
    assert [len(keys) for keys in simhash_probes(-5)] == [17, 17, 17, 17]


def test_extract_text_command(tmp_path):
    art = seed_articles()[0]
    page = tmp_path / "page.html"
    page.write_text(article_html(art, "https://news.example.com"), encoding="utf-8")
    broken = tmp_path / "empty.html"
    broken.write_text("<html></html>")
    rows = cli_json_lines("extract-text", str(page), str(broken))
    assert [r["file"] for r in rows] == [str(page), str(broken)]
    assert set(rows[0]) >= {"file", "title", "text", "author", "published", "language", "method"}
    assert rows[0]["title"] == art.title and rows[0]["method"] in ("trafilatura", "readability")
    assert rows[0]["published"].startswith("2026-11-01") and rows[1]["text"] == "" and rows[1]["error"]


def test_extraction_quality_on_the_benchmark_pages():
    """F1 >= 0.965 on the 181 real pages, scored as the benchmark scores (see benchmarks/RESULTS.md)."""
    from extraction_quality import macro_scores, tp_fp_fn

    from extractors.article import decode_html, extract_main_text

    root = shared_eval("aeb")
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    rows = []
    for key, record in sorted(truth.items()):
        html = decode_html(gzip.decompress((root / "html" / f"{key}.html.gz").read_bytes()))
        text, _ = extract_main_text(html)
        rows.append(tp_fp_fn(record.get("articleBody", ""), text))
    assert len(rows) == 181
    assert macro_scores(rows)["f1"] >= 0.965

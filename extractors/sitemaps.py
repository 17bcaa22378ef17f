"""Sitemap bytes → article URLs (with dates), for backfills. Handles urlsets, sitemap indexes,
Google News sitemaps and gzip-compressed sitemaps."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree


class SitemapError(ValueError):
    pass


@dataclass(frozen=True)
class SitemapEntry:
    url: str
    published_at: datetime | None
    title: str | None = None


@dataclass(frozen=True)
class Sitemap:
    entries: list[SitemapEntry]
    children: list[str]  # nested sitemaps of an index


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    value = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_sitemap(body: bytes) -> Sitemap:
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except OSError as exc:
            raise SitemapError(f"corrupt gzip sitemap: {exc}") from exc
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"not XML: {exc}") from exc
    if root is None or _local(root.tag) not in ("urlset", "sitemapindex"):
        raise SitemapError("not a sitemap (no <urlset> or <sitemapindex>)")
    entries, children = [], []
    for node in root:
        if not isinstance(node.tag, str):
            continue
        fields: dict[str, str] = {}
        for element in node.iter():
            if isinstance(element.tag, str) and element.text:
                fields.setdefault(_local(element.tag), element.text.strip())
        loc = fields.get("loc")
        if not loc or not loc.startswith(("http://", "https://")):
            continue
        if _local(node.tag) == "sitemap":
            children.append(loc)
        elif _local(node.tag) == "url":
            published = _date(fields.get("publication_date")) or _date(fields.get("lastmod"))
            entries.append(SitemapEntry(loc, published, fields.get("title")))
    return Sitemap(entries, children)

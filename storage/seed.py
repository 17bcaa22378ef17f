"""The seed corpus shipped in data/seed_corpus: manifest and texts as Articles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import yaml

from extractors.records import Article

SEED_DIR = Path(__file__).resolve().parents[1] / "data" / "seed_corpus"


@dataclass(frozen=True)
class SeedDocument:
    article: Article
    outlet: str | None


def seed_url(file_name: str) -> str:
    return f"urn:claimwire:seed:{Path(file_name).stem}"


def load_seed_documents(seed_dir: Path = SEED_DIR) -> list[SeedDocument]:
    manifest = yaml.safe_load((seed_dir / "manifest.yaml").read_text(encoding="utf-8"))
    documents = []
    for entry in manifest["articles"]:
        text = (seed_dir / entry["file"]).read_text(encoding="utf-8")
        published = entry.get("published")
        if isinstance(published, date):
            published = datetime(published.year, published.month, published.day, tzinfo=UTC)
        url = seed_url(entry["file"])
        documents.append(
            SeedDocument(
                article=Article(
                    url=url,
                    canonical_url=url,
                    title=entry.get("title"),
                    text=text,
                    author=None,
                    site_name=entry.get("outlet"),
                    language="en",
                    published_at=published,
                    published_source="manifest" if published else None,
                    page_published_at=None,
                    method="seed",
                ),
                outlet=entry.get("outlet"),
            )
        )
    return documents

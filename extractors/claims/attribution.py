"""Who asserts a sentence: reporting cues and their sources, read off the dependency parse.

Patterns: "X said (that) …", "…, X said.", "…, said X, the mayor.", "according to X", "X told Y that …",
"X, head of Y, in a statement said …", "a woman named Anna wrote", "X denied …".
"""

from __future__ import annotations

from dataclasses import dataclass

from spacy.tokens import Span, Token

from extractors.claims.mentions import ORG_NOUNS, PERSON_NOUNS
from extractors.claims.nlp import entities_in
from extractors.claims.quotes import CLOSING_MARKS

# 'dismissed the allegations', 'rejected the claims as lies', 'refuted the report': denials when what is
# rejected is something said (not 'rejected the proposal', 'dismissed the commander').
_REJECT_FORMS = (
    *("dismiss", "dismisses", "dismissed", "dismissing", "reject", "rejects", "rejected", "rejecting"),
    *("refute", "refutes", "refuted", "refuting"),
)
_SAID_THINGS = {
    *("allegation", "allegations", "claim", "claims", "report", "reports", "accusation", "accusations"),
    *("suggestion", "suggestions", "charge", "charges", "story", "stories", "rumour", "rumours", "rumor"),
    *("rumors", "figures", "assertion", "assertions", "statement", "statements", "account", "accounts"),
}
_SAYING_FORMS = (
    *("ruled", "ruling", "joke", "jokes", "joked", "joking", "quip", "quips", "quipped"),
    *("concede", "concedes", "conceded", "conceding", "reiterate", "reiterates", "reiterated", "reiterating"),
    *("repeat", "repeats", "repeated", "repeating", "counter", "counters", "countered", "countering"),
    *("retort", "retorts", "retorted", "boast", "boasts", "boasted", "boasting", "lament", "laments"),
    *("lamented", "lamenting", "caution", "cautions", "cautioned", "cautioning", "recount", "recounts"),
    *("recounted", "recounting", "assure", "assures", "assured", "assuring"),
    *("inform", "informs", "informed", "remark", "remarks", "remarked"),
    *("hint", "hints", "hinted", "hinting", "signal", "signals", "signaled", "signalled", "signaling"),
    *("signalling", "underline", "underlines", "underlined", "underlining", "underscore", "underscores"),
    *("underscored", "underscoring", "reaffirm", "reaffirms"),
    *("reaffirmed", "reaffirming", "affirm", "affirms", "affirmed"),
)
_PROMISING_FORMS = (
    *("promise", "promises", "promised", "promising", "pledge", "pledges", "pledged", "pledging", "vow"),
    *("vows", "vowed", "vowing", "swear", "swears", "swore", "sworn", "guarantee", "guarantees", "guaranteed"),
)
_FORECASTING_FORMS = (
    *("forecast", "forecasts", "forecasted", "forecasting", "project", "projects", "projected", "speculate"),
    *("speculates", "speculated", "speculating", "calculate", "calculates", "calculated"),
)
_FEARING_FORMS = (
    *("fear", "fears", "feared", "fearing", "worry", "worries", "worried", "expect", "expects", "expected"),
    *("suspect", "suspects", "suspected", "doubt", "doubts", "doubted"),
)
_CLAUSE_ONLY_FORMS = frozenset((*_SAYING_FORMS, *_PROMISING_FORMS, *_FORECASTING_FORMS, *_FEARING_FORMS))
# 'Peskov called the reports "absolutely untrue"': calling something said false denies it
_POINT_FORMS = frozenset({"point", "points", "pointed", "pointing"})
_CALL_FORMS = frozenset({"call", "calls", "called", "calling", "branded", "brands", "dubbed", "labelled", "labeled"})
_DISMISSIVE = frozenset(
    {
        *("false", "untrue", "fake", "baseless", "groundless", "unfounded", "nonsense", "lie", "lies", "lying"),
        *("provocation", "absurd", "fabricated", "fabrication", "fabrications", "ridiculous", "slander"),
        *("disinformation", "propaganda", "fiction", "invention", "inventions", "misleading", "inaccurate"),
        *("rubbish", "wrong", "speculation", "hoax", "smear", "libel", "incorrect"),
    }
)
CUE_FORMS = {
    # form -> canonical cue
    **{f: "say" for f in ("say", "says", "said", "saying")},
    **{f: "tell" for f in ("tell", "tells", "told", "telling")},
    **{f: "add" for f in ("add", "adds", "added", "adding")},
    **{f: "claim" for f in ("claim", "claims", "claimed", "claiming")},
    **{f: "state" for f in ("state", "states", "stated", "stating")},
    **{f: "announce" for f in ("announce", "announces", "announced", "announcing")},
    **{f: "report" for f in ("report", "reports", "reported", "reporting")},
    **{f: "estimate" for f in ("estimate", "estimates", "estimated", "estimating")},
    **{f: "write" for f in ("write", "writes", "wrote", "written", "writing")},
    **{f: "note" for f in ("note", "notes", "noted", "noting")},
    **{f: "explain" for f in ("explain", "explains", "explained", "explaining")},
    **{f: "argue" for f in ("argue", "argues", "argued", "arguing")},
    **{f: "insist" for f in ("insist", "insists", "insisted", "insisting")},
    **{f: "warn" for f in ("warn", "warns", "warned", "warning")},
    **{f: "deny" for f in ("deny", "denies", "denied", "denying")},
    **dict.fromkeys(_REJECT_FORMS, "deny"),
    **{f: "confirm" for f in ("confirm", "confirms", "confirmed", "confirming")},
    **{f: "acknowledge" for f in ("acknowledge", "acknowledges", "acknowledged", "acknowledging")},
    **{f: "assert" for f in ("assert", "asserts", "asserted", "asserting")},
    **{f: "testify" for f in ("testify", "testifies", "testified", "testifying")},
    **{f: "allege" for f in ("allege", "alleges", "alleged", "alleging")},
    **{f: "declare" for f in ("declare", "declares", "declared", "declaring")},
    **{f: "suggest" for f in ("suggest", "suggests", "suggested", "suggesting")},
    **{f: "predict" for f in ("predict", "predicts", "predicted", "predicting")},
    **{f: "conclude" for f in ("conclude", "concludes", "concluded", "concluding")},
    **{f: "assess" for f in ("assess", "assesses", "assessed", "assessing")},
    **{f: "accuse" for f in ("accuse", "accuses", "accused", "accusing")},
    **{f: "complain" for f in ("complain", "complains", "complained", "complaining")},
    **{f: "reveal" for f in ("reveal", "reveals", "revealed")},
    **{f: "admit" for f in ("admit", "admits", "admitted", "admitting")},
    **{
        f: "emphasize"
        for f in (
            *("emphasize", "emphasizes", "emphasized", "emphasizing"),
            *("emphasise", "emphasises", "emphasised", "emphasising"),
            *("stress", "stresses", "stressed", "stressing"),
            *("highlight", "highlights", "highlighted", "highlighting"),
        )
    },
    **{f: "identify" for f in ("identify", "identifies", "identified")},
    **{f: "describe" for f in ("describe", "describes", "described")},
    **{f: "refer" for f in ("refer", "refers", "referred")},
    **{f: "believe" for f in ("believe", "believes", "believed", "believing")},
    **{
        f: "reply"
        for f in ("reply", "replies", "replied", "replying", "respond", "responds", "responded", "responding")
    },
    **{f: "ask" for f in ("ask", "asks", "asked", "asking")},
    **{f: "indicate" for f in ("indicate", "indicates", "indicated")},
    **{f: "show" for f in ("show", "shows", "showed", "shown")},
    **{f: "find" for f in ("find", "finds", "found")},
    **{f: "recall" for f in ("recall", "recalls", "recalled", "recalling")},
    **{f: "comment" for f in ("comment", "comments", "commented", "commenting")},
    # Verbs that report only with a clause (all in NEEDS_CLAUSE): 'the court ruled that', 'Putin vowed that',
    # 'officials fear that', 'analysts expect that' ('ruled the country', 'vowed revenge' report nothing).
    **dict.fromkeys(_SAYING_FORMS, "say"),
    **dict.fromkeys(_PROMISING_FORMS, "promise"),
    **dict.fromkeys(_FORECASTING_FORMS, "predict"),
    **dict.fromkeys(_FEARING_FORMS, "believe"),
    **{f: "observe" for f in ("observe", "observes", "observed", "observing")},
    **{f: "announce" for f in ("proclaim", "proclaims", "proclaimed", "proclaiming")},
    **{f: "think" for f in ("think", "thinks", "thought", "thinking")},
    **{f: "urge" for f in ("urge", "urges", "urged", "urging")},
    **{f: "disclose" for f in ("disclose", "discloses", "disclosed", "disclosing")},
    **{f: "tweet" for f in ("tweet", "tweets", "tweeted", "tweeting")},
    **{
        f: "contend"
        for f in (
            *("contend", "contends", "contended", "contending"),
            *("maintain", "maintains", "maintained", "maintaining"),
        )
    },
}
# Cues that need a clausal complement to be reporting (not "found a body", "showed up", "thought about",
# "added a goal", "maintained a lead", "claimed the body", "responded by hitting", "asked for help",
# "wrote a will").
NEEDS_CLAUSE = {
    "add",
    "comment",  # 'commented: "…"', not 'commented on the report'
    "point out",
    "emphasize",
    "contend",
    "claim",
    "reply",
    "ask",
    "write",
    "conclude",
    "tweet",
    "find",
    "show",
    "think",
    "believe",
    "identify",
    "describe",
    "refer",
    "indicate",
    "observe",
    "recall",
    "urge",
}
DENIAL = {"deny"}
PRONOUNS = {"he", "she", "they", "it", "we", "i", "you", "him", "her", "them"}
_SUBJECT_DEPS = ("nsubj", "nsubjpass")
# 'it says', 'it shows': a thing, not a speaker ('it was found' is passive and handled apart)
_IMPERSONAL = frozenset({"say", "report", "think", "believe", "show", "find"})
_DROP_FROM_SOURCE = {"appos", "relcl", "punct", "advcl", "parataxis", "prep_agent", "cc_trailing"}
# Cues whose agent is evidence rather than a speaker: 'as shown by the vote', 'as shown in the case of the
# Wagner recruits'.
_EVIDENCE = {"show", "indicate", "identify", "refer"}
# Verbs that withhold what the cue after them would report: 'refused to say', 'declined to confirm'.
_WITHHELD = {
    *("refuse", "refuses", "refused", "refusing", "decline", "declines", "declined", "declining"),
    *("fail", "fails", "failed", "failing"),
}
# A participle standing as a noun reports nothing: 'contributed reporting', 'taxpayers reporting gains
# would pay'.
_NOMINAL_DEPS = {"dobj", "pobj", "nsubj", "nsubjpass", "csubj", "csubjpass", "attr", "compound", "amod"}
_KEEP_ACL = {"named", "called", "dubbed", "identified", "known", "identifying", "describing"}


@dataclass(frozen=True)
class Attribution:
    cue: str  # the reporting expression as written ("said", "according to")
    cue_kind: str  # canonical cue ("say", "according_to", "deny")
    source: Span  # the source's tokens
    cue_token: Token


_HANDOVER = (",", "?", "!", "—", "–")  # what closes a quote that its speaker's name follows


def _reports(verb: Token, sentence: Span) -> bool:
    """The verb reports something: it takes a clause (or a 'that' the parser hung elsewhere), hangs in one
    as '…, X added.', closes a quotation ('“…,” Lucas responded with a sigh.', also when the splitter cut
    the quote off), or opens one the splitter left on its own ('He added:')."""
    doc = verb.doc
    following = doc[verb.right_edge.i + 1] if verb.right_edge.i + 1 < len(doc) else None
    if following is not None and following.text == ":":
        return True
    if any(c.dep_ == "punct" and c.text == ":" and c.i > verb.i for c in verb.children):
        return True
    if any(
        c.dep_ in ("ccomp", "xcomp", "parataxis")
        or c.dep_ == "prep"
        and c.lower_ == "to"
        and verb.lower_.startswith("refer")
        or (c.dep_ == "dobj" and verb.lower_.startswith(("refer", "identif", "describ")))
        for c in verb.children
    ):
        return True
    if (
        verb.dep_ in ("parataxis", "ccomp")
        and verb.head.i != verb.i
        and not any(c.lower_ in ("what", "whatever", "which") for c in verb.children)
    ):
        return True  # not 'not knowing what we'd find': a question, nothing found
    if any(_misattached_that(t, verb) for t in verb.subtree):
        return True
    return _quotation_closed_before(verb, sentence) is not None


def _not_telling(verb: Token) -> bool:
    """'tell' that reports nothing: telling apart ("you can't even tell that the machine is new", "I couldn't
    tell who or why") and idioms ("lies as easily as it tells the truth", "tell the time")."""
    children = list(verb.children)
    if any(c.dep_ == "dobj" and c.lower_ in ("truth", "lie", "lies", "difference", "time") for c in children):
        return True
    can_not = any(c.lower_ in ("can", "could", "ca") for c in children if c.dep_ == "aux") and any(
        c.dep_ == "neg" for c in children
    )
    return can_not and not any(c.dep_ in ("dative", "dobj") for c in children)


def _misattached_that(token: Token, verb: Token) -> bool:
    """'claimed at the time that they were treated well': the parser hung the reported clause on 'time' as
    a relative clause; no other verb stands between it and the cue."""
    if token.lower_ != "that" or token.dep_ not in ("mark", "advmod") or token.i < verb.i:
        return False
    clause = token.head
    if clause.dep_ not in ("relcl", "acl"):
        return False
    node = clause.head
    while node.i != verb.i:
        if node.pos_ in ("VERB", "AUX") or node.head.i == node.i:
            return False
        node = node.head
    return True


def _quotation_closed_before(verb: Token, sentence: Span) -> int | None:
    """Where the words after a quotation start, when the verb follows one that hands over to its speaker
    ('“…,” Lucas responded', '“Why?” she asked'; also when the splitter cut the quote off), else None."""
    doc = verb.doc
    quote_ends = [t.i for t in doc[sentence.start : verb.i] if t.text in CLOSING_MARKS]
    if quote_ends:
        first = quote_ends[-1] + 1
        handover = quote_ends[-1] > sentence.start and doc[quote_ends[-1] - 1].text in _HANDOVER
    else:
        # '“…,”' ended the sentence before: its last tokens are the handover and the closing quote.
        previous = [t.text for t in doc[max(0, sentence.start - 4) : sentence.start] if not t.is_space]
        first = sentence.start
        handover = len(previous) >= 2 and previous[-1] in CLOSING_MARKS and previous[-2] in _HANDOVER
    if not handover or any(t.pos_ in ("VERB", "AUX") for t in doc[first : verb.i]):
        return None
    return first


def _name_after_quotation(verb: Token, sentence: Span) -> Span | None:
    """'“…,” Stafford, a member of the crew, responded.': the words after the quote up to a comma."""
    first = _quotation_closed_before(verb, sentence)
    if first is None:
        return None
    doc = verb.doc
    end = first
    while end < verb.i and doc[end].text not in (",", "—", "–", "(") and not doc[end].is_space:
        end += 1
    words = doc[first:end]
    return words if len(words) and any(t.pos_ in ("PROPN", "NOUN", "PRON") for t in words) else None


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
            if (
                child.dep_ == "prep"
                and child.i > token.i
                and token.pos_ == "PROPN"
                and child.lower_ not in ("of", "for", "from", "at", "in")
            ):
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
    # Hyphenated names ("Holtz-Eakin", "Crouse-Mays") are three tokens; keep them whole.
    while (
        start >= 2
        and doc[start - 1].text in ("-", "‐")
        and not doc[start - 1].whitespace_
        and not doc[start - 2].whitespace_
    ):
        start -= 2
    while (
        end + 2 < len(doc)
        and doc[end + 1].text in ("-", "‐")
        and not doc[end].whitespace_
        and not doc[end + 1].whitespace_
    ):
        end += 2
    span = doc[start : end + 1]
    while len(span) > 1 and (span[0].is_punct or span[0].lower_ in ("the",)):
        span = doc[span.start + 1 : span.end]
    while len(span) > 1 and span[-1].is_punct:
        span = doc[span.start : span.end - 1]
    return span


def _named(token: Token) -> bool:
    return token.pos_ == "PROPN" or token.ent_type_ in ("PERSON", "ORG", "GPE", "NORP")


def _appositive_name(head: Token, label: str | None = None) -> Span | None:
    """'The minister of the economy, Mr. Guajardo Villarreal, argues': the name in apposition (with ``label``,
    only a name the entity tagger gives that label)."""
    if _named(head):
        return None
    holders = [head]
    if label == "PERSON":
        # 'The governor of Belgorod, Vyacheslav Gladkov, said': the parser hangs the name on the place,
        # which a person cannot be in apposition to
        holders += [o for p in head.children if p.dep_ == "prep" for o in p.children if o.dep_ == "pobj"]
    for holder in holders:
        for child in holder.children:
            if child.dep_ == "appos" and _named(child) and label in (None, child.ent_type_):
                return source_span(child)
    return None


def _adjacent_name(cue: Token) -> Span | None:
    """A proper name right before ('Chief Justice Roberts said') or right after ('said Mr. Holtz-Eakin')
    the cue: more reliable than a long-distance parse."""
    doc = cue.doc
    i = cue.i - 1
    while i >= 0 and doc[i].pos_ in ("ADV", "AUX", "PART") and doc[i].lower_ not in ("not",):
        i -= 1
    after_cue = doc[cue.i + 1] if cue.i + 1 < len(doc) else None
    parenthetical = after_cue is None or after_cue.text in (",", ".", ";", "—", "–") or after_cue.is_space
    if parenthetical and i >= 0 and doc[i].ent_type_ in ("PERSON", "ORG", "") and doc[i].pos_ == "PROPN":
        end = i
        while i - 1 >= 0 and (
            doc[i - 1].ent_type_ == doc[end].ent_type_
            and doc[i - 1].ent_iob_ != "O"
            and doc[i].ent_iob_ != "B"
            or doc[i - 1].text in ("-",)
            and not doc[i - 1].whitespace_
        ):
            i -= 1
        return doc[i : end + 1]
    j = cue.i + 1
    if j < len(doc) and doc[j].lower_ in ("mr.", "ms.", "mrs.", "dr.") and j + 1 < len(doc):
        j += 1
    inverted = cue.i >= 1 and doc[cue.i - 1].text in ("”", '"', "''", "’")  # '“…,” said Leslie Wimes'
    if (
        j < len(doc)
        and doc[j].pos_ == "PROPN"
        and (
            inverted
            or doc[j].ent_type_ in ("PERSON", "ORG")
            and doc[j].dep_ in _SUBJECT_DEPS
            and doc[j].head.i == cue.i
        )
    ):
        end = j
        while end + 1 < len(doc) and (
            doc[end + 1].pos_ == "PROPN" or doc[end + 1].text in ("-",) and not doc[end].whitespace_
        ):
            end += 1
        return doc[cue.i + 1 : end + 1] if doc[cue.i + 1].lower_ in ("mr.", "ms.", "mrs.", "dr.") else doc[j : end + 1]
    return None


_FINITE = {"VBD", "VBZ", "VBP", "MD"}


def leading_name(sentence: Span, cue: Token) -> Span | None:
    """'Kirill Mihailov, head of the … think tank, in a May 23 estimate said': a named person or
    organisation opening the clause, set off by a comma, with no finite verb before the cue."""
    if cue.i < sentence.start:
        return None
    for ent in entities_in(sentence):
        if ent.start >= cue.i:
            break
        doc = sentence.doc
        between = doc[ent.end : cue.i]
        # 'Peskov, asked about the report, said': an aside between commas, whatever the tagger made of it
        aside = len(between) > 2 and between[0].text == "," and between[-1].text == ","
        if not aside and any(t.tag_ in _FINITE for t in between):
            continue
        if (
            ent.label_ in ("PERSON", "ORG")
            and ent.root.dep_ != "pobj"  # 'In an interview with the BBC, the governor said': whom he spoke to
            and ent.end < len(doc)
            and doc[ent.end].text == ","
            and (
                ent.start == sentence.start
                or doc[ent.start - 1].text in (",", "—", "–")
                or all(
                    t.is_punct or t.pos_ in ("DET", "ADP", "ADV", "PROPN", "NOUN", "ADJ")
                    for t in doc[sentence.start : ent.start]
                )
            )
        ):
            return ent
    return None


def _phrase_before(cue: Token, sentence: Span) -> Span | None:
    """'In a video posted on Telegram, a man identifying himself as a commander said …': the parser hung the
    speaker on the phrase before it; the noun phrase that ends right before the cue and opens after a comma
    is the subject it left out."""
    doc = cue.doc
    if cue.i - 1 <= sentence.start:
        return None
    node = doc[cue.i - 1]
    while True:
        opens = node.left_edge.i
        if (
            node.pos_ in ("NOUN", "PROPN")
            and node.dep_ == "appos"
            and opens > sentence.start
            and doc[opens - 1].text == ","
        ):
            return source_span(node)
        if node.head.i >= cue.i or node.head.i == node.i or node.head.right_edge.i != cue.i - 1:
            return None
        node = node.head


def _inherited_subject(verb: Token) -> Token | None:
    """'Clinton mocked the complaint, saying …' / '… spotted Stein and reported …' / '… responded by
    saying …': the subject of the verb this participle or conjunct hangs on."""
    shown = _shown_saying(verb)
    if shown is not None:
        return shown
    head = verb
    for _ in range(3):
        if head.dep_ == "pcomp" and head.head.dep_ == "prep" and head.head.head.i != head.head.i:
            preposition = head.head
            if preposition.lower_ in ("for", "into") or (
                preposition.lower_ in ("of", "from") and any(c.dep_ == "dobj" for c in preposition.head.children)
            ):
                # 'apologize for suggesting …', 'pressure him into announcing …', 'accused Kyiv of claiming …',
                # 'barred him from saying …': someone else's act, not the subject's ('tire of telling …')
                return None
            head = head.head  # '… responded by saying …': the participle hangs on the preposition
        elif head.dep_ not in ("advcl", "conj", "xcomp") or head.head.i == head.i:
            return None
        if head.dep_ == "xcomp" and head.tag_ != "VBG":
            # 'prompted some users to argue …': the object of the verb before is who argues (not in 'spent
            # 45 seconds explaining …').
            objects = [c for c in head.head.children if c.dep_ == "dobj" and c.i < head.i]
            if objects:
                return objects[0]
        head = head.head
        subjects = [c for c in head.children if c.dep_ == "nsubj"]
        if subjects:
            return subjects[0]
    return None


def _shown_saying(verb: Token) -> Token | None:
    """'The ministry released a video of Shoigu saying …': the one the video shows speaks, not who released
    it (the parser hangs the participle on the verb)."""
    if verb.tag_ != "VBG" or verb.i == 0:
        return None
    before = verb.doc[verb.i - 1]
    of = before.head
    if before.dep_ == "pobj" and of.lower_ == "of" and of.head.pos_ == "NOUN":
        return before
    if before.dep_ == "pobj" and of.lower_ == "with" and verb.dep_ == "advcl":
        # '… has plunged, with the agency announcing an emergency' (not 'breaks with resolutions declaring …',
        # where the participle belongs to the noun)
        return before
    return None


def _quoted_as(verb: Token) -> Token | None:
    """'Interfax quoted Dmitry Peskov as saying …', 'Peskov was quoted by Interfax as saying …', 'the agency
    cited a source as saying …': who is quoted speaks, not who quotes."""
    preposition = verb.head
    if verb.dep_ != "pcomp" or preposition.lower_ != "as" or preposition.dep_ != "prep":
        return None
    quoting = preposition.head
    if quoting.lower_ not in ("quote", "quotes", "quoted", "quoting", "cite", "cites", "cited", "citing"):
        return None
    quoted = [c for c in quoting.children if c.dep_ in ("dobj", "nsubjpass")]
    return quoted[0] if quoted else None


def _takes_object(verb: Token) -> bool:
    return any(c.dep_ in ("dobj", "dative", "prep", "attr") for c in verb.children)


def _no_complement_negated(verb: Token) -> bool:
    """A negated cue with nothing after it: "I'm not complaining", "Kadzik wouldn't say" (the negation in the
    cue's own verb group, not a quoted 'Probably not,' the parser hung on it)."""
    children = list(verb.children)
    negated = any(c.dep_ == "neg" and verb.i - 3 <= c.i < verb.i for c in children)
    return (
        negated
        and not any(c.dep_ in ("ccomp", "xcomp", "parataxis", "advcl") for c in children)
        and not _takes_object(verb)
    )


def _as_participle(verb: Token) -> bool:
    """'As reported by The Guardian, …', 'as stated in the ministry's report', 'as previously announced':
    a past participle opened by 'as', an aside on where the sentence comes from."""
    children = list(verb.children)
    return (
        verb.tag_ == "VBN"
        and any(c.dep_ == "mark" and c.lower_ == "as" for c in children)
        and not any(c.dep_ in ("nsubj", "aux") for c in children)  # not 'as police have said'
    )


def _passive_source(verb: Token, after_as: bool) -> Span | None:
    """Who a passive cue names: its agent ('as reported by The Guardian', 'it was confirmed by the ministry
    that …') or, ``after_as`` (an ``_as_participle``), the text it appears in ('as stated in the ministry's
    report')."""
    if verb.tag_ != "VBN":
        return None
    preps = ("agent", "prep") if after_as else ("agent",)
    for child in verb.children:
        if child.dep_ in preps and child.lower_ in ("by", "in", "on"):
            objects = [c for c in child.children if c.dep_ == "pobj"]
            if objects:
                return source_span(objects[0])
    return None


def _content_tokens(verb: Token) -> set[int]:
    return {t.i for c in verb.children if c.dep_ in ("ccomp", "xcomp") for t in c.subtree}


def _trailing(att: Attribution, sentence: Span) -> bool:
    """'…, the source added.' / '…, said X.': the cue closes the sentence and reports all before it."""
    cue = att.cue_token
    if att.cue_kind == "according_to":
        return False
    rest = [t for t in sentence.doc[cue.i + 1 : sentence.end] if not t.is_punct]
    if att.source.end <= cue.i and cue.i - att.source.end > 3:
        return False  # a subject far before its cue ('Now, he added, many of them …, telling him'): not closing
    source = {t.i for t in att.source} | {t.left_edge.i for t in att.source}
    tail_ok = all(
        t.i in source
        or t.dep_
        in (
            "npadvmod",
            "prep",
            "pobj",
            "det",
            "amod",
            "compound",
            "advmod",
            "nummod",
            "poss",
            "case",
            "appos",
            "punct",
            "acl",
            "relcl",
            "nsubj",
            "dobj",
            "dative",
        )
        or t.i > max(source | {cue.i})
        for t in rest
    )
    before = sentence.doc[max(sentence.start, min(source | {cue.i}) - 1)]
    return tail_ok and before.text in (",", "”", "'", '"', "’") and min(source | {cue.i}) > sentence.start + 2


def _mistagged_cue(token: Token, sentence: Span) -> Span | None:
    """Cues the tagger reads as nouns: 'Trump claims that …', 'Data from the ministry show that …' and the
    inverted 'Said Ellis: …'."""
    doc = token.doc
    nxt = doc[token.i + 1] if token.i + 1 < len(doc) else None
    if token.i == sentence.start and token.lower_ == "said" and nxt is not None and nxt.pos_ == "PROPN":
        end = nxt.i
        while end + 1 < sentence.end and doc[end + 1].pos_ == "PROPN":
            end += 1
        return doc[nxt.i : end + 1]
    prev = doc[token.i - 1] if token.i > sentence.start else None
    if (
        token.lower_.endswith("s")
        and prev is not None
        and prev.pos_ == "PROPN"
        and nxt is not None
        and nxt.lower_ == "that"
    ):
        start = prev.i
        while start - 1 >= sentence.start and doc[start - 1].pos_ == "PROPN":
            start -= 1
        return doc[start : prev.i + 1]
    if (
        token.dep_ == "ROOT"
        and nxt is not None
        and nxt.lower_ == "that"
        and token.i > sentence.start
        and not any(t.pos_ in ("VERB", "AUX") for t in doc[sentence.start : token.i])
    ):
        # 'Data from the ministry show that …': the tagger took the cue for the last word of a noun phrase
        words = doc[sentence.start : token.i]
        while len(words) > 1 and words[0].lower_ == "the":
            words = words[1:]
        return words
    return None


def find_attributions(sentence: Span, in_quote) -> list[Attribution]:
    """Every reporting cue in the sentence (outside quotations) with its source, the governing one first."""
    found: list[tuple[int, Attribution]] = []
    for token in sentence:
        if in_quote(token.idx):
            continue
        lowered = token.lower_
        if lowered == "according" and token.i + 1 < len(token.doc) and token.doc[token.i + 1].lower_ == "to":
            to = token.doc[token.i + 1]
            objects = [c for c in to.children if c.dep_ == "pobj"] or [c for c in token.children if c.dep_ == "pobj"]
            if objects:
                span = source_span(objects[0])
                if not any(_named(t) for t in span):
                    span = _appositive_name(objects[0]) or span  # 'according to the independent outlet Mediazona'
                found.append((_depth(token), Attribution("according to", "according_to", span, token)))
            continue
        if lowered == "per" and (source := _per_source(token, sentence)) is not None:
            found.append((_depth(token), Attribution("per", "according_to", source, token)))
            continue
        kind = CUE_FORMS.get(lowered) or (_judged(token) if lowered in _CALL_FORMS else None)
        if (
            kind is None
            and lowered in _POINT_FORMS
            and any(c.dep_ == "prt" and c.lower_ == "out" for c in token.children)
        ):
            kind = "point out"  # 'he pointed out it is difficult to draw firm conclusions
        if kind is None:
            continue
        if token.pos_ not in ("VERB", "AUX") or (token.i == sentence.start and lowered == "said"):
            fallback = _mistagged_cue(token, sentence)
            if fallback is not None:
                found.append((_depth(token), Attribution(token.text, kind, fallback, token)))
            continue
        if token.dep_ == "xcomp" and token.head.lower_ in _WITHHELD:
            continue  # 'the Kremlin has refused to announce a mobilisation': nothing reported
        if token.tag_ == "VBG" and (
            token.dep_ in _NOMINAL_DEPS or not _reports(token, sentence) and not _takes_object(token)
        ):
            continue  # a participle as a noun, or with nothing reported: 'contributed reporting', 'kept complaining'
        if kind == "deny" and any(c.dep_ == "dative" or c.dep_ == "prep" and c.lower_ == "to" for c in token.children):
            continue  # 'denying flu vaccines to immigrants': withholding, not a denial
        if lowered in _REJECT_FORMS and not any(
            c.dep_ in ("dobj", "nsubjpass") and c.lower_ in _SAID_THINGS for c in token.children
        ):
            continue  # 'rejected the proposal', 'dismissed the commander'
        if kind == "deny" and any(c.dep_ == "neg" for c in token.children):
            kind = "say"  # 'did not deny that …' denies nothing; what follows is still theirs to answer for
        if _no_complement_negated(token):
            continue  # "I'm not complaining", "he did not say"
        if _as_participle(token):
            # Its source is in the aside or nowhere: never the subject of the clause it hangs on.
            named = _passive_source(token, after_as=True) if kind not in _EVIDENCE else None
            if named is not None:
                found.append((_depth(token), Attribution(token.text, kind, named, token)))
            continue
        if lowered in _FEARING_FORMS and not (
            any(c.dep_ == "ccomp" for c in token.children) and any(c.dep_ == "nsubj" for c in token.children)
        ):
            continue  # 'expects to produce three rockets', 'but expect Bloomberg's shadow to …': a plan, an order
        if lowered in _PROMISING_FORMS and any(c.dep_ == "xcomp" and c.lower_ == "be" for c in token.children):
            continue  # 'the deals promise to be even better': likely, not pledged
        if ((kind in NEEDS_CLAUSE or lowered in _CLAUSE_ONLY_FORMS) and not _reports(token, sentence)) or (
            kind == "tell" and _not_telling(token)
        ):
            continue
        # Quoted words are never the speaker: '"… it will at some point," said James Acton' has two subjects
        subjects = sorted((c for c in token.children if c.dep_ in _SUBJECT_DEPS), key=lambda c: in_quote(c.idx))
        quoted = None if subjects else _quoted_as(token)
        subject = subjects[0] if subjects else quoted or _inherited_subject(token)
        if subject is not None and subject.i < sentence.start:
            subject = None  # a dateline the parser took for the subject ("WASHINGTON -- …")
        if subject is None:
            named = leading_name(sentence, token) or _adjacent_name(token) or _phrase_before(token, sentence)
            if named is not None:
                found.append((_depth(token), Attribution(token.text, kind, named, token)))
            continue
        if quoted is None and (
            subject.dep_ == "nsubjpass"
            or subject.lower_ in ("there", "that", "which", "who")
            or any(c.dep_ == "auxpass" for c in token.children)
        ):
            # "it was reported", "these are thought to", "it was not on his schedule and was not announced":
            # no source named, unless by an agent ("it was confirmed by the ministry that …")
            named = (
                _passive_source(token, after_as=False) if subject.lower_ == "it" and _reports(token, sentence) else None
            )
            if named is not None:
                found.append((_depth(token), Attribution(token.text, kind, named, token)))
            continue
        span = source_span(subject)
        better = _adjacent_name(token)
        if in_quote(subject.idx) and better is None:
            better = _name_after_quotation(token, sentence)
        if subject.lower_ == "it" and kind in _IMPERSONAL and not (in_quote(subject.idx) and better is not None):
            continue
        if in_quote(subject.idx) and better is not None:
            span = better  # the parser took quoted words for the subject of an inverted cue
        elif better is not None and not any(t.i in {b.i for b in better} for t in span) and not _named(span.root):
            span = better
        elif better is not None and better.root.dep_ == "appos" and better.root.head.i == subject.i:
            # 'To understand the real Ivan Susanin, Chief Justice Roberts said, …': the parser made the
            # speaker an apposition of the name before the comma; the name beside the cue speaks
            span = source_span(better.root)
        elif not any(_named(t) for t in span):
            span = _appositive_name(subject) or leading_name(sentence, token) or better or span
        elif not _named(span.root) and (person := _appositive_name(subject, "PERSON")) is not None:
            span = person  # 'The governor of Belgorod, Vyacheslav Gladkov, said': the person, not the post
        found.append((_depth(token), Attribution(token.text, kind, span, token)))
    # A cue inside another cue's reported content is part of that content ("X said Y told them …").
    nested = set()
    for _, outer in found:
        content = _content_tokens(outer.cue_token)
        for _, inner in found:
            if (
                inner is not outer
                and inner.cue_token.i in content
                and not _coordinate_report(inner.cue_token)
                and not (outer.cue_kind == "believe" and inner.cue_kind == "according_to")
            ):
                nested.add(id(inner))
    kept = [(d, a) for d, a in found if id(a) not in nested]
    # 'They fear that …, according to people familiar with their thinking': whoever tells of a belief is the
    # source, before the believer
    told = any(a.cue_kind == "according_to" for _, a in kept)
    kept.sort(
        key=lambda item: (
            told and item[1].cue_kind == "believe",
            not _trailing(item[1], sentence),
            item[0],
            item[1].cue_token.i,
        )
    )
    return [a for _, a in kept]


def semicolon_report(cue: Token) -> bool:
    """'Moscow says it is fighting aggression; Kyiv says it is defending its land': the parser makes the first
    report the content of the second; the semicolon makes them two."""
    doc = cue.doc
    after = cue.right_edge.i + 1
    return (
        cue.dep_ == "ccomp"
        and after < len(doc)
        and doc[after].text == ";"
        and cue.head.i > after
        and any(c.dep_ == "nsubj" for c in cue.children)
    )


def _coordinate_report(cue: Token) -> bool:
    """'The governor emphasized that the drive was on schedule, and rights groups warned that …': a cue with
    a subject and a clause of its own after ', and' reports beside the first cue, not inside what that one
    reports (the parser joins it to the nearest verb, which is in the first report's content)."""
    if semicolon_report(cue):
        return True
    children = list(cue.children)
    if (
        cue.dep_ != "conj"
        or not any(c.dep_ == "nsubj" for c in children)
        or not any(c.dep_ == "ccomp" for c in children)
    ):
        return False
    left = cue.left_edge.i
    doc = cue.doc
    return left >= 2 and doc[left - 1].dep_ == "cc" and doc[left - 2].text == ","


def _per_source(per: Token, sentence: Span) -> Span | None:
    """'Per the ministry, 1,000 recruits arrived': 'per' opening the sentence as 'according to' does (not '300
    roubles per day')."""
    doc = per.doc
    objects = [c for c in per.children if c.dep_ == "pobj"]
    if per.i != sentence.start or not objects:
        return None
    after = objects[0].right_edge.i + 1
    if after >= len(doc) or doc[after].text != ",":
        return None
    span = source_span(objects[0])
    return span if any(_named(t) for t in span) or span.root.lower_ in PERSON_NOUNS | ORG_NOUNS else None


def _judged(verb: Token) -> str | None:
    """'called the reports "absolutely untrue"', 'called the allegations baseless': a judgement on something said
    is a report of the one who judges, a denial when the judgement dismisses it; None for 'called the
    reservists up' or 'called the governor a hero'."""
    if verb.pos_ != "VERB":
        return None
    said = next((c for c in verb.children if c.dep_ == "dobj" and c.lower_ in _SAID_THINGS), None)
    if said is None:
        return None
    judgement = [c for c in verb.children if c.dep_ in ("oprd", "xcomp", "ccomp")]
    judgement += [c for c in said.children if c.i > said.i and c.dep_ in ("amod", "appos")]
    if not judgement:
        return None
    words = {t.lower_ for j in judgement for t in j.subtree}
    return "deny" if words & _DISMISSIVE else "say"


def _depth(token: Token) -> int:
    depth = 0
    while token.head.i != token.i:
        token = token.head
        depth += 1
    return depth

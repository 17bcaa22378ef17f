"""How a claim is held: asserted, hedged, unverified (the outlet says it could not check it) or denied."""

from __future__ import annotations

import re

from spacy.tokens import Span

_UNVERIFIED = re.compile(
    r"\b(could not|couldn['’]t|cannot|can['’]t|can not|has not|have not|had not|hasn['’]t|haven['’]t|was unable to|"
    r"were unable to|is unable to|did not|didn['’]t|not been able to|(?:was|were|is|are) not able to|"
    r"(?:was|is) not possible to|(?:was|is) impossible to)\b[\w\s]{0,30}?\b"
    r"(independently\s+)?(verif\w*|confirm\w*|substantiat\w*|corroborat\w*)",
    re.I,
)
_UNVERIFIED_WORDS = re.compile(r"\b(unverified|unconfirmed|unsubstantiated)\b", re.I)
_HEDGE_WORDS = re.compile(
    r"\b(likely|unlikely|reportedly|allegedly|apparently|possibly|probably|perhaps|approximately|roughly|"
    r"an estimated|estimated|about|around|nearly|almost|up to|some|might|may|could|appears? to|seems? to|"
    r"believed to|thought to|said to be|said to have|suspected|purportedly|presumably|potentially|rumou?red)\b",
    re.I,
)
_DENIAL = re.compile(
    # not 'did not deny', 'never denied'
    r"(?<!not )(?<!n't )(?<!n’t )(?<!never )\b(denied|denies|deny|rejected|rejects|dismissed|dismisses|refuted|refutes|"
    r"called (the|these|those) (claims?|reports?|allegations?) (false|baseless|fake))\b",
    re.I,
)


_CHECKING = re.compile(r"^(verif|confirm|substantiat|corroborat)", re.I)
# What an outlet says it could not check, when it points back at something already said
_CHECKED_THINGS = frozenset(
    {
        *("account", "accounts", "claim", "claims", "report", "reports", "allegation", "allegations"),
        *("statement", "statements", "assertion", "assertions", "figure", "figures", "number", "numbers"),
        *("toll", "tally", "estimate", "estimates", "video", "videos", "footage", "image", "images", "photo"),
        *("photos", "information", "details", "casualties", "losses"),
    }
)
_POINTING_BACK = frozenset({"the", "this", "these", "those", "that", "his", "her", "their", "its", "such"})


def checks_what_was_said(note: Span) -> bool:
    """'Her account couldn’t be independently verified', 'Reuters could not verify the figures', 'It was not
    possible to independently verify the group's claim': the thing not checked is one already told (unlike
    'US pricing has not been confirmed' or 'the claim that … is unsubstantiated', which say their own)."""
    for verb in note:
        if verb.pos_ != "VERB" or not _CHECKING.match(verb.lower_):
            continue
        if any(t.dep_ in ("advcl", "relcl", "ccomp") for t in (verb, *verb.ancestors)):
            continue  # '…, although those reports can't be verified': a note on its own sentence
        for thing in verb.children:
            if thing.dep_ not in ("nsubjpass", "dobj"):
                continue
            if thing.lower_ in ("it", "this", "these", "them", "they"):
                return True
            if thing.lower_ in _CHECKED_THINGS and not any(c.dep_ in ("acl", "ccomp") for c in thing.children):
                return any(c.lower_ in _POINTING_BACK or c.dep_ == "poss" for c in thing.children)
    return False


def is_unverified_statement(text: str) -> bool:
    return bool(_UNVERIFIED.search(text) or _UNVERIFIED_WORDS.search(text))


def verification(text: str, cue_kind: str | None, modal_tokens: list[str]) -> str:
    """Classify one claim. ``modal_tokens`` are the lower-cased MD tokens (spaCy tag) in the claim,
    so "May 20" is not read as a hedge."""
    if cue_kind == "deny" or _DENIAL.search(text):
        return "denied"
    if is_unverified_statement(text):
        return "unverified"
    if cue_kind in ("estimate", "believe", "think", "suggest", "predict", "allege"):
        return "hedged"
    for match in _HEDGE_WORDS.finditer(text):
        word = match.group(1).lower()
        if word in ("may", "might", "could"):
            if word in modal_tokens:
                return "hedged"
            continue
        if word in ("about", "around", "some", "up to", "nearly", "almost"):
            # Only as an approximation of a number: "about 70", "around 120,000".
            if re.match(
                r"\s+(\$|€|£)?\d|\s+(a |one |two |three |four |five |six |seven |eight |nine |ten |"
                r"dozen|hundred|thousand|half|a third)",
                text[match.end() : match.end() + 12],
                re.I,
            ):
                return "hedged"
            continue
        return "hedged"
    return "asserted"

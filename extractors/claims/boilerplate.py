"""Site furniture that is not a claim: newsletter prompts, share bars, credits, author bios, headings."""

from __future__ import annotations

import re

_PATTERNS = [
    r"\b(click|tap) here\b",
    r"\bsign up\b",
    r"\bsubscribe\b",
    r"\bnewsletter\b",
    r"\bfollow (us|our)\b",
    r"\bjoin us\b",
    r"\bread more\b",
    r"\blearn more\b",
    r"\brelated (articles|stories|content)\b",
    r"\bback to top\b",
    r"\bmust-read stories\b",
    r"\bmore must-read\b",
    r"\bget in touch\b",
    r"\bctrl ?\+ ?enter\b",
    r"\bcopyright\b",
    r"©",
    r"\ball rights reserved\b",
    r"\bgetty images\b",
    r"\b(photo|image) (credit|by)\b",
    r"//",
    r"\bshare (this|on)\b",
    r"\bdownload (our|the) app\b",
    r"\bcookies?\b.*\b(accept|consent)\b",
    r"\bis committed to\b",
    r"\babout the (writer|author)\b",
    r"\boriginal article\b",
    r"\buses ai\b",
    r"\bthis (story|article) (was|has been) (updated|corrected)\b",
    r"\bhighlight the text\b",
    r"^\s*(advertisement|sponsored|related|read also|see also|watch|listen)\b",
]
_BOILERPLATE = re.compile("|".join(_PATTERNS), re.I)
_BIO = re.compile(
    r"^[A-Z][\w'’.-]+(?: [A-Z][\w'’.-]+){0,3} (?:is|was|has been) (?:an?|the) (?:[\w-]+ ){0,5}"
    r"(?:reporter|correspondent|editor|writer|journalist|columnist|contributor|producer|fellow)\b",
    re.U,
)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s*$")


def is_boilerplate(text: str) -> bool:
    stripped = text.strip()
    if not stripped:
        return True
    if _BOILERPLATE.search(stripped) or _BIO.search(stripped):
        return True
    letters = [c for c in stripped if c.isalpha()]
    return bool(letters) and len(stripped.split()) <= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.8


def is_heading(line: str) -> bool:
    """A line that does not end like a sentence: a headline, a caption title, a section label."""
    return not _SENTENCE_END.search(line.strip())


# '“Are you sure he will come home alive?” asked a poster, identifying himself as I2.': a quoted question
# and no more than who asked it
_QUOTED_QUESTION = re.compile(r"^[\"“‘]([^\"”]*)\?[\"”’]\s*(?P<rest>[^\"“”]*)$")


_TAG_QUESTION = re.compile(
    r",\s*(?:right|no|yes|correct|ok|okay|eh|huh|true|(?:is|was|are|were|do|does|did|has|have|had|can|could|would|will|"
    r"should)n['’]t (?:it|he|she|they|we|you|i|there|that))\?$",
    re.I,
)


def is_question(text: str) -> bool:
    return bool(re.search(r"\?[\"'”’)\]]*\s*$", text.strip()))


def is_quoted_question(text: str) -> bool:
    """A quoted question with no more than who asked it: no claim, though its speaker goes on speaking."""
    quoted = _QUOTED_QUESTION.match(text.strip())
    return (
        quoted is not None
        and len(quoted.group("rest").split()) <= 12
        and not _TAG_QUESTION.search(quoted.group(1) + "?")  # '…, right?' asserts what comes before it
    )

"""What a text itself says of each person's gender, so that a "she" can skip a man named since.

Only the text counts — a title ("Ms. Persson"), a gendered noun beside the name ("actress Mary
Steenburgen", "her son, the filmmaker Oskar Berg") or a "he"/"she" that could mean no one else; never a
guess from the first name. People are told apart by full name, so "Bill Clinton" and "his wife Hillary
Clinton" are two people, and a lone "Clinton" after both is either.
"""

from __future__ import annotations

import re

from spacy.tokens import Span

PRONOUN_GENDER = {"she": "F", "her": "F", "he": "M", "him": "M"}
NAME_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}
# Words that say a person's gender when they stand right before the name, beside it, or head the mention
# ("a Kremlin spokesman"). Word lists as one string each: ruff's SIM905 would rather have a list literal,
# one word per line.
_MALE_WORDS = (
    "mr mr. sir lord spokesman chairman congressman businessman actor son father husband brother boyfriend "
    "king prince uncle nephew grandfather widower stepfather man boy"
)
_FEMALE_WORDS = (
    "mrs mrs. ms ms. miss madam dame lady spokeswoman chairwoman congresswoman businesswoman actress "
    "daughter mother wife sister girlfriend queen princess aunt niece grandmother widow stepmother woman girl"
)
GENDERED_WORDS = {**dict.fromkeys(_MALE_WORDS.split(), "M"), **dict.fromkeys(_FEMALE_WORDS.split(), "F")}
# Capitalised words before a surname that are not a first name: "President Trump", "Prince Andrew".
_TITLE_WORDS = (
    "president vice former sen. sen senator rep. rep representative gov. gov governor gen. gen general col. "
    "colonel lt. capt. sgt. dr. dr prof. professor judge justice minister secretary attorney ambassador mayor "
    "chief director officer commander pope saint st. rev. reverend chancellor premier prime chairperson "
    "deputy u.s. us"
)
_TITLES = set(GENDERED_WORDS) | set(_TITLE_WORDS.split())
POSSESSIVE = re.compile(r"['’]s?$")  # "Swift's", "Jones'"
_INITIAL = re.compile(r"^\w\.?$")


def name_parts(name: str) -> tuple[str | None, str]:
    """A person's (first name, surname), lowercased: 'U.S. Attorney James Kennedy Jr.' → ('james', 'kennedy'),
    'Sonya A. Zoghlin' → ('sonya', 'zoghlin'), 'Steenburgen's' → (None, 'steenburgen'), 'Prince Andrew' →
    (None, 'andrew')."""
    words = [POSSESSIVE.sub("", w).strip(",") for w in name.split()]
    words = [w for w in words if w and w.lower() not in NAME_SUFFIXES]
    if not words:
        return None, ""
    surname = words[-1].lower()
    for word in reversed(words[:-1]):
        if _INITIAL.match(word):
            continue  # a middle initial
        if word[:1].isupper() and word.lower() not in _TITLES:
            return word.lower(), surname
        break
    return None, surname


def stated_gender(span: Span) -> str | None:
    """What the words around a person's name say of their gender: a title or role right before it ("Ms.
    Persson", "actress Mary Steenburgen"), a noun in apposition ("Charlie McDowell, her son"; "her son, the
    filmmaker Oskar Berg"), or the mention's own head ("a Kremlin spokesman")."""
    doc = span.doc
    root = span.root
    words = [root]
    if span.start > 0:
        words.append(doc[span.start - 1])
    head = root
    while head.dep_ == "appos" and head.head.i != head.i:
        head = head.head
        words.append(head)
    words += [c for c in root.children if c.dep_ in ("appos", "compound") and not span.start <= c.i < span.end]
    words += [t for t in span if t.dep_ == "compound"]
    for word in words:
        gender = GENDERED_WORDS.get(word.lower_)
        if gender is not None:
            return gender
    return None


class Genders:
    """Each person's gender as the text has stated it so far, the first statement standing (a later
    misreading can't flip it)."""

    def __init__(self) -> None:
        self._by_person: dict[str, str] = {}
        self._full_names: dict[str, set[str]] = {}  # surname -> the full names seen with it

    def see(self, name: str, gender: str | None = None) -> None:
        """A person named in the text, with what the words around the name say of their gender, if anything."""
        first, surname = name_parts(name)
        if first is not None:
            full = f"{first} {surname}"
            seen = self._full_names.setdefault(surname, set())
            if not seen and surname in self._by_person:
                # 'Ms. Ivanova' … 'Anna Ivanova': what was said of the surname was said of her
                self._by_person.setdefault(full, self._by_person[surname])
            seen.add(full)
        if gender is not None:
            self.learn(name, gender)

    def person(self, name: str) -> str | None:
        """Who a name stands for: its full name, or for a lone surname the one full name seen with it (None
        when several people share it)."""
        first, surname = name_parts(name)
        if not surname:
            return None
        if first is not None:
            return f"{first} {surname}"
        seen = self._full_names.get(surname, set())
        if len(seen) > 1:
            return None
        return next(iter(seen)) if seen else surname

    def learn(self, name: str, gender: str) -> None:
        person = self.person(name)
        if person is not None:
            self._by_person.setdefault(person, gender)

    def of(self, name: str) -> str | None:
        person = self.person(name)
        return self._by_person.get(person) if person is not None else None

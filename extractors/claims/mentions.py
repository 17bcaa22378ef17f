"""Resolving "he", "the center", "the think tank" to the last compatible named source."""

from __future__ import annotations

from dataclasses import dataclass

from spacy.tokens import Span

ORG_NOUNS = {
    "center",
    "centre",
    "tank",
    "ministry",
    "agency",
    "institute",
    "group",
    "organization",
    "organisation",
    "company",
    "firm",
    "newspaper",
    "outlet",
    "government",
    "military",
    "army",
    "department",
    "committee",
    "council",
    "office",
    "service",
    "command",
    "administration",
    "team",
    "staff",
    "study",
    "report",
    "kremlin",
    "pentagon",
    "court",
    "commission",
    "party",
    "union",
    "bank",
    "network",
    "channel",
    "foundation",
    "watchdog",
    "body",
    "unit",
    "authorities",
    "authority",
}
PERSON_NOUNS = {
    "official",
    "spokesman",
    "spokeswoman",
    "spokesperson",
    "lawyer",
    "analyst",
    "expert",
    "minister",
    "commander",
    "resident",
    "woman",
    "man",
    "source",
    "diplomat",
    "president",
    "leader",
    "mayor",
    "governor",
    "general",
    "officer",
    "soldier",
    "head",
    "chief",
    "director",
    "researcher",
    "author",
    "journalist",
    "activist",
    "priest",
    "mother",
    "father",
    "wife",
    "husband",
    "volunteer",
    "deputy",
    "lawmaker",
    "senator",
    "politician",
    "professor",
    "economist",
    "blogger",
    "veteran",
    "recruit",
    "prisoner",
    "colonel",
    "sergeant",
    "speaker",
    "witness",
    "relative",
    "son",
    "daughter",
    "founder",
    "adviser",
    "advisor",
    "aide",
    "representative",
    "secretary",
    "ambassador",
    "chairman",
    "ceo",
}
FEMALE = {"she", "her"}
MALE = {"he", "him"}


@dataclass
class Mention:
    name: str
    kind: str  # 'PERSON' | 'ORG' | 'OTHER'
    sentence: int
    words: frozenset[str]


def mention_kind(span: Span) -> str:
    # An apposition says more than the NER label: "Dmitry Orlov, a lawyer, …" is a person.
    for child in span.root.children:
        if child.dep_ == "appos":
            if child.lower_ in PERSON_NOUNS:
                return "PERSON"
            if child.lower_ in ORG_NOUNS:
                return "ORG"
    labels = {t.ent_type_ for t in span if t.ent_type_}
    if "PERSON" in labels:
        return "PERSON"
    if labels & {"ORG", "GPE", "NORP", "FAC"}:
        return "ORG"
    head = span.root.lower_
    if head in PERSON_NOUNS:
        return "PERSON"
    if head in ORG_NOUNS:
        return "ORG"
    return "OTHER"


def is_named(span: Span) -> bool:
    """A source that names someone: a proper-noun head or a proper-noun modifier ("the Pentagon official"),
    not just a nationality adjective ("the Ukrainian center")."""
    root = span.root
    if root.pos_ == "PROPN" or root.ent_type_ in ("PERSON", "ORG", "GPE"):
        return True
    return any(t.pos_ == "PROPN" or t.ent_type_ in ("PERSON", "ORG", "GPE") for t in span)


class MentionTracker:
    """Named sources (and named people and organisations in the text) seen so far, newest last."""

    def __init__(self) -> None:
        self.sources: list[Mention] = []
        self.entities: list[Mention] = []
        # "SoftBank (group)" -> "SoftBank": a role is added to a name once, however often it is resolved to.
        self._named_in_role: dict[str, str] = {}

    def add_source(self, span: Span, sentence_index: int, name: str | None = None) -> None:
        text = name or span.text
        self.sources.append(
            Mention(text, mention_kind(span), sentence_index, frozenset(w.lower().strip("’'s") for w in text.split()))
        )

    def add_entities(self, sentence: Span, sentence_index: int) -> None:
        for ent in sentence.ents:
            if ent.label_ in ("PERSON", "ORG"):
                self.entities.append(
                    Mention(
                        ent.text,
                        "PERSON" if ent.label_ == "PERSON" else "ORG",
                        sentence_index,
                        frozenset(w.lower() for w in ent.text.split()),
                    )
                )

    def resolve(self, span: Span, sentence_index: int) -> str | None:
        """A name for a pronoun or definite description, or None to keep the words as written."""
        words = [t.lower_ for t in span]
        if len(span) == 1 and words[0] in ("he", "she", "him", "her"):
            return self._latest("PERSON", sentence_index, window=6)
        if len(span) == 1 and words[0] in ("it",):
            return self._latest("ORG", sentence_index, window=3)
        if len(span) == 1 and words[0] in ("they", "them"):
            return None
        if is_named(span):
            return None
        head = span.root.lower_
        # The description's head word inside a recent source's name: "the center" → "… Resistance Center".
        for mention in reversed(self.sources):
            if sentence_index - mention.sentence > 12:
                break
            if head in mention.words and mention.name.lower() != span.text.lower() and is_named_text(mention.name):
                return mention.name
        if head in ORG_NOUNS and head not in ("report", "study", "unit", "authorities"):
            name = self._latest("ORG", sentence_index, window=4)
            if name is None:
                return None
            name = self._named_in_role.get(name, name)
            role = " ".join(t.lower_ for t in span if t.dep_ == "compound" or t.i == span.root.i)
            in_role = f"{name} ({role})"
            self._named_in_role[in_role] = name
            return in_role
        return None

    def _latest(self, kind: str, sentence_index: int, window: int) -> str | None:
        for mention in reversed(self.sources):
            if sentence_index - mention.sentence > window:
                break
            if mention.kind == kind and is_named_text(mention.name):
                return mention.name
        for mention in reversed(self.entities):
            if sentence_index - mention.sentence > window:
                break
            if mention.kind == kind:
                return mention.name
        return None


def is_named_text(text: str) -> bool:
    return (
        any(w[:1].isupper() for w in text.split()[1:])
        or text[:1].isupper()
        and text.split()[0].lower() not in ("the", "a", "an", "one", "he", "she", "they", "it")
    )

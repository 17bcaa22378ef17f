"""Resolving "he", "the center", "the think tank" to the last compatible named source."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from spacy.tokens import Span, Token

from extractors.claims.genders import (
    GENDERED_WORDS,
    NAME_SUFFIXES,
    POSSESSIVE,
    PRONOUN_GENDER,
    Genders,
    stated_gender,
)
from extractors.claims.nlp import entities_in

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
    "manager",
    "attorney",
    "judge",
    "coach",
    "player",
    "singer",
    "actor",
    "actress",
    "executive",
    "doctor",
    "scientist",
    "candidate",
    "reporter",
    "writer",
    "student",
    "teacher",
}
# The words kept with a gendered noun that names someone: 'one mother', 'his wife', 'a 34-year-old woman'.
_DESCRIBING = ("det", "amod", "nummod", "compound", "poss")
# Determiners of a description that may name someone named before, and of one that brings in someone new.
_DEFINITE = {"the", "this", "that", "these", "those"}
_INDEFINITE = {"a", "an", "another", "other", "one", "some", "several", "many", "each", "every", "any", "no"}


@dataclass
class Mention:
    name: str
    kind: str  # 'PERSON' | 'ORG' | 'OTHER'
    sentence: int
    words: frozenset[str]
    # How likely a later "he" or "the group" is to mean it: a speaker 2.5, the subject of its sentence's main
    # clause 2, of another clause (or the owner of a subject: "Taylor Swift's albums") 1, anything else 0.
    salience: float = 0.0
    plural: bool = False
    gender: str | None = None  # as the words themselves say it ('a woman'); named people's is in Genders


def subject_salience(span: Span) -> float:
    root = span.root
    while root.dep_ == "appos" and root.head.i != root.i:
        # 'the immunologist De’Broski Herbert, …' and 'Her son, the filmmaker Oskar Berg, …' stand where
        # their heads stand
        root = root.head
    if root.dep_ == "poss" and root.head.dep_ in ("nsubj", "nsubjpass"):
        return 1.0
    if root.dep_ not in ("nsubj", "nsubjpass"):
        return 0.0
    clause = root.head
    main = clause.dep_ == "ROOT" or clause.dep_ == "conj" and clause.head.dep_ == "ROOT"
    return 2.0 if main else 1.0


def _plural(span: Span) -> bool:
    """'Harper and Buckley': no antecedent for 'he' or 'she'."""
    return any(t.dep_ == "conj" and t.head.i == span.root.i for t in span) or span.root.tag_ in ("NNS", "NNPS")


def mention_kind(span: Span) -> str:
    # An apposition or a relative pronoun says more than the NER label: "Dmitry Orlov, a lawyer, …" and
    # "Montell Figgins, who represents Thomas, …" are people.
    root = span.root
    for child in root.children:
        if child.dep_ == "relcl" and any(t.lower_ in ("who", "whom") for t in child.children):
            return "PERSON"
        if child.dep_ == "appos":
            if child.lower_ in PERSON_NOUNS or _describes_a_person(child):
                return "PERSON"
            if child.lower_ in ORG_NOUNS:
                return "ORG"
    if root.dep_ == "appos" and root.head.lower_ in PERSON_NOUNS:
        return "PERSON"  # "Sweden's deputy director of public prosecutions, Eva-Marie Persson"
    labels = {t.ent_type_ for t in span if t.ent_type_}
    if "PERSON" in labels:
        return "PERSON"
    head = root.lower_
    # A common noun at the head says what the whole is, whatever names modify it: "a Kremlin spokesman" is
    # a person, "Sweden's deputy director" too.
    if not root.ent_type_ and head in PERSON_NOUNS:
        return "PERSON"
    if labels & {"ORG", "GPE", "NORP", "FAC"}:
        return "ORG"
    if head in ORG_NOUNS:
        return "ORG"
    return "OTHER"


def person_roles(span: Span) -> frozenset[str]:
    """The role nouns a person's mention carries: in apposition ('Alexei Tabalov, a lawyer who …', 'The
    governor of Belgorod, Vyacheslav Gladkov') or before the name ('military analyst Michael Kofman')."""
    doc = span.doc
    root = span.root
    # Not a role of some body ('John Williams, the president of the Federal Reserve Bank of New York'): a
    # later 'the president' is more often the one everybody knows.
    roles = {c.lower_ for c in root.children if c.dep_ == "appos" and c.pos_ == "NOUN" and not _of_a_body(c)}
    if root.dep_ == "appos" and root.head.pos_ == "NOUN" and not _of_a_body(root.head):
        roles.add(root.head.lower_)
    i = span.start - 1
    while i >= 0 and doc[i].pos_ in ("NOUN", "ADJ") and doc[i].head.i in range(span.start, span.end + 1):
        i -= 1
    roles |= {t.lower_ for t in doc[i + 1 : span.end] if t.pos_ == "NOUN" and t.dep_ == "compound"}
    return frozenset(roles)


def _of_a_body(noun: Token) -> bool:
    return any(c.dep_ == "prep" and c.lower_ in ("of", "at", "for") for c in noun.children)


def _describes_a_person(noun: Token) -> bool:
    """'Alexei, a 41-year-old driver from Samara who signed a contract': an age, or a 'who' clause, makes
    whatever the noun is a person."""
    for child in noun.children:
        if child.dep_ == "relcl" and any(t.lower_ in ("who", "whom") for t in child.children):
            return True
        if child.dep_ in ("amod", "compound", "nummod") and "year" in {t.lower_ for t in child.subtree}:
            return True
    return False


def is_named(span: Span) -> bool:
    """A source that names someone: a proper-noun head or a proper-noun modifier ("the Pentagon official"),
    not just a nationality adjective ("the Ukrainian center")."""
    root = span.root
    if root.pos_ == "PROPN" or root.ent_type_ in ("PERSON", "ORG", "GPE"):
        return True
    return any(t.pos_ == "PROPN" or t.ent_type_ in ("PERSON", "ORG", "GPE") for t in span)


class MentionTracker:
    """Named sources (and named people and organisations in the text) seen so far, newest last."""

    def __init__(self, in_quote: Callable[[int], bool] = lambda _: False) -> None:
        # Names inside quotations are what someone said, not who is speaking: "“Putin lied,” he said.
        # He added …" is not Putin.
        self.in_quote = in_quote
        self.sources: list[Mention] = []
        self.entities: list[Mention] = []
        # "SoftBank (group)" -> "SoftBank": a role is added to a name once, however often it is resolved to.
        self._named_in_role: dict[str, str] = {}
        self._person_names: set[str] = set()  # last words of the people named so far
        self._genders = Genders()  # "she" skips a man named since
        # People the text names only by a gendered noun ('one mother', 'a woman'), with that gender: a 'she'
        # that no named person can be is one of them.
        self._described: list[Mention] = []
        # Named people with the role nouns the text gave them ('Alexei Tabalov, a lawyer', 'military analyst
        # Michael Kofman'): a later 'the lawyer' is that person when no one else had that role.
        self._roles: list[tuple[str, int, frozenset[str]]] = []

    def add_source(self, span: Span, sentence_index: int, name: str | None = None) -> None:
        text = name or span.text
        words = frozenset(POSSESSIVE.sub("", w.lower()) for w in text.split())
        if span.root.lower_ in ("he", "she"):
            kind = "PERSON"  # 'he said', resolved: the person it stands for speaks again
        elif span.root.lower_ == "it":
            kind = "ORG"
        else:
            kind = "PERSON" if self._known_person(span) else mention_kind(span)
        # A speaker outranks the subject of the same sentence: the story follows whoever is quoted.
        mention = Mention(text, kind, sentence_index, words, salience=2.5, plural=_plural(span))
        self.sources.append(mention)
        if kind == "PERSON" and text.lower() not in PRONOUN_GENDER:  # not a 'she' left unresolved
            self._genders.see(text, stated_gender(span))
            if is_named(span):
                self._note_roles(span, text, sentence_index)

    def add_entities(self, words: Span, sentence_index: int, subjects_only: bool = False) -> None:
        for ent in entities_in(words):
            if self.in_quote(ent.start_char):
                continue
            surname = _last_name_word(ent)
            person = ent.label_ == "PERSON" or self._known_person(ent) or mention_kind(ent) == "PERSON"
            if person and surname is not None and surname.i > ent.start:
                # a full name, not a lone word the tagger guessed at
                self._person_names.add(POSSESSIVE.sub("", surname.lower_))
            kind = "PERSON" if person else ent.label_
            if kind not in ("PERSON", "ORG"):
                continue
            if kind == "PERSON":
                self._genders.see(ent.text, stated_gender(ent))
                self._note_roles(ent, POSSESSIVE.sub("", ent.text), sentence_index)
            salience = subject_salience(ent)
            if subjects_only and not salience:
                continue
            self._add_entity(POSSESSIVE.sub("", ent.text), kind, sentence_index, salience, _plural(ent))
        # One pass over the words (each Token access builds an object); the three kinds are then taken in turn.
        proper, described, pronouns = [], [], []
        for token in words:
            if token.ent_type_:
                continue
            if token.pos_ == "PROPN":
                proper.append(token)
            elif token.pos_ == "NOUN" and token.lower_ in GENDERED_WORDS:
                described.append(token)
            elif token.lower_ in ("he", "she"):
                pronouns.append(token)
        for token in proper:
            one = token.doc[token.i : token.i + 1]
            if not self.in_quote(token.idx) and self._known_person(one) and (salience := subject_salience(one)):
                # The tagger missed a surname it knew before: 'Steenburgen approached the assignment …'
                self._add_entity(token.text, "PERSON", sentence_index, salience, False)
        for token in described:
            if self.in_quote(token.idx):
                continue
            modifiers = [c.i for c in token.children if c.dep_ in _DESCRIBING and c.i < token.i]
            phrase = token.doc[min(modifiers, default=token.i) : token.i + 1]
            salience = subject_salience(phrase)
            gender = GENDERED_WORDS[token.lower_]
            self._described.append(
                Mention(phrase.text, "PERSON", sentence_index, frozenset(), salience=salience, gender=gender)
            )
        # 'He was photographed with Epstein. He told the BBC …': a pronoun subject carries its person on.
        for token in pronouns:
            if not self.in_quote(token.idx) and subject_salience(token.doc[token.i : token.i + 1]) == 2.0:
                name = self._person_for(token.lower_, sentence_index)
                if name is not None:
                    self._add_entity(name, "PERSON", sentence_index, 2.0, False)

    def _note_roles(self, span: Span, name: str, sentence_index: int) -> None:
        roles = person_roles(span)
        if roles:
            self._roles.append((name, sentence_index, roles))

    def _person_in_role(self, role: str, sentence_index: int) -> str | None:
        """The one person the text has given this role, by their latest name, if named in the last 6 sentences
        (a role given long ago to someone not heard from since is no reference); None for none or two."""
        named = [(name, self._genders.person(name) or name) for name, _, roles in self._roles if role in roles]
        people = {person for _, person in named}
        if len(people) != 1:
            return None
        person = next(iter(people))
        recent = _recent(self.sources, sentence_index, 6) + _recent(self.entities, sentence_index, 6)
        heard = any(m.kind == "PERSON" and (self._genders.person(m.name) or m.name) == person for m in recent)
        return named[-1][0] if heard else None

    def _add_entity(self, name: str, kind: str, sentence_index: int, salience: float, plural: bool) -> None:
        words = frozenset(w.lower() for w in name.split())
        self.entities.append(Mention(name, kind, sentence_index, words, salience=salience, plural=plural))

    def _known_person(self, span: Span) -> bool:
        """A name whose last word ended a person's name earlier in the text ('Kurt Volker' … 'Volker'):
        the entity tagger often calls a lone surname an organisation, or nothing."""
        last = _last_name_word(span)
        return last is not None and last.pos_ == "PROPN" and POSSESSIVE.sub("", last.lower_) in self._person_names

    def resolve(self, span: Span, sentence_index: int) -> str | None:
        """A name for a pronoun or definite description, or None to keep the words as written."""
        words = [t.lower_ for t in span]
        if len(span) == 1 and words[0] in PRONOUN_GENDER:
            return self._person_for(words[0], sentence_index)
        if len(span) == 1 and words[0] in ("it",):
            # An organisation that spoke or acted: not one that only named a thing ('30 Boeing jets')
            actors = [m for m in self._candidates("ORG", sentence_index, window=3) if m.salience > 0]
            return _most_salient(actors, sentence_index).name if actors else None
        if len(span) == 1 and words[0] in ("they", "them"):
            return None
        if is_named(span):
            return None
        determiners = {t.lower_ for t in span.root.children if t.dep_ in ("det", "nummod", "amod")}
        if determiners & _INDEFINITE:
            return None  # "another study", "one study in 24 adults", "a group of employees": someone new
        head = span.root.lower_
        # The description's head word inside a recent source's name: "the center" → "… Resistance Center",
        # "the prosecutor's office" → "U.S. Attorney's Office …", "says Early" → "Chris Early" (a name the
        # tagger missed). Not a bare common noun: "scientists say" or "studies show" is anyone's.
        definite = determiners & _DEFINITE or any(t.dep_ == "poss" for t in span.root.children)
        # 'the ministry's report' is the ministry's, not an earlier 'report by Human Rights Watch'
        owners = {
            POSSESSIVE.sub("", t.lower_) for t in span.root.children if t.dep_ == "poss" and t.lower_ in ORG_NOUNS
        }
        for mention in reversed(self.sources):
            if sentence_index - mention.sentence > 12:
                break
            if (
                head in mention.words
                and owners <= mention.words
                and (definite or _names_the_same(span.root, mention.name))
                and mention.name.lower() != span.text.lower()
                and is_named_text(mention.name)
            ):
                return mention.name
        if (
            span.root.pos_ == "NOUN"
            and determiners & _DEFINITE
            and not owners
            and not any(c.dep_ in ("prep", "poss", "amod", "compound") for c in span.root.children)
            and (person := self._person_in_role(head, sentence_index)) is not None
        ):
            return person  # 'Alexei Tabalov, a lawyer who runs …' … 'The lawyer stated that …'
        role = " ".join(t.lower_ for t in span if t.dep_ == "compound" or t.i == span.root.i)
        if head in ORG_NOUNS and any(t.dep_ == "poss" and t.lower_ in ("his", "her") for t in span.root.children):
            # 'His office said': some person's office, not the last organisation named. Which person is left
            # open: a possessive often points back to someone merely mentioned ('Teachers didn't see Holcomb
            # at the Statehouse. His office said …'), whom speaker-first salience would pass over.
            return None
        # 'the British military' after the AP: a description that says whose it is names a body of its own
        own_place = any(t.ent_type_ in ("NORP", "GPE") for t in span if t.i != span.root.i)
        if head in ORG_NOUNS and head not in ("report", "study", "unit", "authorities") and not own_place:
            kind = _KIND_OF_BODY.get(head)
            candidates = [
                m
                for m in self._candidates("ORG", sentence_index, window=4)
                if _kind_word(m.name) in (None, kind)  # not 'Xinhua News Agency' for 'the commission'
            ]
            if not candidates:
                return None
            # 'The Defence Ministry has signed 100,000 contracts, the ministry said': a body the description
            # names by its head word, else the subject of the description's own sentence ('Wagner has
            # recruited prisoners, the company said'), outranks a more salient speaker of the sentences before.
            by_head = [m for m in candidates if head in m.words and len(m.words - {"the"}) > 1]
            if by_head:
                return _LEADING_THE.sub("", by_head[-1].name)  # the name says the role already
            own_sentence = [m for m in candidates if m.sentence == sentence_index and m.salience > 0]
            name = own_sentence[-1].name if own_sentence else _most_salient(candidates, sentence_index).name
            name = self._named_in_role.get(name, name)
            in_role = f"{name} ({role})"
            self._named_in_role[in_role] = name
            return in_role
        return None

    def _person_for(self, pronoun: str, sentence_index: int) -> str | None:
        """The person a 'he' or 'she' stands for. When only one person could be meant, the pronoun tells their
        gender for later ones; a guess among several doesn't (a wrong guess would then steer the rest)."""
        gender = PRONOUN_GENDER[pronoun]
        candidates = self._candidates("PERSON", sentence_index, window=6, gender=gender)
        if not candidates:
            # 'WIRED spoke to one mother, who … “I am so ahead of every other parent,” she said.'
            described = [m for m in _recent(self._described, sentence_index, 6) if m.gender == gender]
            # Only when one such person could be meant: 'one mother, who knew her teenage daughter …' leaves
            # a 'she' open, and salience among unnamed people is a guess.
            return described[0].name if len({m.name for m in described}) == 1 else None
        people = {self._genders.person(m.name) for m in candidates}
        if len(people) == 1 and None not in people:
            self._genders.learn(candidates[0].name, gender)
        return _most_salient(candidates, sentence_index).name

    def _latest(self, kind: str, sentence_index: int, window: int) -> str | None:
        candidates = self._candidates(kind, sentence_index, window)
        return _most_salient(candidates, sentence_index).name if candidates else None

    def _candidates(self, kind: str, sentence_index: int, window: int, gender: str | None = None) -> list[Mention]:
        """The compatible mentions of the last `window` sentences, oldest first. A person known to be of the
        other gender is none ("Steenburgen's son, Charlie McDowell, … she said": not McDowell)."""
        # An unnamed speaker counts only for a pronoun of the gender the text gave it: 'According to the woman
        # …. She said …'.
        candidates = [
            m
            for m in _recent(self.sources, sentence_index, window)
            if is_named_text(m.name) or gender is not None and self._genders.of(m.name) == gender
        ]
        candidates += _recent(self.entities, sentence_index, window)
        return [
            m
            for m in sorted(candidates, key=lambda m: m.sentence)
            if m.kind == kind
            and not (kind == "PERSON" and m.plural)
            and (gender is None or self._genders.of(m.name) in (None, gender))
        ]


_LEADING_THE = re.compile(r"^the\s+", re.IGNORECASE)


def _names_the_same(word: Token, name: str) -> bool:
    """A capitalised word that is a name or its later word: 'Petrides' in 'John Petrides', 'Trump' (the tagger
    missed them as names); not 'Officials' in 'Beijing officials' or 'Officials in Beijing'."""
    words = [POSSESSIVE.sub("", w) for w in name.split()]
    return word.is_title and word.text in (words if len(words) == 1 else words[1:])


# Kinds of body a description or a name's last word can say: 'the agency' may be the 'Congressional Budget
# Office', 'the group' the 'Tax Policy Center', but 'the commission' is not 'Xinhua News Agency' and 'the
# agency' not 'Goddard Space Flight Center'.
_KINDS = {
    "public": "ministry agency department office service administration commission committee council authority "
    "government command court military army pentagon",
    # 'the Kremlin' is the presidency, not 'the ministry' a text has not named
    "presidency": "kremlin presidency",
    "organisation": "group organization organisation center centre institute tank foundation watchdog body union "
    "party team staff",
    "business": "company firm bank",
    "media": "newspaper outlet network channel",
}
_KIND_OF_BODY = {word: kind for kind, words in _KINDS.items() for word in words.split()}


def _kind_word(name: str) -> str | None:
    """The kind of body a name says it is by its last word ('Xinhua News Agency' → media, 'Goddard Space Flight
    Center' → organisation); None for 'CBP' or 'Amnesty International'."""
    words = [POSSESSIVE.sub("", w).lower() for w in name.split()]
    if not words or words[-1] not in _KIND_OF_BODY:
        return None
    return "media" if len(words) > 1 and words[-2] == "news" else _KIND_OF_BODY[words[-1]]


def _most_salient(candidates: list[Mention], sentence_index: int) -> Mention:
    """Each sentence back costs 1, being a speaker or a subject earns up to 2.5 ("Braun has worked with stars
    Taylor Swift feuded with. He has denied …": Braun), and of equals the later one wins."""
    best = candidates[0]
    best_score = float("-inf")
    for mention in candidates:
        score = mention.salience - (sentence_index - mention.sentence)
        if score >= best_score:
            best, best_score = mention, score
    return best


def _last_name_word(span: Span) -> Token | None:
    """The last word of a name, not its possessive ending or a generation ("Taylor Swift's" → "Swift",
    "Patrick Carlineo Jr." → "Carlineo")."""
    words = [
        t
        for t in span
        if t.tag_ != "POS" and t.lower_ not in ("'s", "’s", "'", "’", ",") and t.lower_ not in NAME_SUFFIXES
    ]
    return words[-1] if words else None


def _recent(mentions: list[Mention], sentence_index: int, window: int) -> list[Mention]:
    """The mentions of the last `window` sentences (the list is in text order), oldest first."""
    start = len(mentions)
    while start > 0 and sentence_index - mentions[start - 1].sentence <= window:
        start -= 1
    return mentions[start:]


def is_named_text(text: str) -> bool:
    return (
        any(w[:1].isupper() for w in text.split()[1:])
        or text[:1].isupper()
        and text.split()[0].lower() not in ("the", "a", "an", "one", "he", "she", "they", "it")
    )

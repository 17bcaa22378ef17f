"""Amounts in a claim: numbers, number words, fractions, money, percent, ranges; with the counted noun.

Calendar dates, years, clock times and ordinals are not quantities; durations ("for eight years",
"up to 10 years") are.
"""

from __future__ import annotations

import re

from spacy.tokens import Doc, Span

from extractors.records import Quantity

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {
    "dozen": 12,
    "hundred": 100,
    "thousand": 1_000,
    "million": 1_000_000,
    "billion": 1_000_000_000,
    "trillion": 1_000_000_000_000,
    "bn": 1_000_000_000,
    "mln": 1_000_000,
    "mn": 1_000_000,
    "tn": 1_000_000_000_000,
    "trn": 1_000_000_000_000,
}
_FRACTIONS = {
    "half": 2,
    "halves": 2,
    "third": 3,
    "thirds": 3,
    "quarter": 4,
    "quarters": 4,
    "fifth": 5,
    "fifths": 5,
    "tenth": 10,
    "tenths": 10,
}
_CURRENCY_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "₽": "RUB", "₴": "UAH"}
_CURRENCY_WORDS = {
    "dollars": "USD",
    "dollar": "USD",
    "euros": "EUR",
    "euro": "EUR",
    "pounds": "GBP",
    "rubles": "RUB",
    "roubles": "RUB",
    "ruble": "RUB",
    "rouble": "RUB",
    "hryvnias": "UAH",
    "hryvnia": "UAH",
    "hryvnas": "UAH",
}
_PERCENT = re.compile(r"^\s*(%|percent\b|per cent\b|percentage points?\b|pc\b)", re.I)
_TIME_UNITS = {
    "year",
    "years",
    "month",
    "months",
    "week",
    "weeks",
    "day",
    "days",
    "hour",
    "hours",
    "decade",
    "decades",
    "minute",
    "minutes",
}
_MEASURE_UNITS = {
    "miles",
    "mile",
    "km",
    "kilometres",
    "kilometers",
    "kilometre",
    "kilometer",
    "metres",
    "meters",
    "tons",
    "tonnes",
    "kg",
    "kilograms",
    "square",
}

_WORD_NUM = "|".join(sorted(list(_UNITS) + list(_TENS), key=len, reverse=True))
_NUMBER = re.compile(
    r"(?<![\w.,-])(?P<cur>US\$|[$€£₽₴])?\s?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|"
    rf"(?:(?:{_WORD_NUM})(?:[- ](?:{_WORD_NUM}))?(?:\s+(?:hundred|thousand|million|billion)(?:\s+and)?)*"
    # "a dozen" is 12 and "two dozen" 24; "dozens" and "several dozen" name no number.
    rf"(?:\s+(?:{_WORD_NUM})(?:[- ](?:{_WORD_NUM}))?)?)|a\s+dozen(?!s))"
    # '$1.2bn', '£300m', '1.5tn roubles': the scale written onto the number, as the British press does
    r"(?P<scale>\s+(?:hundred|thousand|million|billion|trillion|bn|mln|dozen)\b|(?:bn|mn|mln|tn|trn|[mbk])\b)?",
    re.I,
)
_FRACTION = re.compile(
    rf"\b(?P<n>a|one|two|three|four|{_WORD_NUM})[- ](?P<d>half|halves|thirds?|quarters?|fifths?|tenths?)\b"
    # 'half of the recruits', 'nearly half the men': a bare 'half' that takes a share of something
    r"|\b(?P<bare>half)(?=\s+(?:of|the|their|its|his|her|our|all)\b)",
    re.I,
)
# 'one in five recruits', '1 in 4 men': a share written as a ratio
_ONE_IN = re.compile(
    rf"\b(?P<n>\d{{1,3}}|{_WORD_NUM})\s+in\s+(?:every\s+)?(?P<d>\d{{1,3}}(?:,\d{{3}})?|{_WORD_NUM})\b(?![.,]\d)",
    re.I,
)
_PART_BEFORE = re.compile(
    r"\b(?:the|a|first|second|upper|lower|top|bottom|other|back|front|latter|former|last|this|that|each|every)\s+$",
    re.I,
)
_ORDINAL_SUFFIX = re.compile(r"^\d+(st|nd|rd|th)$", re.I)
_TIME = re.compile(r"^\d{1,2}[:.]\d{2}$")
_MONTHS = {
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}


def words_to_number(text: str) -> float | None:
    text = text.lower().replace("-", " ").replace(" and ", " ").strip()
    if text in ("a dozen", "dozen"):
        return 12.0
    total = current = 0
    seen = False
    for word in text.split():
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
        else:
            return None
        seen = True
    return float(total + current) if seen else None


def _parse_number(raw: str) -> float | None:
    raw = raw.strip()
    if raw[0].isdigit():
        try:
            return float(raw.replace(",", ""))
        except ValueError:
            return None
    return words_to_number(raw)


def _tokens_in(doc: Doc, start: int, end: int):
    span = doc.char_span(start, end, alignment_mode="expand")
    return list(span) if span is not None else []


def _is_calendar(doc: Doc, start: int, end: int, raw: str, value: float) -> bool:
    tokens = _tokens_in(doc, start, end)
    if not tokens:
        return False
    first, last = tokens[0], tokens[-1]
    nxt = doc[last.i + 1] if last.i + 1 < len(doc) else None
    prev = doc[first.i - 1] if first.i > 0 else None
    if _ORDINAL_SUFFIX.match(first.text) or first.ent_type_ == "ORDINAL":
        return True
    if _TIME.match(first.text) or first.ent_type_ == "TIME" and not (nxt is not None and nxt.lower_ in _TIME_UNITS):
        return True
    is_year = raw.isdigit() and len(raw) == 4 and 1800 <= value <= 2100
    if is_year and not (nxt is not None and nxt.pos_ == "NOUN" and nxt.tag_ == "NNS" and nxt.lower_ not in _TIME_UNITS):
        return True
    neighbours = {t.lower_.rstrip(".") for t in (prev, nxt) if t is not None}
    if raw.isdigit() and value <= 31 and neighbours & _MONTHS:
        return True  # "24 May", "May 20"
    if first.ent_type_ == "DATE":
        # Durations are quantities; calendar references are not. The tagger also labels plain amounts
        # near time words as DATE ("between 20 and 40 percent"): an amount of something counts.
        after = last.whitespace_ + doc[last.i + 1 : last.i + 6].text  # cheap: Doc.text rebuilds the string
        if _PERCENT.match(after) or re.match(r"\s+(and|to|or)\s+\d[\d,.]*\s*(%|percent|per cent)", after):
            return False
        if (
            nxt is not None
            and nxt.pos_ == "NOUN"
            and nxt.lower_ not in _TIME_UNITS
            and nxt.lower_.rstrip(".") not in _MONTHS
        ):
            return False
        if raw.isdigit() and value <= 120 and _is_age(doc, first):
            return False  # the tagger calls ages dates: 'men up to age 50', 'aged between 18 and 60'
        return not (nxt is not None and nxt.lower_ in _TIME_UNITS)
    return False


_AGE_WORDS = {"age", "ages", "aged"}


def _is_age(doc: Doc, number) -> bool:
    """A bare number the tagger put in a DATE that is someone's age: 'up to age 50', 'aged 18 to 30', 'over
    45' (a number and nothing after it), 'He is 52'."""
    nxt = doc[number.i + 1] if number.i + 1 < len(doc) else None
    if nxt is not None and (nxt.lower_ in _TIME_UNITS or nxt.lower_.rstrip(".") in _MONTHS):
        return False  # 'over 45 days', '5 May'
    before = [t.lower_ for t in doc[max(0, number.i - 4) : number.i]]
    if _AGE_WORDS & set(before):
        return True
    head = number.head if number.dep_ != "conj" else number.head.head
    if head.lower_ in ("over", "under") and head.i == number.i - 1:
        return True
    # the lemmatizer is off: the forms of 'be'
    return number.dep_ == "attr" and head.lower_ in ("is", "was", "are", "were", "’s", "'s", "be", "been")


def _counted(doc: Doc, start: int, end: int, unit: str | None) -> str | None:
    tokens = _tokens_in(doc, start, end)
    if not tokens:
        return None
    token = tokens[-1]
    while token.head.i != token.i and token.head.pos_ == "NUM" and token.head.i > token.i:
        token = token.head
    for child in token.children:  # "eight of the 11 volunteers", "40 percent of personnel"
        if child.lower_ == "of":
            for obj in child.children:
                if obj.dep_ == "pobj" and obj.pos_ in ("NOUN", "PROPN", "PRON"):
                    return obj.lower_
    head = token.head
    if (
        head.i != token.i
        and head.pos_ in ("NOUN", "PROPN")
        and token.dep_ in ("nummod", "quantmod", "compound", "amod", "nmod", "predet")
    ):
        if head.lower_ in ("percent", "%"):
            for child in head.children:
                if child.lower_ == "of":
                    objs = [o for o in child.children if o.dep_ == "pobj"]
                    if objs:
                        return objs[0].lower_
            return None
        if unit and head.lower_ in _CURRENCY_WORDS:
            return None
        return head.lower_
    nxt = doc[tokens[-1].i + 1] if tokens[-1].i + 1 < len(doc) else None
    if nxt is not None and nxt.pos_ == "NOUN" and nxt.lower_ not in ("percent",):
        return nxt.lower_
    return None


def _unit_after(text: str, end: int) -> tuple[str | None, int]:
    tail = text[end : end + 40]
    match = _PERCENT.match(tail)
    if match:
        return "percent", end + match.end()
    word = re.match(r"\s+([A-Za-z]+)", tail)
    if word:
        lowered = word.group(1).lower()
        if lowered in _CURRENCY_WORDS:
            return _CURRENCY_WORDS[lowered], end + word.end()
        if lowered in _TIME_UNITS or lowered in _MEASURE_UNITS:
            return (lowered if lowered.endswith("s") else lowered + "s"), end
    return None, end


def extract_quantities(doc: Doc, span: Span, text: str | None = None) -> list[Quantity]:
    """Quantities within ``span`` (a sentence or clause of ``doc``), in text order. ``text`` is
    ``doc.text`` when the caller has it (spaCy rebuilds that string on every access)."""
    text = text if text is not None else doc.text
    base = span.start_char
    segment = text[base : span.end_char]
    found: list[tuple[int, int, Quantity]] = []
    taken: list[tuple[int, int]] = []
    for match in _FRACTION.finditer(segment):
        if match.group("bare") and _PART_BEFORE.search(segment, 0, match.start()):
            continue  # 'the first half of 2020', 'the upper half of the laptop': a part, not a share
        n, d = (match.group("n") or "a").lower(), (match.group("d") or match.group("bare")).lower()
        numerator = 1 if n in ("a", "one") else (words_to_number(n) or 1)
        value = round(numerator / _FRACTIONS[d], 4)
        start, end = base + match.start(), base + match.end()
        found.append((start, end, Quantity(value, "fraction", _counted(doc, start, end, None), match.group(0))))
        taken.append((start, end))
    for match in _ONE_IN.finditer(segment):
        numerator, denominator = _parse_number(match.group("n")), _parse_number(match.group("d"))
        if not numerator or not denominator or numerator >= denominator:
            continue  # '3 in 2' is no share
        start, end = base + match.start(), base + match.end()
        counted = _counted(doc, base + match.start("d"), end, None)
        found.append((start, end, Quantity(round(numerator / denominator, 4), "fraction", counted, match.group(0))))
        taken.append((start, end))
    for match in _NUMBER.finditer(segment):
        start = base + (match.start("cur") if match.group("cur") else match.start("num"))
        end = base + match.end()
        if any(s < end and start < e for s, e in taken):
            continue
        raw = match.group("num")
        if raw.lower() in ("one", "a dozen") and not match.group("scale") and not match.group("cur"):
            # "one" is more often a pronoun or determiner ("one speaker", "one shouldn't") than an amount.
            nxt = text[end : end + 12].lower()
            if raw.lower() == "one" and not _PERCENT.match(nxt):
                continue
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "-/") and not match.group("cur"):
            continue  # part of a word or an identifier ("Su-25", "F-16", "4/5")
        value = _parse_number(raw)
        if value is None:
            continue
        num_start = base + match.start("num")
        if _is_calendar(doc, num_start, base + match.end("num"), raw, value):
            continue
        scale = (match.group("scale") or "").strip().lower()
        if scale:
            value *= {"m": 1_000_000, "b": 1_000_000_000, "k": 1_000}.get(scale, _SCALES.get(scale, 1))
        unit = _CURRENCY_SYMBOLS.get(match.group("cur") or "")
        after_unit, unit_end = _unit_after(text, end)
        unit = unit or after_unit
        end = max(end, unit_end)
        # 'two dozen recruits': the parser makes 'dozen' the number's head, so read past it.
        counted = _counted(doc, num_start, base + match.end("scale" if scale == "dozen" else "num"), unit)
        found.append((start, end, Quantity(round(value, 6), unit, counted, text[start:end].strip())))
        taken.append((start, end))
    found.sort(key=lambda item: item[0])
    return _share_range_units([(s, e, q) for s, e, q in found], text)


def _share_range_units(found, text: str) -> list[Quantity]:
    """'between 20 and 40 percent', '20-40%': the unit written once belongs to both ends."""
    out = [q for _, _, q in found]
    for i in range(len(found) - 1):
        (_s1, e1, q1), (s2, _e2, q2) = found[i], found[i + 1]
        gap = text[e1:s2].strip().lower()
        if gap in ("and", "to", "-", "–", "or") and q1.unit is None and q2.unit not in (None, "fraction"):
            out[i] = Quantity(q1.value, q2.unit, q2.counted, q1.text)
        if gap in ("and", "to", "-", "–", "or") and q1.counted is None and q2.counted:
            out[i] = Quantity(out[i].value, out[i].unit, q2.counted, out[i].text)
    return out

"""Quotation spans, including quotes that run across sentences and paragraphs.

News convention: a quote continued into the next paragraph leaves its closing mark off and opens the
next paragraph with a fresh opening mark. A paragraph that opens a quote and never closes it, with no
continuation, is treated as quoted up to its end ("closed=False": its own attribution may sit inside).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

OPEN, CLOSE, STRAIGHT = "“", "”", '"'
TWO_APOSTROPHES = "''"
CLOSING_MARKS = (CLOSE, STRAIGHT, TWO_APOSTROPHES)  # what can close a quotation, as tokens
_MARK = re.compile(f"[{OPEN}{CLOSE}{STRAIGHT}]|{TWO_APOSTROPHES}")


@dataclass(frozen=True)
class Quote:
    start: int
    end: int
    closed: bool


def paragraphs(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for line in text.split("\n"):
        if line.strip():
            lead = len(line) - len(line.lstrip())
            spans.append((pos + lead, pos + len(line.rstrip())))
        pos += len(line) + 1
    return spans


def quote_spans(text: str) -> list[Quote]:
    quotes: list[Quote] = []
    paras = paragraphs(text)
    open_at: int | None = None
    for index, (start, end) in enumerate(paras):
        straight_open = False
        for mark in _MARK.finditer(text, start, end):
            pos = mark.start()
            # ''…'': wire and archive copy writes a straight quote as two apostrophes
            ch = STRAIGHT if mark.group() == TWO_APOSTROPHES else mark.group()
            if ch == OPEN or (ch == STRAIGHT and not straight_open and open_at is None):
                if open_at is None:
                    open_at = pos
                straight_open = ch == STRAIGHT
            elif (ch in (CLOSE, STRAIGHT)) and open_at is not None:
                quotes.append(Quote(open_at, mark.end(), True))
                open_at = None
                straight_open = False
        if open_at is not None:
            following = paras[index + 1] if index + 1 < len(paras) else None
            continues = following is not None and (
                text[following[0]] in (OPEN, STRAIGHT) or text.startswith(TWO_APOSTROPHES, following[0])
            )
            if continues:
                continue  # the quote goes on in the next paragraph, which re-opens it
            quotes.append(Quote(open_at, end, False))
            open_at = None
    return quotes


class QuoteIndex:
    def __init__(self, quotes: list[Quote]):
        self.closed = sorted((q.start, q.end) for q in quotes if q.closed)
        self.starts = [s for s, _ in self.closed]
        self.all = quotes

    def inside_closed(self, pos: int) -> bool:
        i = bisect.bisect_right(self.starts, pos) - 1
        return i >= 0 and self.closed[i][0] < pos < self.closed[i][1]

    def overlapping(self, start: int, end: int) -> list[Quote]:
        return [q for q in self.all if q.start < end and start < q.end]

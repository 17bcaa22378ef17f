"""Identity of articles: canonical URLs, exact content hashes and 64-bit simhash signatures."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from courlan import normalize_url

_MOBILE_OR_WWW = re.compile(r"^(?:www\d?|m|mobile|amp)\.", re.I)
_WORD = re.compile(r"\w+", re.UNICODE)
SIMHASH_BITS = 64
NEAR_DUPLICATE_DISTANCE = 6
# The simhash index keys every article on its four 16-bit blocks. Two simhashes at most 7 bits apart
# differ in at most one bit in some block (pigeonhole: two bits in each of four blocks is eight), so a
# lookup that probes each block's value and its 16 one-bit neighbours misses no near duplicate. A
# stored article shares one of those 68 keys by chance about once in 964, against once in 32 for an
# exact match on 8-bit bands, which needed eight keys per article instead of four.
SIMHASH_BLOCKS = 4
BLOCK_BITS = SIMHASH_BITS // SIMHASH_BLOCKS
assert NEAR_DUPLICATE_DISTANCE < 2 * SIMHASH_BLOCKS, "a lookup within one bit per block would miss near copies"


def canonical_url(url: str, page_canonical: str | None = None) -> str:
    """The URL an article is known by: the page's rel=canonical when it is usable, else the URL.

    courlan drops tracking parameters (utm_*, fbclid, …) and fragments and normalises case and
    ports; we also fold ``www.``/``m.``/``amp.`` hosts so mobile and desktop copies meet.
    """
    chosen = url
    if page_canonical and page_canonical.startswith(("http://", "https://")):
        chosen = page_canonical
    try:
        normalized = normalize_url(chosen, strict=True, trailing_slash=False)
    except Exception:  # courlan raises on hosts it cannot parse; keep the raw URL then
        normalized = chosen
    parts = urlsplit(normalized)
    host = _MOBILE_OR_WWW.sub("", parts.netloc.lower())
    path = parts.path or "/"
    if path != "/" and path.endswith("/"):
        path = path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), host, path, parts.query, ""))


def normalized_text(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def content_hash(text: str) -> str:
    """SHA-256 of the text with case, punctuation and whitespace folded."""
    return hashlib.sha256(normalized_text(text).encode("utf-8")).hexdigest()


def simhash(text: str, shingle: int = 3) -> int:
    """Charikar simhash over word 3-shingles, as a signed 64-bit integer (fits BIGINT)."""
    words = normalized_text(text).split()
    if not words:
        return 0
    grams = [" ".join(words[i : i + shingle]) for i in range(max(1, len(words) - shingle + 1))]
    digests = b"".join(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest() for g in grams)
    # One row of 64 bits per shingle (big-endian bytes, bit 63 first); vote per column.
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8).reshape(len(grams), 8), axis=1)
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - len(grams)
    value = 0
    for position, vote in enumerate(votes):
        if vote > 0:
            value |= 1 << (63 - position)
    return value - (1 << 64) if value >= (1 << 63) else value


def simhash_blocks(value: int) -> list[int]:
    """The four 16-bit blocks of a simhash, lowest bits first: the keys it is stored under."""
    unsigned = value & ((1 << SIMHASH_BITS) - 1)
    mask = (1 << BLOCK_BITS) - 1
    return [(unsigned >> (i * BLOCK_BITS)) & mask for i in range(SIMHASH_BLOCKS)]


def simhash_probes(value: int) -> list[list[int]]:
    """Per block, the keys a lookup reads: the block itself and every value one bit away from it."""
    return [[block] + [block ^ (1 << bit) for bit in range(BLOCK_BITS)] for block in simhash_blocks(value)]


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


def is_near_duplicate(a: int, b: int, max_distance: int = NEAR_DUPLICATE_DISTANCE) -> bool:
    return hamming(a, b) <= max_distance

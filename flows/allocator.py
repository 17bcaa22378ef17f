"""Keep a long-running worker's resident memory at what it holds, not at what it once held.

Parsing a batch allocates large temporary arrays. glibc's malloc raises its mmap threshold each time
such an array is freed, so later ones come from the heap, where freed space stays resident and
fragments: a worker's peak then creeps up with the number of batches it has seen. A fixed threshold
keeps big arrays in their own mappings (returned to the system when freed), and trimming after each
batch hands back the heap pages that small objects left free. Elsewhere than glibc both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, here kept fixed


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


@lru_cache(maxsize=1)
def configure_for_batches() -> bool:
    """Fix the mmap threshold for this process (once). Returns whether the allocator took it."""
    libc = _glibc()
    return bool(libc and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (after a batch, when little is live)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)

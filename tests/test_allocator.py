"""The worker's allocator settings: freed batch memory goes back to the system (glibc, as on Linux)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json
from flows.allocator import release_free_memory

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

before = rss_mib()
blocks = [bytes(2000) for _ in range(40_000)]  # ~80 MiB in blocks too big for Python's small-object pool
kept = blocks[::10]  # every tenth survives, so the freed space is full of holes
del blocks
held = rss_mib()
released = release_free_memory()
print(json.dumps({"released": released, "before": before, "held": held, "after": rss_mib()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim; a no-op elsewhere")
def test_freed_heap_is_returned_after_a_batch():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout)
    assert probe["released"] is True
    freed = probe["held"] - probe["before"]
    assert freed > 50  # the holes really were resident
    assert probe["held"] - probe["after"] > 0.5 * freed

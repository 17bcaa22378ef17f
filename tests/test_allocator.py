"""The worker's allocator settings: freed batch memory goes back to the system (glibc, as on Linux)."""

from __future__ import annotations

import json
import os
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


ARENA_PROBE = """
import ctypes, json, sys, tempfile, threading
from flows.allocator import limit_malloc_arenas

limited = limit_malloc_arenas() if sys.argv[1] == "limit" else None
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
ready = threading.Barrier(4)

def allocate():
    libc.malloc(4096)  # a thread's first malloc is when glibc hands it an arena
    ready.wait()  # all four alive at once, so none can take over another's arena

threads = [threading.Thread(target=allocate) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    out = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, out)
    libc.fclose(out)
    heaps = open(report.name).read().count("<heap nr=")
print(json.dumps({"limited": limited, "heaps": heaps}))
"""


def env_without_arena_setting() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}


def arena_probe(mode: str) -> dict:
    env = env_without_arena_setting()
    out = subprocess.run([sys.executable, "-c", ARENA_PROBE, mode], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_worker_threads_share_one_malloc_arena():
    # Each arena keeps its own partly used pages: with one per thread a backfill's free-but-resident
    # memory crept up batch after batch.
    assert arena_probe("default")["heaps"] > 1
    probe = arena_probe("limit")
    assert probe == {"limited": True, "heaps": 1}


def test_the_arena_limit_reaches_processes_the_cli_starts():
    env = env_without_arena_setting()
    code = "import os, flows.cli; flows.cli._prepare_run(); print(os.environ['MALLOC_ARENA_MAX'])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.strip() == "1"
    env["MALLOC_ARENA_MAX"] = "4"  # a user's own choice stands
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.strip() == "4"

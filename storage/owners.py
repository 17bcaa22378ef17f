"""Which process holds a row: a queue claim, a run lease, a run in progress, as ``host:pid``.

A row whose holder is a process on this host that no longer exists (killed, crashed, out of memory)
can be taken back at once. A holder on another host cannot be checked from here: claims and leases of
other hosts expire with time instead, and their runs are closed when their heartbeat stops
(storage/runs.py).
"""

from __future__ import annotations

import os
import socket


def process_owner() -> str:
    """This process, as rows name their holder."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def owner_is_local(owner: str | None) -> bool:
    """True for a holder on this host, whose process can be checked from here."""
    return (owner or "").rpartition(":")[0] == socket.gethostname()


def owner_is_gone(owner: str | None) -> bool:
    """True only for a holder on this host whose process no longer exists."""
    pid = (owner or "").rpartition(":")[2]
    return owner_is_local(owner) and pid.isdigit() and not pid_alive(int(pid))

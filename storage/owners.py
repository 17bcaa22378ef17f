"""Which process holds a row: a queue claim, a run lease, a run in progress, as ``host:pid``.

A row whose holder is a process on this host that no longer exists (killed, crashed, out of memory)
can be taken back at once. A holder on another host cannot be checked from here: claims and leases of
other hosts expire with time instead, and their runs stay as they are until their own host looks.
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


def owner_is_gone(owner: str | None) -> bool:
    """True only for a holder on this host whose process no longer exists."""
    host, _, pid = (owner or "").rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))

"""Run leases in the database: how a scheduled run sees that the previous one is still going,
whichever process or machine runs it."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import Engine, delete, select, update

from storage.clock import database_now
from storage.models import Lease
from storage.owners import owner_is_gone, process_owner
from storage.writes import insert_ignore

# The run holding a lease renews it with each heartbeat, every minute (flows/runtime.py::recorded_run), so
# it lasts as long as the run; a holder that stopped without releasing it (a machine gone, whose process
# cannot be checked from here) blocks the next runs this long at most, as its run is closed after the same
# silence (storage/runs.py::RUN_SILENT_AFTER).
LEASE_TTL = timedelta(minutes=10)


class LeaseBusy(RuntimeError):
    pass


def try_acquire(engine: Engine, name: str) -> bool:
    with engine.begin() as conn:
        now = database_now(conn)  # not this host's clock: holders on other hosts judge the lease by it
        row = conn.execute(select(Lease.__table__).where(Lease.name == name)).first()
        if row is not None and (row.expires_at < now or owner_is_gone(row.holder)):
            conn.execute(delete(Lease).where(Lease.name == name, Lease.holder == row.holder))
        inserted = insert_ignore(
            conn, Lease.__table__, [{"name": name, "holder": process_owner(), "expires_at": now + LEASE_TTL}], ["name"]
        )
        return inserted == 1


def acquire(engine: Engine, name: str, *, wait: bool, timeout_s: float = 3600, poll_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not try_acquire(engine, name):
        if not wait or time.monotonic() > deadline:
            raise LeaseBusy(f"another {name} run is in progress")
        time.sleep(poll_s)


def renew(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Lease)
            .where(Lease.name == name, Lease.holder == process_owner())
            .values(expires_at=database_now(conn) + LEASE_TTL)
        )


def release(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(Lease).where(Lease.name == name, Lease.holder == process_owner()))

"""runs record when their process last said it was alive

A run's process on another host cannot be checked from here (storage/owners.py), so a run whose
machine stopped for good stayed 'running' for good on a shared database. A run in progress now
writes ``heartbeat_at`` every minute (storage/runs.py::RunHeartbeat), and any host's next run closes a
run it has not heard from for ten minutes as failed. ``v_runs`` shows the column, so a dashboard can
tell a run in progress from one gone quiet. Runs from before count from their start.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 02:10:00
"""

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# v_runs before and after this revision. SQLite drops a column by copying the table, which a view over
# it would block, so the view goes for the moment of the change either way.
V_RUNS_0006 = """
CREATE VIEW v_runs AS
SELECT id AS run_id, kind, started_at, finished_at, status, feeds_polled, articles_new,
       articles_failed, claims_new
FROM runs
"""
V_RUNS_0007 = """
CREATE VIEW v_runs AS
SELECT id AS run_id, kind, started_at, finished_at, status, feeds_polled, articles_new,
       articles_failed, claims_new, heartbeat_at
FROM runs
"""


def upgrade() -> None:
    op.add_column("runs", sa.Column("heartbeat_at", storage.types.UTCDateTime(timezone=True), nullable=True))
    op.execute("DROP VIEW v_runs")
    op.execute(V_RUNS_0007)


def downgrade() -> None:
    op.execute("DROP VIEW v_runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
    op.execute(V_RUNS_0006)

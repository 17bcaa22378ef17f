"""runs record the process running them

A run killed outright (SIGKILL, the OOM killer, a reboot) never recorded how it ended and stayed
'running' for good. Each run now records its process as ``host:pid`` (storage/owners.py), and the next
run on that host closes such runs as failed (storage/runs.py::close_abandoned_runs). Runs from before
have no owner and are left as they are.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 22:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("owner", sa.String(length=128), nullable=True))


# v_runs as of this revision (unchanged since 0001). SQLite drops a column by copying the table, which
# a view over it would block, so the view goes for the moment of the copy.
V_RUNS = """
CREATE VIEW v_runs AS
SELECT id AS run_id, kind, started_at, finished_at, status, feeds_polled, articles_new,
       articles_failed, claims_new
FROM runs
"""


def downgrade() -> None:
    op.execute("DROP VIEW v_runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("owner")
    op.execute(V_RUNS)

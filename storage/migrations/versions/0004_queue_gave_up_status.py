"""queue rows that gave up leave the 'failed' status

A URL that failed ``max_attempts`` times kept the queue status 'failed', next to the ones waiting for a
retry, and the part of every claim that looks for due retries walked all of them (O(failures given up)
per claim, growing for as long as a deployment runs). Such rows now get the status 'gave_up'
(storage/queue.py::record_url_failure); this moves the rows that gave up before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 19:10:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GAVE_UP_URLS = "SELECT target FROM failures WHERE kind = 'url' AND gave_up = 1 AND resolved_at IS NULL"


def upgrade() -> None:
    op.execute(f"UPDATE fetch_queue SET status = 'gave_up' WHERE status = 'failed' AND url IN ({GAVE_UP_URLS})")


def downgrade() -> None:
    op.execute("UPDATE fetch_queue SET status = 'failed' WHERE status = 'gave_up'")

"""fetch queue claimed through a (status, id) index

A claim asked for the lowest ids among pending rows, stale claims and due failures in one OR. Both
databases answered it by gathering every matching row (SQLite's multi-index OR, PostgreSQL's bitmap OR)
and sorting them to return the first 50, so each claim read the whole pending queue: a 10,000-URL
backfill read ~50 million queue rows in all, and each worker's SQLite page cache filled with them.
Claims now query one status at a time (storage/queue.py) down this index, which hands the rows over in
id order, so a claim reads about as many rows as it takes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 01:05:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_INDEX = "ix_fetch_queue_status"
NEW_INDEX = "ix_fetch_queue_status_id"


def upgrade() -> None:
    op.create_index(NEW_INDEX, "fetch_queue", ["status", "id"], unique=False)
    op.drop_index(OLD_INDEX, table_name="fetch_queue")


def downgrade() -> None:
    op.create_index(OLD_INDEX, "fetch_queue", ["status"], unique=False)
    op.drop_index(NEW_INDEX, table_name="fetch_queue")

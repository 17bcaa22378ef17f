"""simhash bands carry their article's simhash

Near-duplicate lookup judged every article sharing a band with the new one by reading its simhash from
``articles``. On SQLite that column sits after the article's text, so each candidate cost a walk through
the text's overflow pages; candidates are about 1 in 32 of all stored articles (8-bit bands), so the
pages read per article grew with the corpus. With the simhash in the band row and a covering index,
candidates are judged from the index alone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_INDEX = "ix_article_simhash_bands_band_value"
LOOKUP_INDEX = "ix_article_simhash_bands_lookup"


def upgrade() -> None:
    with op.batch_alter_table("article_simhash_bands") as batch_op:
        batch_op.add_column(sa.Column("simhash", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE article_simhash_bands SET simhash = "
        "(SELECT a.simhash FROM articles a WHERE a.id = article_simhash_bands.article_id)"
    )
    # A band without a simhash could never be judged a near duplicate; none are written, but be sure.
    op.execute("DELETE FROM article_simhash_bands WHERE simhash IS NULL")
    with op.batch_alter_table("article_simhash_bands") as batch_op:
        batch_op.alter_column("simhash", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_index(OLD_INDEX)
        batch_op.create_index(LOOKUP_INDEX, ["band", "value", "simhash", "article_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("article_simhash_bands") as batch_op:
        batch_op.drop_index(LOOKUP_INDEX)
        batch_op.create_index(OLD_INDEX, ["band", "value"], unique=False)
        batch_op.drop_column("simhash")

"""Tracks an item lists that the catalogue could not give, kept with the item's tracks and in
the catalogue cache, so that a PARTIAL item says which tracks were skipped and why (ADR 0028).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Defaults for the rows already there: their unavailable tracks were never linked.
    op.execute("ALTER TABLE item_tracks ADD COLUMN unavailable boolean NOT NULL DEFAULT false")
    op.execute(
        "ALTER TABLE catalog_albums ADD COLUMN unavailable_track_ids text[] NOT NULL DEFAULT '{}'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE catalog_albums DROP COLUMN unavailable_track_ids")
    op.execute("ALTER TABLE item_tracks DROP COLUMN unavailable")

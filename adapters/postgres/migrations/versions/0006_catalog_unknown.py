"""Ids the catalogue answered it does not know, remembered for a while so that adding one again
costs no TIDAL call (ADR 0028).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keyed by kind and id: a track id and an album id may be the same digits.
    op.execute(
        "CREATE TABLE catalog_unknown ("
        " kind text NOT NULL,"
        " catalog_id text NOT NULL,"
        " noted_at timestamptz NOT NULL,"
        " PRIMARY KEY (kind, catalog_id))"
    )


def downgrade() -> None:
    op.execute("DROP TABLE catalog_unknown")

"""Playlists as a third kind of library item, whose catalogue ids are UUIDs (ADRs 0027, 0029).

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The same rule as the domain's CatalogIdForm, per kind: processes still running the old code
# write only tracks and albums, which pass both the old checks and these.
_ID_PER_KIND = (
    "CHECK (CASE kind"
    " WHEN 'playlist' THEN catalog_id"
    " ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"
    " ELSE catalog_id ~ '^[0-9]{1,20}$' END)"
)


def upgrade() -> None:
    op.execute("ALTER TABLE library_items DROP CONSTRAINT library_items_kind_check")
    op.execute("ALTER TABLE library_items DROP CONSTRAINT library_items_catalog_id_check")
    op.execute(
        "ALTER TABLE library_items ADD CONSTRAINT library_items_kind_check"
        " CHECK (kind IN ('track', 'album', 'playlist'))"
    )
    op.execute(
        f"ALTER TABLE library_items ADD CONSTRAINT library_items_catalog_id_check {_ID_PER_KIND}"
    )


def downgrade() -> None:
    op.execute("DELETE FROM library_items WHERE kind = 'playlist'")
    op.execute("ALTER TABLE library_items DROP CONSTRAINT library_items_catalog_id_check")
    op.execute("ALTER TABLE library_items DROP CONSTRAINT library_items_kind_check")
    op.execute(
        "ALTER TABLE library_items ADD CONSTRAINT library_items_kind_check"
        " CHECK (kind IN ('track', 'album'))"
    )
    op.execute(
        "ALTER TABLE library_items ADD CONSTRAINT library_items_catalog_id_check"
        " CHECK (catalog_id ~ '^[0-9]{1,20}$')"
    )

"""The ISRC ledger, the tracks of each library item, and leases on scheduling jobs.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A claimed job is leased, not locked: no transaction stays open across catalogue calls,
    # and a relay that dies simply lets its lease run out.
    op.execute("ALTER TABLE scheduling_jobs ADD COLUMN locked_by text")
    op.execute("ALTER TABLE scheduling_jobs ADD COLUMN locked_until timestamptz")
    op.execute(
        """
        CREATE TABLE isrc_ledger (
            isrc text PRIMARY KEY CHECK (isrc ~ '^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$'),
            state text NOT NULL
                CHECK (state IN ('requested', 'dispatched', 'indexed', 'failed')),
            event_id text NOT NULL,
            track_id text NOT NULL,
            album_id text,
            -- the item whose scheduling recorded the request; kept when the item is removed
            library_item_id uuid,
            attempts integer NOT NULL DEFAULT 0,
            requested_at timestamptz NOT NULL,
            dispatched_at timestamptz,
            indexed_at timestamptz,
            next_attempt_at timestamptz NOT NULL,
            last_error text,
            updated_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_isrc_ledger_dispatchable ON isrc_ledger (next_attempt_at)"
        " WHERE state = 'requested'"
    )
    op.execute(
        """
        CREATE TABLE item_tracks (
            library_item_id uuid NOT NULL REFERENCES library_items (id) ON DELETE CASCADE,
            position integer NOT NULL,
            track_id text NOT NULL,
            isrc text,
            PRIMARY KEY (library_item_id, position)
        )
        """
    )
    op.execute("CREATE INDEX ix_item_tracks_isrc ON item_tracks (isrc) WHERE isrc IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP TABLE item_tracks")
    op.execute("DROP TABLE isrc_ledger")
    op.execute("ALTER TABLE scheduling_jobs DROP COLUMN locked_until")
    op.execute("ALTER TABLE scheduling_jobs DROP COLUMN locked_by")

"""Library items and the scheduling outbox.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE library_items (
            id uuid PRIMARY KEY,
            user_id text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('track', 'album')),
            catalog_id text NOT NULL CHECK (catalog_id ~ '^[0-9]{1,20}$'),
            added_at timestamptz NOT NULL,
            title text,
            artist_names text[] NOT NULL DEFAULT '{}',
            -- one item per (user, kind, catalogue id): concurrent identical adds make one item
            CONSTRAINT uq_library_items_owner_item UNIQUE (user_id, kind, catalog_id)
        )
        """
    )
    # Keyset pagination, newest first, per user (and per kind when filtered).
    op.execute(
        "CREATE INDEX ix_library_items_user_added"
        " ON library_items (user_id, added_at DESC, id DESC)"
    )
    op.execute(
        "CREATE INDEX ix_library_items_user_kind_added"
        " ON library_items (user_id, kind, added_at DESC, id DESC)"
    )
    op.execute(
        """
        CREATE TABLE scheduling_jobs (
            library_item_id uuid PRIMARY KEY
                REFERENCES library_items (id) ON DELETE CASCADE,
            status text NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
            attempts integer NOT NULL DEFAULT 0,
            run_after timestamptz NOT NULL,
            last_error text,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_scheduling_jobs_due ON scheduling_jobs (run_after)"
        " WHERE status = 'pending'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE scheduling_jobs")
    op.execute("DROP TABLE library_items")

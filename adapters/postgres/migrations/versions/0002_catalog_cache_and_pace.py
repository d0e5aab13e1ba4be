"""The catalogue cache (tracks, albums with their ordered track list) and the shared TIDAL pace.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE catalog_tracks (
            track_id text PRIMARY KEY CHECK (track_id ~ '^[0-9]{1,20}$'),
            isrc text,  -- normalised; NULL when the catalogue gave none (or an invalid one)
            title text NOT NULL,
            version text,
            artist_names text[] NOT NULL DEFAULT '{}',
            album_id text,
            volume_number integer,
            track_number integer,
            duration_seconds integer,
            fetched_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE catalog_albums (
            album_id text PRIMARY KEY CHECK (album_id ~ '^[0-9]{1,20}$'),
            title text NOT NULL,
            artist_names text[] NOT NULL DEFAULT '{}',
            number_of_items integer,
            -- the album's tracks in album order; their rows are in catalog_tracks
            track_ids text[] NOT NULL DEFAULT '{}',
            skipped_items integer NOT NULL DEFAULT 0,
            -- true only once the last page arrived: a partial album never answers from the cache
            complete boolean NOT NULL DEFAULT false,
            fetched_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE tidal_pace (
            bucket text PRIMARY KEY,
            tokens double precision NOT NULL,
            capacity double precision NOT NULL CHECK (capacity >= 1),
            refill_per_second double precision NOT NULL CHECK (refill_per_second > 0),
            -- the database's clock_timestamp(), so that processes on different machines agree
            updated_at timestamptz NOT NULL,
            blocked_until timestamptz
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE tidal_pace")
    op.execute("DROP TABLE catalog_albums")
    op.execute("DROP TABLE catalog_tracks")

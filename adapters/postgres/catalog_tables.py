"""The catalogue cache and the shared TIDAL pace as SQLAlchemy Core tables. Migration 0002 makes
them; this module mirrors it for querying, on the same metadata as the library's tables."""

from __future__ import annotations

from sqlalchemy import ARRAY, Boolean, Column, DateTime, Double, Integer, Table, Text

from adapters.postgres.tables import metadata

catalog_tracks = Table(
    "catalog_tracks",
    metadata,
    Column("track_id", Text, primary_key=True),
    Column("isrc", Text),
    Column("title", Text, nullable=False),
    Column("version", Text),
    Column("artist_names", ARRAY(Text), nullable=False, server_default="{}"),
    Column("album_id", Text),
    Column("volume_number", Integer),
    Column("track_number", Integer),
    Column("duration_seconds", Integer),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

catalog_albums = Table(
    "catalog_albums",
    metadata,
    Column("album_id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("artist_names", ARRAY(Text), nullable=False, server_default="{}"),
    Column("number_of_items", Integer),
    Column("track_ids", ARRAY(Text), nullable=False, server_default="{}"),
    Column("skipped_items", Integer, nullable=False, server_default="0"),
    Column("complete", Boolean, nullable=False, server_default="false"),
    Column("unavailable_track_ids", ARRAY(Text), nullable=False, server_default="{}"),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

# Migration 0006: what the catalogue answered it does not know, and when (ADR 0028).
catalog_unknown = Table(
    "catalog_unknown",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("catalog_id", Text, primary_key=True),
    Column("noted_at", DateTime(timezone=True), nullable=False),
)

tidal_pace = Table(
    "tidal_pace",
    metadata,
    Column("bucket", Text, primary_key=True),
    Column("tokens", Double, nullable=False),
    Column("capacity", Double, nullable=False),
    Column("refill_per_second", Double, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("blocked_until", DateTime(timezone=True)),
)

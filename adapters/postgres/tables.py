"""The tables as SQLAlchemy Core metadata. The schema itself is made only by Alembic migrations;
this module mirrors its tables and columns for querying (indexes are the migrations' alone;
tests/integration/test_tables_match_migrations.py keeps the two in step)."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

library_items = Table(
    "library_items",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("catalog_id", Text, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Column("title", Text),
    Column("artist_names", ARRAY(Text), nullable=False, server_default="{}"),
    UniqueConstraint("user_id", "kind", "catalog_id", name="uq_library_items_owner_item"),
)

scheduling_jobs = Table(
    "scheduling_jobs",
    metadata,
    Column(
        "library_item_id",
        UUID(as_uuid=True),
        ForeignKey("library_items.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("run_after", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("locked_by", Text),
    Column("locked_until", DateTime(timezone=True)),
    Column("resync_requested", Boolean, nullable=False, server_default=text("false")),
    # The item's owner, so that the per-user cap counts pending jobs from an index (0004).
    Column("user_id", Text),
)

isrc_ledger = Table(
    "isrc_ledger",
    metadata,
    Column("isrc", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("track_id", Text, nullable=False),
    Column("album_id", Text),
    Column("library_item_id", UUID(as_uuid=True)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("dispatched_at", DateTime(timezone=True)),
    Column("indexed_at", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

item_tracks = Table(
    "item_tracks",
    metadata,
    Column(
        "library_item_id",
        UUID(as_uuid=True),
        ForeignKey("library_items.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("track_id", Text, nullable=False),
    Column("isrc", Text),
    Column("unavailable", Boolean, nullable=False, server_default="false"),
)

# The channel the add's transaction notifies, so that relays wake at once.
SCHEDULING_CHANNEL = "libingest_scheduling"
# The channel on which triggers announce every committed change to an item's ingestion
# progress (migration 0007, ADR 0031). Payloads: {"isrcs": [...]}, {"items": [...]} or
# {"removed": [[item id, owner], ...]}.
PROGRESS_CHANNEL = "libingest_progress"

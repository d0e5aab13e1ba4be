"""The library item: one track, album or playlist that one user keeps, and what its ingestion
looks like."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from domain.values import CatalogId, CatalogIdForm, LibraryItemId, UserId


class LibraryItemKind(StrEnum):
    TRACK = "track"
    ALBUM = "album"
    PLAYLIST = "playlist"

    @property
    def id_form(self) -> CatalogIdForm:
        """The form of this kind's catalogue ids (ADR 0027)."""
        return CatalogIdForm.UUID if self is LibraryItemKind.PLAYLIST else CatalogIdForm.DIGITS

    @property
    def is_paged(self) -> bool:
        """Resolved as one job of many catalogue pages (ADR 0023), not by a track lookup."""
        return self is not LibraryItemKind.TRACK

    @property
    def resyncs_on_readd(self) -> bool:
        """Items of this kind change after they are added, so a re-add reads them again
        (ADR 0029); the ledger keeps what is settled from being requested twice."""
        return self is LibraryItemKind.PLAYLIST


# The kinds resolved as one job of many pages: they share the relay's slots and one claim.
PAGED_KINDS = frozenset(kind for kind in LibraryItemKind if kind.is_paged)


class IngestionState(StrEnum):
    """What a user sees of the work behind an item (design.md §4)."""

    PENDING = "pending"  # scheduling has not finished
    SCHEDULED = "scheduled"  # every track requested or already indexed
    PARTIAL = "partial"  # done, but some tracks could not be scheduled
    INDEXED = "indexed"  # every track indexed
    FAILED = "failed"  # scheduling gave up


class SchedulingStatus(StrEnum):
    """The life of the item's scheduling job (the outbox row written with the add)."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LibraryItem:
    id: LibraryItemId
    user_id: UserId
    kind: LibraryItemKind
    catalog_id: CatalogId
    added_at: datetime
    title: str | None = None
    artist_names: tuple[str, ...] = ()

    @classmethod
    def new(
        cls, *, user_id: UserId, kind: LibraryItemKind, catalog_id: CatalogId, at: datetime
    ) -> LibraryItem:
        return cls(
            id=LibraryItemId(uuid.uuid4()),
            user_id=user_id,
            kind=kind,
            catalog_id=catalog_id,
            added_at=at,
        )


class SkipReason(StrEnum):
    """Why a track of an item is never requested (it counts in `tracks_skipped`)."""

    NO_ISRC = "no_isrc"  # the catalogue gave the track without a usable ISRC
    NOT_AVAILABLE = "not_available"  # the item lists it, but the catalogue could not give it


@dataclass(frozen=True, slots=True)
class SkippedTrack:
    track_id: CatalogId
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class IngestionProgress:
    """Counts of the item's tracks by what became of them, and the state they add up to."""

    scheduling: SchedulingStatus = SchedulingStatus.PENDING
    tracks_total: int = 0
    tracks_requested: int = 0
    tracks_indexed: int = 0
    tracks_skipped: int = 0
    tracks_failed: int = 0
    last_error: str | None = field(default=None)
    skipped_tracks: tuple[SkippedTrack, ...] = ()  # in the item's order

    @property
    def state(self) -> IngestionState:
        return ingestion_state(self)


def ingestion_state(progress: IngestionProgress) -> IngestionState:
    """The state rule of design.md §4, as one pure function.

    A job that gave up is FAILED whatever the counts; an unfinished one is PENDING. Once done:
    every track indexed is INDEXED; any track skipped or failed makes it PARTIAL; otherwise every
    track is requested or indexed, which is SCHEDULED.
    """
    if progress.scheduling is SchedulingStatus.FAILED:
        return IngestionState.FAILED
    if progress.scheduling is SchedulingStatus.PENDING:
        return IngestionState.PENDING
    if progress.tracks_skipped or progress.tracks_failed:
        return IngestionState.PARTIAL
    if progress.tracks_indexed >= progress.tracks_total:
        return IngestionState.INDEXED
    return IngestionState.SCHEDULED

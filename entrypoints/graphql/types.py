"""The GraphQL types of design.md §4, translated from the domain's read models."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.library import IngestionProgress as DomainIngestionProgress
from domain.library import IngestionState as DomainIngestionState
from domain.library import LibraryItem as DomainLibraryItem
from domain.library import LibraryItemKind as DomainLibraryItemKind
from domain.values import LibraryItemId
from entrypoints.graphql import described
from entrypoints.graphql.context import RequestContext


@strawberry.enum(
    description=(
        "What a library item holds: one track, one album with its tracks, or one playlist with"
        " its tracks."
    )
)
class LibraryItemKind(Enum):
    TRACK = strawberry.enum_value("track", description="A single TIDAL track.")
    ALBUM = strawberry.enum_value(
        "album", description="A TIDAL album: every track on it is ingested."
    )
    PLAYLIST = strawberry.enum_value(
        "playlist",
        description=(
            "A TIDAL playlist (its catalogId is a UUID): every track on it is ingested. A re-add"
            " re-syncs it: the tracks added since are scheduled, the others are not requested"
            " again."
        ),
    )

    def to_domain(self) -> DomainLibraryItemKind:
        return DomainLibraryItemKind[self.name]


@strawberry.enum(description="Where an item's tracks stand on their way into the search index.")
class IngestionState(Enum):
    PENDING = strawberry.enum_value(
        "pending",
        description="Scheduling has not finished: the item's tracks are still being looked up "
        "and requested (the counts grow as it goes).",
    )
    SCHEDULED = strawberry.enum_value(
        "scheduled",
        description="Every track is requested for ingestion or already in the index.",
    )
    PARTIAL = strawberry.enum_value(
        "partial",
        description="Scheduling is done, but some tracks could not be scheduled (no ISRC, not "
        "available) or failed: see tracksSkipped and tracksFailed.",
    )
    INDEXED = strawberry.enum_value(
        "indexed", description="Every track is in the search index: searchTracks finds them."
    )
    FAILED = strawberry.enum_value(
        "failed",
        description="Scheduling gave up (for example, the album is not in the catalogue); "
        "lastError says why.",
    )


@strawberry.enum(description="Why a track of an item is never requested for the index.")
class SkipReason(Enum):
    NO_ISRC = strawberry.enum_value(
        "no_isrc", description="The catalogue gives the track without an ISRC."
    )
    NOT_AVAILABLE = strawberry.enum_value(
        "not_available",
        description="The item lists the track, but the catalogue could not give it (for "
        "example, not available in this country).",
    )


@strawberry.type(description="A track of an item that is never requested, and why.")
class SkippedTrack:
    track_id: strawberry.ID = strawberry.field(description="The TIDAL id of the track.")
    reason: SkipReason = strawberry.field(description="Why it is skipped.")


@strawberry.type(
    description="An item's ingestion: its state and its tracks counted by what became of them."
)
class IngestionProgress:
    state: IngestionState = strawberry.field(description="The state the counts add up to.")
    tracks_total: int = strawberry.field(
        description="The item's tracks, as far as the catalogue has been read (they grow while "
        "PENDING)."
    )
    tracks_requested: int = strawberry.field(
        description="Tracks requested for ingestion and not yet indexed."
    )
    tracks_indexed: int = strawberry.field(description="Tracks in the search index.")
    tracks_skipped: int = strawberry.field(
        description="Tracks never requested: without an ISRC, or not available (skippedTracks "
        "names them)."
    )
    skipped_tracks: list[SkippedTrack] = strawberry.field(
        description="The skipped tracks, in the item's order, each with why: what makes an "
        "item PARTIAL besides tracksFailed."
    )
    tracks_failed: int = strawberry.field(description="Tracks whose ingestion failed.")
    last_error: str | None = strawberry.field(
        description="Why scheduling failed, when it did; null otherwise."
    )

    @classmethod
    def from_domain(cls, progress: DomainIngestionProgress) -> IngestionProgress:
        state: DomainIngestionState = progress.state
        return cls(
            state=IngestionState(state.value),
            tracks_total=progress.tracks_total,
            tracks_requested=progress.tracks_requested,
            tracks_indexed=progress.tracks_indexed,
            tracks_skipped=progress.tracks_skipped,
            tracks_failed=progress.tracks_failed,
            last_error=progress.last_error,
            skipped_tracks=[
                SkippedTrack(
                    track_id=strawberry.ID(skipped.track_id.value),
                    reason=SkipReason(skipped.reason.value),
                )
                for skipped in progress.skipped_tracks
            ],
        )


@strawberry.type(description="One track or album in the signed-in user's library.")
class LibraryItem:
    id: strawberry.ID = strawberry.field(
        description="The item's id in this library (a UUID); not the catalogue's id."
    )
    kind: LibraryItemKind = strawberry.field(description="Track or album.")
    catalog_id: strawberry.ID = strawberry.field(
        description="The TIDAL id of the track or album (digits)."
    )
    title: str | None = strawberry.field(
        description="The title from the catalogue; null until the catalogue has been read."
    )
    artist_names: list[str] = strawberry.field(
        description="The main artists' names from the catalogue; empty until it has been read."
    )
    added_at: datetime = strawberry.field(
        description="When the user added the item (first added, for a re-add)."
    )

    @described.field("How far the item's tracks are on their way into the index.")
    async def ingestion(self, info: Info[RequestContext, None]) -> IngestionProgress:
        progress = self._progress
        if progress is None:
            progress = await info.context.progress_loader.load(self._item_id)
        return IngestionProgress.from_domain(progress)

    _item_id: strawberry.Private[LibraryItemId]
    # Known already when the item comes from a progress subscription, which must not read it
    # through the connection's DataLoader: that one caches for as long as the socket lives.
    _progress: strawberry.Private[DomainIngestionProgress | None] = None

    @classmethod
    def from_domain(
        cls, item: DomainLibraryItem, progress: DomainIngestionProgress | None = None
    ) -> LibraryItem:
        return cls(
            id=strawberry.ID(str(item.id)),
            kind=LibraryItemKind(item.kind.value),
            catalog_id=strawberry.ID(item.catalog_id.value),
            title=item.title,
            artist_names=list(item.artist_names),
            added_at=item.added_at,
            _item_id=item.id,
            _progress=progress,
        )


@strawberry.type(description="A track of the search index that matches a search.")
class TrackHit:
    isrc: str = strawberry.field(description="The track's ISRC, normalised (12 characters).")
    track_id: strawberry.ID = strawberry.field(description="The TIDAL id of the track.")
    title: str = strawberry.field(description="The track's title, with its version if any.")
    artist_names: list[str] = strawberry.field(description="The track's artists' names.")
    score: float = strawberry.field(
        description="How well the track matches the query, to order this answer: the fused"
        " rank score of the meaning and the words rankings (higher is better); it is not"
        " comparable across answers."
    )


@strawberry.type(description="Where a page of a connection ends, and whether more follow.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether items follow this page.")
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last item: pass it as `after` for the next page; "
        "null for an empty page."
    )


@strawberry.type(description="One item of a page of the library, with its cursor.")
class LibraryItemEdge:
    cursor: str = strawberry.field(description="An opaque cursor that points at this item.")
    node: LibraryItem = strawberry.field(description="The item.")


@strawberry.type(description="A page of the user's library, newest item first.")
class LibraryConnection:
    edges: list[LibraryItemEdge] = strawberry.field(description="The page's items.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int = strawberry.field(
        description="How many items the library holds under the same filter, on every page."
    )


@strawberry.interface(description="A mistake in the caller's input, answered as data.")
class UserError:
    message: str = strawberry.field(description="What was wrong, in words for a person.")


@strawberry.type(description="The id given is not a TIDAL catalogue id (digits).")
class InvalidCatalogId(UserError):
    catalog_id: str = strawberry.field(description="The id as the caller gave it.")


@strawberry.type(
    description="No item with this id in the user's library (another user's item reads the same)."
)
class LibraryItemNotFound(UserError):
    item_id: strawberry.ID = strawberry.field(description="The id as the caller gave it.")


@strawberry.type(
    description="Nothing of the item's ingestion failed (neither its scheduling nor a track), "
    "so there is nothing to retry; nothing was changed."
)
class NothingToRetry(UserError):
    item_id: strawberry.ID = strawberry.field(description="The id as the caller gave it.")


@strawberry.type(description="The item is in the user's library.")
class AddToLibrarySuccess:
    item: LibraryItem = strawberry.field(description="The library item, new or already there.")
    already_in_library: bool = strawberry.field(
        description="True when the item was in the library before this add (nothing changed)."
    )


@strawberry.type(description="The item is no longer in the user's library.")
class RemoveFromLibrarySuccess:
    removed_item_id: strawberry.ID = strawberry.field(description="The id of the removed item.")


@strawberry.type(description="What failed of the item is to be done again.")
class RetryIngestionSuccess:
    item: LibraryItem = strawberry.field(
        description="The library item; its ingestion reads PENDING (or SCHEDULED) until the "
        "retry ends."
    )


AddToLibraryResult = Annotated[
    AddToLibrarySuccess | InvalidCatalogId,
    strawberry.union(
        "AddToLibraryResult",
        description="The added item, or why the id was refused. Select both members: "
        "`... on AddToLibrarySuccess { ... } ... on UserError { message }`.",
    ),
]
RemoveFromLibraryResult = Annotated[
    RemoveFromLibrarySuccess | LibraryItemNotFound,
    strawberry.union(
        "RemoveFromLibraryResult",
        description="The removed item's id, or that no such item is in the library.",
    ),
]
RetryIngestionResult = Annotated[
    RetryIngestionSuccess | LibraryItemNotFound | NothingToRetry,
    strawberry.union(
        "RetryIngestionResult",
        description="The item being retried, that no such item is in the library, or that "
        "nothing of it failed.",
    ),
]

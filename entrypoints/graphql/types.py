"""The GraphQL types of design.md §4, translated from the domain's read models."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.library import IngestionState as DomainIngestionState
from domain.library import LibraryItem as DomainLibraryItem
from domain.library import LibraryItemKind as DomainLibraryItemKind
from domain.values import LibraryItemId
from entrypoints.graphql.context import RequestContext


@strawberry.enum
class LibraryItemKind(Enum):
    TRACK = "track"
    ALBUM = "album"

    def to_domain(self) -> DomainLibraryItemKind:
        return DomainLibraryItemKind(self.value)


@strawberry.enum
class IngestionState(Enum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    PARTIAL = "partial"
    INDEXED = "indexed"
    FAILED = "failed"


@strawberry.type
class IngestionProgress:
    state: IngestionState
    tracks_total: int
    tracks_requested: int
    tracks_indexed: int
    tracks_skipped: int
    tracks_failed: int
    last_error: str | None


@strawberry.type
class LibraryItem:
    id: strawberry.ID
    kind: LibraryItemKind
    catalog_id: strawberry.ID
    title: str | None
    artist_names: list[str]
    added_at: datetime

    @strawberry.field
    async def ingestion(self, info: Info[RequestContext, None]) -> IngestionProgress:
        progress = await info.context.progress_loader.load(self._item_id)
        state: DomainIngestionState = progress.state
        return IngestionProgress(
            state=IngestionState(state.value),
            tracks_total=progress.tracks_total,
            tracks_requested=progress.tracks_requested,
            tracks_indexed=progress.tracks_indexed,
            tracks_skipped=progress.tracks_skipped,
            tracks_failed=progress.tracks_failed,
            last_error=progress.last_error,
        )

    _item_id: strawberry.Private[LibraryItemId]

    @classmethod
    def from_domain(cls, item: DomainLibraryItem) -> LibraryItem:
        return cls(
            id=strawberry.ID(str(item.id)),
            kind=LibraryItemKind(item.kind.value),
            catalog_id=strawberry.ID(item.catalog_id.value),
            title=item.title,
            artist_names=list(item.artist_names),
            added_at=item.added_at,
            _item_id=item.id,
        )


@strawberry.type
class TrackHit:
    isrc: str
    track_id: strawberry.ID
    title: str
    artist_names: list[str]
    score: float


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class LibraryItemEdge:
    cursor: str
    node: LibraryItem


@strawberry.type
class LibraryConnection:
    edges: list[LibraryItemEdge]
    page_info: PageInfo
    total_count: int


@strawberry.interface
class UserError:
    message: str


@strawberry.type
class InvalidCatalogId(UserError):
    catalog_id: str


@strawberry.type
class LibraryItemNotFound(UserError):
    item_id: strawberry.ID


@strawberry.type
class AddToLibrarySuccess:
    item: LibraryItem
    already_in_library: bool


@strawberry.type
class RemoveFromLibrarySuccess:
    removed_item_id: strawberry.ID


AddToLibraryResult = Annotated[
    AddToLibrarySuccess | InvalidCatalogId, strawberry.union("AddToLibraryResult")
]
RemoveFromLibraryResult = Annotated[
    RemoveFromLibrarySuccess | LibraryItemNotFound, strawberry.union("RemoveFromLibraryResult")
]

"""Queries and mutations: each resolver parses input, calls one use case, and maps the result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.types import Info
from strawberry.types.graphql import OperationType

from application.use_cases.add_album_to_library import AddAlbumToLibraryCommand
from application.use_cases.add_playlist_to_library import AddPlaylistToLibraryCommand
from application.use_cases.add_track_to_library import AddTrackToLibraryCommand
from application.use_cases.get_library_item import GetLibraryItemCommand
from application.use_cases.list_library import ListLibraryCommand
from application.use_cases.read_models import AddedItem
from application.use_cases.remove_from_library import RemoveFromLibraryCommand
from application.use_cases.retry_ingestion import RetryIngestionCommand
from application.use_cases.search_tracks import SearchTracksCommand
from entrypoints.graphql import described, types
from entrypoints.graphql.context import RequestContext
from entrypoints.graphql.document_cost import DocumentLimits
from entrypoints.graphql.documents import (
    CheckedDocuments,
    DocumentChecks,
    ExecutionWithoutSuggestions,
)
from entrypoints.graphql.error_log import ReadableErrorLog
from entrypoints.graphql.errors import (
    EXPECTED,
    MaskUnexpectedErrors,
    as_union_member,
    raise_as_graphql_error,
    raise_unless_not_found,
    should_mask,
)
from entrypoints.graphql.operation_metrics import MeasuredOperations, OperationObserver
from entrypoints.graphql.operations import RequestedOperationSchema
from entrypoints.graphql.subscriptions import LibraryItemUpdate, Subscription

GraphQLInfo = Info[RequestContext, None]


@strawberry.type(
    description="What the signed-in user can read: their library and the search index."
)
class Query:
    @described.field("The user's library, a page at a time, newest item first.")
    async def library(
        self,
        info: GraphQLInfo,
        first: Annotated[
            int | None, strawberry.argument(description="How many items the page holds (0-100).")
        ] = 50,
        after: Annotated[
            str | None,
            strawberry.argument(description="Start after this cursor (a previous endCursor)."),
        ] = None,
        kind: Annotated[
            types.LibraryItemKind | None,
            strawberry.argument(description="Only items of this kind; every kind when null."),
        ] = None,
    ) -> types.LibraryConnection:
        command = ListLibraryCommand(
            user_id=info.context.user_id,
            first=50 if first is None else first,
            after=after,
            kind=kind.to_domain() if kind is not None else None,
        )
        try:
            page = await info.context.use_cases.list_library(command)
        except EXPECTED as error:
            raise_as_graphql_error(error)
        edges = [
            types.LibraryItemEdge(cursor=cursor, node=types.LibraryItem.from_domain(item))
            for item, cursor in zip(page.items, page.cursors, strict=True)
        ]
        return types.LibraryConnection(
            edges=edges,
            page_info=types.PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )

    @described.field("One item of the user's library; null when the library holds no such item.")
    async def library_item(
        self,
        info: GraphQLInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="The library item's id.")],
    ) -> types.LibraryItem | None:
        command = GetLibraryItemCommand(user_id=info.context.user_id, item_id=str(id))
        try:
            item = await info.context.use_cases.get_item(command)
        except EXPECTED as error:
            raise_unless_not_found(error)
            return None
        return types.LibraryItem.from_domain(item)

    @described.field("Tracks of the search index that match a text, best first.")
    async def search_tracks(
        self,
        info: GraphQLInfo,
        query: Annotated[
            str, strawberry.argument(description="Words to look for: a title, an artist, both.")
        ],
        limit: Annotated[
            int | None, strawberry.argument(description="The most hits to answer (1-100).")
        ] = 10,
    ) -> list[types.TrackHit]:
        command = SearchTracksCommand(query=query, limit=10 if limit is None else limit)
        try:
            hits = await info.context.use_cases.search(command)
        except EXPECTED as error:
            raise_as_graphql_error(error)
        return [
            types.TrackHit(
                isrc=hit.isrc.value,
                track_id=strawberry.ID(hit.track_id.value),
                title=hit.title,
                artist_names=list(hit.artist_names),
                score=hit.score,
            )
            for hit in hits
        ]


async def _added(adding: Awaitable[AddedItem]) -> types.AddToLibraryResult:
    """Every add mutation answers alike: the item, or the expected error as a union member."""
    try:
        added = await adding
    except EXPECTED as error:
        return as_union_member(error, types.InvalidCatalogId)
    return types.AddToLibrarySuccess(
        item=types.LibraryItem.from_domain(added.item),
        already_in_library=added.already_in_library,
    )


@strawberry.type(description="What the signed-in user can change: their library.")
class Mutation:
    @described.mutation(
        "Adds a TIDAL track to the user's library and schedules it for the search "
        "index. Answers at once; ingestion follows (see LibraryItem.ingestion). A re-add answers "
        "the same item with alreadyInLibrary: true."
    )
    async def add_track_to_library(
        self,
        info: GraphQLInfo,
        track_id: Annotated[
            strawberry.ID, strawberry.argument(description="The TIDAL track id (digits).")
        ],
    ) -> types.AddToLibraryResult:
        command = AddTrackToLibraryCommand(user_id=info.context.user_id, track_id=str(track_id))
        return await _added(info.context.use_cases.add_track(command))

    @described.mutation(
        "Adds a TIDAL album to the user's library and schedules each of its tracks "
        "for the search index. Answers at once; ingestion follows (see LibraryItem.ingestion). A "
        "re-add answers the same item with alreadyInLibrary: true."
    )
    async def add_album_to_library(
        self,
        info: GraphQLInfo,
        album_id: Annotated[
            strawberry.ID, strawberry.argument(description="The TIDAL album id (digits).")
        ],
    ) -> types.AddToLibraryResult:
        command = AddAlbumToLibraryCommand(user_id=info.context.user_id, album_id=str(album_id))
        return await _added(info.context.use_cases.add_album(command))

    @described.mutation(
        "Adds a TIDAL playlist to the user's library and schedules each of its tracks for the"
        " search index, as for an album. Answers at once; ingestion follows (see"
        " LibraryItem.ingestion). A re-add answers the same item with alreadyInLibrary: true"
        " and, once the playlist's scheduling has ended, re-syncs it: the tracks added since are"
        " scheduled, the others are not requested again."
    )
    async def add_playlist_to_library(
        self,
        info: GraphQLInfo,
        playlist_id: Annotated[
            strawberry.ID, strawberry.argument(description="The TIDAL playlist id (a UUID).")
        ],
    ) -> types.AddToLibraryResult:
        command = AddPlaylistToLibraryCommand(
            user_id=info.context.user_id, playlist_id=str(playlist_id)
        )
        return await _added(info.context.use_cases.add_playlist(command))

    @described.mutation(
        "Removes an item from the user's library. What it put in the search index stays there."
    )
    async def remove_from_library(
        self,
        info: GraphQLInfo,
        item_id: Annotated[
            strawberry.ID, strawberry.argument(description="The library item's id.")
        ],
    ) -> types.RemoveFromLibraryResult:
        command = RemoveFromLibraryCommand(user_id=info.context.user_id, item_id=str(item_id))
        try:
            removed = await info.context.use_cases.remove(command)
        except EXPECTED as error:
            return as_union_member(error, types.LibraryItemNotFound)
        return types.RemoveFromLibrarySuccess(removed_item_id=strawberry.ID(str(removed)))

    @described.mutation(
        "Retries what failed of an item's ingestion: a scheduling that gave up (FAILED; "
        "lastError said why) runs again, and tracks whose ingestion failed are requested again. "
        "Adding a FAILED item again does the same for its scheduling."
    )
    async def retry_ingestion(
        self,
        info: GraphQLInfo,
        item_id: Annotated[
            strawberry.ID, strawberry.argument(description="The library item's id.")
        ],
    ) -> types.RetryIngestionResult:
        command = RetryIngestionCommand(user_id=info.context.user_id, item_id=str(item_id))
        try:
            item = await info.context.use_cases.retry(command)
        except EXPECTED as error:
            member = as_union_member(error, types.UserError)
            # The use case raises these two only; the table builds their members.
            assert isinstance(member, types.LibraryItemNotFound | types.NothingToRetry)
            return member
        return types.RetryIngestionSuccess(item=types.LibraryItem.from_domain(item))


class LibingestSchema(MeasuredOperations, ReadableErrorLog, RequestedOperationSchema):
    """The operation the request names (operations.py); a log an operator can read under
    attack (error_log.py); every operation measured (operation_metrics.py); subscriptions
    alone over WebSockets."""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        # HTTP runs queries and mutations only. Strawberry lets a subscription through for its
        # multipart transport, which this service does not serve: it would run as a query and
        # fail on its stream. Refused instead (400) before anything runs.
        allowed = kwargs.get("allowed_operation_types")
        if allowed is not None:
            kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        return await super().execute(*args, **kwargs)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        # Only the WebSocket transport streams (the HTTP view runs no streaming transport): it
        # carries subscriptions, and queries and mutations keep to HTTP and its limits.
        return await super().stream(
            *args, **(kwargs | {"allowed_operation_types": (OperationType.SUBSCRIPTION,)})
        )


def build_schema(
    *,
    max_depth: int,
    max_aliases: int,
    max_tokens: int,
    introspection: bool,
    max_selections: int = 1000,
    field_merge_budget: int = 1000,
    suggestions: bool = True,
    operation_observer: OperationObserver | None = None,
) -> strawberry.Schema:
    # The depth, alias and selection limits are counted through fragments by one linear check
    # before the schema's rules run (documents.py, ADR 0020); without suggestions, no error
    # names a field or value the caller did not write ("Did you mean 'library'?").
    checks = DocumentChecks(
        max_tokens=max_tokens,
        limits=DocumentLimits(
            max_depth=max_depth, max_aliases=max_aliases, max_selections=max_selections
        ),
        field_merge_budget=field_merge_budget,
        hide_suggestions=not suggestions,
    )
    # Factories, not instances: Strawberry builds a fresh extension for every request.
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(CheckedDocuments, checks=checks),
        partial(
            MaskUnexpectedErrors, should_mask_error=should_mask, error_message="Unexpected error."
        ),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    schema = LibingestSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[types.InvalidCatalogId, types.LibraryItemNotFound, LibraryItemUpdate],
        extensions=extensions,
        execution_context_class=None if suggestions else ExecutionWithoutSuggestions,
    )
    schema.operation_observer = operation_observer
    return schema

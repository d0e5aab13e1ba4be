"""Live ingestion progress over GraphQL subscriptions (graphql-transport-ws, ADR 0031).

Each resolver checks the request and subscribes before it answers the stream, so that a
refusal (an unknown item, too many subscriptions) is the operation's `error` message rather
than a result inside the stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated

import strawberry
from strawberry.types import Info

from adapters.auth.jwt_tokens import AuthenticationFailed
from application.use_cases.watch_progress import ProgressUpdate, WatchProgressCommand
from entrypoints.graphql import described, types
from entrypoints.graphql.context import RequestContext
from entrypoints.graphql.errors import EXPECTED, raise_as_graphql_error, unauthenticated


@strawberry.type(
    description="A change to one item of the signed-in user's library: the item as it is now, "
    "or its removal."
)
class LibraryItemUpdate:
    item_id: strawberry.ID = strawberry.field(description="The item that changed.")
    removed: bool = strawberry.field(
        description="True when the item was removed from the library; `item` is then null."
    )
    item: types.LibraryItem | None = strawberry.field(
        description="The item with its current ingestion progress; null when removed."
    )


async def _updates(
    info: Info[RequestContext, None], item_id: str | None
) -> AsyncGenerator[ProgressUpdate, None]:
    command = WatchProgressCommand(user_id=info.context.user_id, item_id=item_id)
    try:
        return await info.context.use_cases.watch(command)
    except EXPECTED as error:
        raise_as_graphql_error(error)


def _still_signed_in(info: Info[RequestContext, None]) -> None:
    try:
        info.context.recheck_token()
    except AuthenticationFailed as failure:
        raise unauthenticated(failure.reason) from None


async def _progress_of_one(
    info: Info[RequestContext, None], updates: AsyncGenerator[ProgressUpdate, None]
) -> AsyncIterator[types.IngestionProgress]:
    # Closed with this stream, however it ends (a token expired ends it from here), so that
    # the subscription is let go of at once.
    async with aclosing(updates):
        async for update in updates:
            _still_signed_in(info)
            if update.progress is not None:
                yield types.IngestionProgress.from_domain(update.progress)


async def _library_updates(
    info: Info[RequestContext, None], updates: AsyncGenerator[ProgressUpdate, None]
) -> AsyncIterator[LibraryItemUpdate]:
    async with aclosing(updates):
        async for update in updates:
            _still_signed_in(info)
            yield LibraryItemUpdate(
                item_id=strawberry.ID(str(update.item_id)),
                removed=update.removed,
                item=(
                    types.LibraryItem.from_domain(update.item, update.progress)
                    if update.item is not None
                    else None
                ),
            )


@strawberry.type(description="Live ingestion progress, over WebSockets (graphql-transport-ws).")
class Subscription:
    @described.subscription(
        "The ingestion progress of one item of the signed-in user's library: its "
        "current state at once, then every change as it is committed. Completes when the item "
        "is removed. An unknown id and another user's item are refused alike (NOT_FOUND)."
    )
    async def ingestion_progress(
        self,
        info: Info[RequestContext, None],
        item_id: Annotated[
            strawberry.ID, strawberry.argument(description="The library item's id.")
        ],
    ) -> AsyncIterator[types.IngestionProgress]:
        return _progress_of_one(info, await _updates(info, str(item_id)))

    @described.subscription(
        "Every change to the ingestion progress of any item in the signed-in "
        "user's library, as it is committed, including items added or removed after "
        "subscribing. Sends changes only: query `library` for the state to start from."
    )
    async def library_progress(
        self, info: Info[RequestContext, None]
    ) -> AsyncIterator[LibraryItemUpdate]:
        return _library_updates(info, await _updates(info, None))

"""The Inngest function `ingest-track`: one durable run per `track/ingestion.requested` event.

Thin: it parses the event, and runs IngestTrack's steps under stable step ids (fetch, embed,
upsert, mark) so Inngest retries only the step that failed and replays the others from memory.
A track gone from the catalogue is a NonRetriableError; after the last retry the failure
handler marks the ledger row `failed`."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import inngest
import structlog

from application.errors import DependencyUnavailable
from application.ports.embedder import SparseVector
from application.ports.track_index import TrackVectors
from application.use_cases.ingest_track import (
    IngestTrack,
    IngestTrackCommand,
    TrackDocument,
    TrackGone,
)
from domain.errors import DomainError
from domain.ingestion import EVENT_NAME
from domain.values import CatalogId, Isrc

log = structlog.get_logger("libingest.inngest")

FUNCTION_ID = "ingest-track"
# Flow control (ADR 0019). Retries per step, on Inngest's backoff table (15 s, 30 s, 1 m, 2 m,
# 5 m, 10 m, 20 m, 40 m): the last attempt comes about 80 minutes after the first failure.
RETRIES = 8
# At most one step per ISRC at a time: duplicate events wait rather than race each other.
ONE_STEP_PER_ISRC = inngest.Concurrency(key="event.data.isrc", limit=1)
DEFAULT_CONCURRENCY = 10

# The worker's one table from expected errors to Inngest's decision (ADR 0025): a caller's
# mistake can never succeed, so the run fails at once; a dependency down is retried on Inngest's
# backoff. Anything the table does not know is retried too, as Inngest does by default.
RETRIED: dict[type[Exception], bool] = {DomainError: False, DependencyUnavailable: True}

T = TypeVar("T")


def is_retried(error: Exception) -> bool:
    for cls in type(error).__mro__:
        if cls in RETRIED:
            return RETRIED[cls]
    return True


def as_the_table_says(body: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    """A step's body whose errors the table does not retry end the run (NonRetriableError)."""

    async def step() -> T:
        try:
            return await body()
        except Exception as error:
            if is_retried(error):
                raise
            raise inngest.NonRetriableError(str(error)) from error

    return step


def command_from(data: Any) -> IngestTrackCommand:
    if not isinstance(data, dict):
        raise inngest.NonRetriableError("the event has no data object")
    isrc, track_id = data.get("isrc"), data.get("trackId")
    if not isinstance(isrc, str) or not isinstance(track_id, str):
        raise inngest.NonRetriableError("the event lacks isrc or trackId")
    try:
        # Malformed ids can never succeed: refuse them here, not after every retry.
        Isrc.parse(isrc)
        CatalogId.parse(track_id)
    except DomainError as invalid:
        raise inngest.NonRetriableError(str(invalid)) from invalid
    album_id, item_id = data.get("albumId"), data.get("libraryItemId")
    return IngestTrackCommand(
        isrc=isrc,
        track_id=track_id,
        album_id=album_id if isinstance(album_id, str) else None,
        library_item_id=item_id if isinstance(item_id, str) else None,
    )


def ingest_track_function(
    client: inngest.Inngest,
    use_case: Callable[[], IngestTrack],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> inngest.Function[Any]:
    """`use_case` is called per run: the use case exists only once the app has started.
    `concurrency` bounds the steps running at once across every process (ADR 0019); there is no
    throttle: the only TIDAL call, on a catalogue cache miss, waits its turn at the shared pace."""

    async def on_failure(ctx: inngest.Context) -> None:
        original = ctx.event.data.get("event")
        data = original.get("data") if isinstance(original, dict) else None
        error = ctx.event.data.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        command = command_from(data)
        reason = f"ingestion failed after retries: {message or 'unknown error'}"

        async def mark() -> None:
            await use_case().mark_failed(command.isrc, reason[:500])

        await ctx.step.run("mark-failed", mark)

    @client.create_function(
        fn_id=FUNCTION_ID,
        trigger=inngest.TriggerEvent(event=EVENT_NAME),
        retries=RETRIES,
        concurrency=[inngest.Concurrency(limit=concurrency), ONE_STEP_PER_ISRC],
        on_failure=on_failure,
    )
    async def ingest_track(ctx: inngest.Context) -> dict[str, str]:
        command = command_from(ctx.event.data)
        ingest = use_case()

        async def fetch() -> dict[str, Any]:
            try:
                return dataclasses.asdict(await ingest.fetch(command))
            except TrackGone as gone:
                await ingest.mark_failed(command.isrc, str(gone))
                raise inngest.NonRetriableError(str(gone)) from gone

        fetched = await ctx.step.run("fetch", as_the_table_says(fetch))
        document = TrackDocument(**{**fetched, "artist_names": tuple(fetched["artist_names"])})

        async def embed() -> dict[str, Any]:
            return dataclasses.asdict(ingest.embed(document))

        embedded = await ctx.step.run("embed", as_the_table_says(embed))
        vectors = vectors_from(embedded)

        async def upsert() -> None:
            await ingest.upsert(document, vectors)

        await ctx.step.run("upsert", as_the_table_says(upsert))

        async def mark() -> None:
            await ingest.mark_indexed(command.isrc)

        await ctx.step.run("mark", as_the_table_says(mark))
        log.info("inngest.track_indexed", isrc=command.isrc)
        return {"isrc": command.isrc, "state": "indexed"}

    return ingest_track


def vectors_from(embedded: dict[str, Any]) -> TrackVectors:
    """The embed step's output as Inngest memoised it (JSON: tuples became lists)."""
    lexical = embedded["lexical"]
    return TrackVectors(
        dense=tuple(embedded["dense"]),
        lexical=SparseVector(indices=tuple(lexical["indices"]), values=tuple(lexical["values"])),
    )

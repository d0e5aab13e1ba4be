"""The IngestionQueue port on Inngest: one Event API request per batch through the inngest SDK.

Each request becomes a `track/ingestion.requested` event whose `id` is the request's idempotency
key, so a batch sent again (after a timeout, a crash, an outage) triggers no second run within
Inngest's 24 h window (reference/inngest.md §2.1). Every way a send can fail becomes
QueueUnavailable, and the caller keeps the batch pending and sends it again later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta

import inngest
import structlog

from application.ports.ingestion_queue import QueueUnavailable
from domain.ingestion import EVENT_NAME, IngestionRequest, chunked

logger = structlog.get_logger(__name__)

APP_ID = "libingest"
# The Event API takes at most 5000 events per request (reference §1.6). Our events are ~250
# bytes, so 500 of them stay near 125 KB, well inside the older "512 KB per request" guidance
# whose status on Cloud is unconfirmed.
EVENT_API_MAX_EVENTS = 5000
DEFAULT_MAX_BATCH = 500
# One HTTP attempt. The SDK's default is 30 s per attempt, times 5 attempts.
DEFAULT_REQUEST_TIMEOUT_S = 2.0
# The whole send() including the SDK's own retries (up to 5 attempts with ~3.5 s of backoff
# for 5xx and transport errors; reference §1.5). Past it we give up and let the caller retry.
DEFAULT_SEND_DEADLINE_S = 5.0

_FALSE_VALUES = {"", "0", "false"}


def build_inngest_client(
    *,
    event_key: str | None = None,
    signing_key: str | None = None,
    is_production: bool | None = None,
    dev: str | None = None,
    base_url: str | None = None,
    event_api_base_url: str | None = None,
    api_base_url: str | None = None,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
) -> inngest.Inngest:
    """The inngest SDK client (app id "libingest"), shared by the queue and the worker endpoint.

    Arguments mirror the SDK's environment variables (reference §3.1) so the composition root can
    pass its settings through; whatever is left as None falls back to the SDK's own reading of
    the environment. Mode: `is_production` wins; otherwise `dev` (INNGEST_DEV) switches dev mode
    on unless it is empty, "0" or "false"; otherwise the SDK decides (Cloud by default). A `dev`
    value that is a URL is the fallback origin of both APIs, as in the SDK. `base_url`
    (INNGEST_BASE_URL) sets both origins; the specific ones win over it.
    """
    if is_production is None and dev is not None:
        is_production = dev.strip().lower() in _FALSE_VALUES
    dev_origin = dev.strip() if dev and dev.strip().lower().startswith("http") else None
    return inngest.Inngest(
        app_id=APP_ID,
        event_key=event_key,
        signing_key=signing_key,
        is_production=is_production,
        event_api_base_url=event_api_base_url or base_url or dev_origin,
        api_base_url=api_base_url or base_url or dev_origin,
        request_timeout=timedelta(seconds=request_timeout_s),
    )


def event_for(request: IngestionRequest) -> inngest.Event:
    """The wire form of one request (design.md §4)."""
    return inngest.Event(
        name=EVENT_NAME,
        id=request.idempotency_key,
        data={
            "isrc": request.isrc.value,
            "trackId": request.track_id.value,
            "albumId": request.album_id.value if request.album_id is not None else None,
            "libraryItemId": str(request.library_item_id),
        },
    )


class InngestQueue:
    """Sends ingestion requests to Inngest, `max_batch` events per Event API request.

    A call with more than `max_batch` requests makes one request per chunk, in order; if one
    chunk fails, QueueUnavailable is raised and the earlier chunks may have been accepted (safe
    to send again: the event ids deduplicate). The client is not closed here because the worker
    endpoint may share it.
    """

    def __init__(
        self,
        client: inngest.Inngest,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        send_deadline_s: float = DEFAULT_SEND_DEADLINE_S,
    ) -> None:
        if not 1 <= max_batch <= EVENT_API_MAX_EVENTS:
            raise ValueError(f"max_batch must be within 1..{EVENT_API_MAX_EVENTS}: {max_batch}")
        if client.is_production and not client.event_key:
            # Cloud mode cannot send without a key; say so at startup, not on every send.
            raise ValueError("Inngest in production mode needs an event key (INNGEST_EVENT_KEY)")
        self._client = client
        self.max_batch = max_batch
        self._send_deadline_s = send_deadline_s

    @property
    def client(self) -> inngest.Inngest:
        return self._client

    async def send(self, requests: Sequence[IngestionRequest]) -> None:
        for batch in chunked(requests, self.max_batch):
            await self._send_batch(batch)

    async def _send_batch(self, batch: Sequence[IngestionRequest]) -> None:
        events = [event_for(request) for request in batch]
        started = time.monotonic()
        try:
            ids = await asyncio.wait_for(self._client.send(events), self._send_deadline_s)
        except Exception as error:
            # The SDK raises its private SendEventsError, EventKeyUnspecifiedError, a raw
            # JSONDecodeError for a proxy's HTML page, pydantic errors for an unexpected JSON
            # shape, and TimeoutError from our deadline: all mean "not accepted".
            elapsed_ms = round((time.monotonic() - started) * 1000)
            logger.warning(
                "inngest.send_failed",
                events=len(events),
                error_type=type(error).__name__,
                error=str(error)[:200],
                accepted=sum(1 for event_id in getattr(error, "ids", None) or [] if event_id),
                elapsed_ms=elapsed_ms,
            )
            raise QueueUnavailable(
                f"Inngest did not accept {len(events)} events: {type(error).__name__}: {error}"
            ) from error
        if len(ids) != len(events) or not all(ids):
            # A 200 that does not account for every event is a partial failure.
            logger.warning("inngest.send_partial", events=len(events), ids=len(ids))
            raise QueueUnavailable(
                f"Inngest acknowledged {sum(1 for i in ids if i)} of {len(events)} events"
            )
        logger.debug(
            "inngest.sent",
            events=len(events),
            elapsed_ms=round((time.monotonic() - started) * 1000),
        )

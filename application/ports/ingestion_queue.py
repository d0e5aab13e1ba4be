"""Where ingestion requests go to be worked on (Inngest, or the local in-process queue)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from application.errors import DependencyUnavailable
from domain.ingestion import IngestionRequest


class QueueUnavailable(DependencyUnavailable):
    """The queue did not accept the batch. Nothing in it may be assumed sent; sending it again
    is safe because each event carries its idempotency key as id."""


class IngestionQueue(Protocol):
    """Accepts batches of requests as `track/ingestion.requested` events whose id is the
    request's idempotency key, so a batch sent twice is ingested once. All or nothing per call
    from the caller's point of view: on QueueUnavailable the whole batch is to be retried."""

    max_batch: int

    async def send(self, requests: Sequence[IngestionRequest]) -> None: ...

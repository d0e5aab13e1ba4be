"""The queue used when Inngest is not configured."""

from __future__ import annotations

from collections.abc import Sequence

from application.ports.ingestion_queue import QueueUnavailable
from domain.ingestion import IngestionRequest


class HeldQueue:
    """Accepts nothing: with no Inngest configured and no local worker, requests stay
    `requested` in the ledger (and show so in GraphQL) until a queue exists to take them."""

    max_batch = 500

    async def send(self, requests: Sequence[IngestionRequest]) -> None:
        raise QueueUnavailable("no ingestion queue is configured (set INNGEST_EVENT_KEY)")

from __future__ import annotations

from dataclasses import dataclass

from application.errors import InvalidSearch
from application.ports.embedder import Embedder
from application.ports.track_index import TrackHit, TrackIndex

MAX_QUERY_LENGTH = 200
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class SearchTracksCommand:
    query: str
    limit: int = 10


class SearchTracks:
    """The indexed tracks nearest to a free-text query, best first. The query is embedded with
    the same Embedder as the tracks. Raises InvalidSearch for an empty or oversized query or a
    limit out of range; IndexUnavailable when the index cannot answer. Read-only."""

    def __init__(self, embedder: Embedder, index: TrackIndex) -> None:
        self._embedder = embedder
        self._index = index

    async def __call__(self, command: SearchTracksCommand) -> list[TrackHit]:
        query = command.query.strip()
        if not query:
            raise InvalidSearch("the search query is empty")
        if len(query) > MAX_QUERY_LENGTH:
            raise InvalidSearch(f"the search query is longer than {MAX_QUERY_LENGTH} characters")
        if not 1 <= command.limit <= MAX_LIMIT:
            raise InvalidSearch(f"limit must be between 1 and {MAX_LIMIT}, not {command.limit}")
        vector = self._embedder.embed_query(query)
        if not any(vector):
            return []  # nothing in the query the embedder can use (punctuation only, say)
        return await self._index.search(vector, command.limit)

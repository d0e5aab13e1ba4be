from __future__ import annotations

from dataclasses import dataclass

from application.errors import InvalidSearch
from application.ports.embedder import Embedder, LexicalEncoder
from application.ports.track_index import TrackHit, TrackIndex
from application.use_cases.vectors import query_of

MAX_QUERY_LENGTH = 200
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class SearchTracksCommand:
    query: str
    limit: int = 10


class SearchTracks:
    """The indexed tracks that match a free-text query, best first: a hybrid search that fuses
    the dense ranking (the Embedder's, as the tracks were embedded) with the lexical one, each
    cut at its encoder's match floor, so a query that matches nothing answers [] (ADR 0030).
    Raises InvalidSearch for an empty or oversized query or a limit out of range;
    IndexUnavailable when the index cannot answer. Read-only."""

    def __init__(self, embedder: Embedder, lexical: LexicalEncoder, index: TrackIndex) -> None:
        self._embedder = embedder
        self._lexical = lexical
        self._index = index

    async def __call__(self, command: SearchTracksCommand) -> list[TrackHit]:
        query = command.query.strip()
        if not query:
            raise InvalidSearch("the search query is empty")
        if len(query) > MAX_QUERY_LENGTH:
            raise InvalidSearch(f"the search query is longer than {MAX_QUERY_LENGTH} characters")
        if not 1 <= command.limit <= MAX_LIMIT:
            raise InvalidSearch(f"limit must be between 1 and {MAX_LIMIT}, not {command.limit}")
        search = query_of(self._embedder, self._lexical, query)
        if search is None:
            return []  # nothing in the query the encoders can use (punctuation only, say)
        return await self._index.search(search, command.limit)

from __future__ import annotations

from dataclasses import dataclass

from application.use_cases.add_to_library import AddToLibrary
from application.use_cases.read_models import AddedItem
from domain.library import LibraryItemKind


@dataclass(frozen=True, slots=True)
class AddTrackToLibraryCommand:
    user_id: str
    track_id: str


class AddTrackToLibrary(AddToLibrary):
    """Adds a TIDAL track to the user's library and, in the same transaction, records that
    its ingestion must be scheduled. Calls no catalogue, index or queue: instant and
    dependency-proof. Re-adding answers the existing item with `already_in_library=True` and
    changes nothing. Raises InvalidCatalogId for a malformed id."""

    kind = LibraryItemKind.TRACK

    async def __call__(self, command: AddTrackToLibraryCommand) -> AddedItem:
        return await self._add(command.user_id, command.track_id)

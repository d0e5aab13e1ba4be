from __future__ import annotations

from dataclasses import dataclass

from application.use_cases.add_to_library import AddToLibrary
from application.use_cases.read_models import AddedItem
from domain.library import LibraryItemKind


@dataclass(frozen=True, slots=True)
class AddPlaylistToLibraryCommand:
    user_id: str
    playlist_id: str


class AddPlaylistToLibrary(AddToLibrary):
    """Adds a TIDAL playlist to the user's library and, in the same transaction, records that
    the ingestion of its tracks must be scheduled. Calls no catalogue, index or queue: instant and
    dependency-proof. A playlist changes after it is added, so re-adding one whose scheduling
    has ended re-syncs it in that same write: its tracks are read again and only ISRCs not yet
    settled are requested (ADR 0029); the answer is the existing item with
    `already_in_library=True`. Raises InvalidCatalogId for an id that is not a UUID."""

    kind = LibraryItemKind.PLAYLIST

    async def __call__(self, command: AddPlaylistToLibraryCommand) -> AddedItem:
        return await self._add(command.user_id, command.playlist_id)

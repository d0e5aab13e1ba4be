from __future__ import annotations

from dataclasses import dataclass

from application.use_cases.add_to_library import AddToLibrary
from application.use_cases.read_models import AddedItem
from domain.library import LibraryItemKind


@dataclass(frozen=True, slots=True)
class AddAlbumToLibraryCommand:
    user_id: str
    album_id: str


class AddAlbumToLibrary(AddToLibrary):
    """Adds a TIDAL album to the user's library and, in the same transaction, records that
    the ingestion of its tracks must be scheduled. Calls no catalogue, index or queue: instant and
    dependency-proof. Re-adding answers the existing item with `already_in_library=True` and
    changes nothing. Raises InvalidCatalogId for a malformed id."""

    kind = LibraryItemKind.ALBUM

    async def __call__(self, command: AddAlbumToLibraryCommand) -> AddedItem:
        return await self._add(command.user_id, command.album_id)

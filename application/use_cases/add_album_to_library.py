from __future__ import annotations

from dataclasses import dataclass

from application.ports.clock import Clock
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.add_to_library import add_to_library
from application.use_cases.read_models import AddedItem
from domain.library import LibraryItemKind


@dataclass(frozen=True, slots=True)
class AddAlbumToLibraryCommand:
    user_id: str
    album_id: str


class AddAlbumToLibrary:
    """Adds a TIDAL album to the user's library and, in the same transaction, records that its
    ingestion must be scheduled. Calls no catalogue, index or queue: instant and dependency-proof.
    Re-adding answers the existing item with `already_in_library=True` and changes nothing.
    Raises InvalidCatalogId for a malformed id."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow_factory = uow_factory
        self._clock = clock

    async def __call__(self, command: AddAlbumToLibraryCommand) -> AddedItem:
        return await add_to_library(
            self._uow_factory,
            self._clock,
            user_id=command.user_id,
            kind=LibraryItemKind.ALBUM,
            raw_catalog_id=command.album_id,
        )

from __future__ import annotations

from dataclasses import dataclass

from application.errors import LibraryItemNotFound, item_id_or_not_found
from application.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory
from domain.library import LibraryItem
from domain.values import parse_user_id


async def owned_item(uow: UnitOfWork, user_id: str, raw_item_id: str) -> LibraryItem:
    """The user's item with that id, read in `uow`. A malformed id, an unknown id and another
    user's item all raise the same LibraryItemNotFound, so ids reveal nothing."""
    item = await uow.library.get(parse_user_id(user_id), item_id_or_not_found(raw_item_id))
    if item is None:
        raise LibraryItemNotFound(raw_item_id)
    return item


@dataclass(frozen=True, slots=True)
class GetLibraryItemCommand:
    user_id: str
    item_id: str


class GetLibraryItem:
    """One item of the user's own library. A malformed id, an unknown id and another user's item
    all raise the same LibraryItemNotFound, so ids reveal nothing. Read-only."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def __call__(self, command: GetLibraryItemCommand) -> LibraryItem:
        parse_user_id(command.user_id)  # a bad user id is refused before the database
        item_id_or_not_found(command.item_id)
        async with self._uow_factory() as uow:
            return await owned_item(uow, command.user_id, command.item_id)

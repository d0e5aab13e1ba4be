from __future__ import annotations

from dataclasses import dataclass

from application.errors import LibraryItemNotFound, item_id_or_not_found
from application.ports.unit_of_work import UnitOfWorkFactory
from domain.library import LibraryItem
from domain.values import parse_user_id


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
        owner = parse_user_id(command.user_id)
        item_id = item_id_or_not_found(command.item_id)
        async with self._uow_factory() as uow:
            item = await uow.library.get(owner, item_id)
        if item is None:
            raise LibraryItemNotFound(command.item_id)
        return item

from __future__ import annotations

from dataclasses import dataclass

from application.errors import LibraryItemNotFound, item_id_or_not_found
from application.ports.unit_of_work import UnitOfWorkFactory
from domain.values import LibraryItemId, parse_user_id


@dataclass(frozen=True, slots=True)
class RemoveFromLibraryCommand:
    user_id: str
    item_id: str


class RemoveFromLibrary:
    """Removes one of the user's own items; its scheduling job goes with it (the outbox row
    belongs to the item), so a job that has not run never will.
    Tracks already requested stay requested: another library may need them.
    Raises LibraryItemNotFound for malformed, unknown and other users' ids alike."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def __call__(self, command: RemoveFromLibraryCommand) -> LibraryItemId:
        owner = parse_user_id(command.user_id)
        item_id = item_id_or_not_found(command.item_id)
        async with self._uow_factory() as uow:
            if not await uow.library.remove(owner, item_id):
                raise LibraryItemNotFound(command.item_id)
            await uow.commit()
        return item_id

from __future__ import annotations

from collections.abc import Sequence

from application.ports.unit_of_work import UnitOfWorkFactory
from domain.library import IngestionProgress
from domain.values import LibraryItemId


class GetIngestionProgress:
    """Progress of many library items at once (one query for a whole page of items). Callers
    pass only ids of items they already proved the user owns. Read-only."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def __call__(
        self, item_ids: Sequence[LibraryItemId]
    ) -> dict[LibraryItemId, IngestionProgress]:
        async with self._uow_factory() as uow:
            return await uow.progress.for_items(item_ids)

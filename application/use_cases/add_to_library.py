"""The shared core of AddTrackToLibrary and AddAlbumToLibrary: one transaction that writes the
item and its scheduling job (the transactional outbox), or finds the item already there."""

from __future__ import annotations

from application.ports.clock import Clock
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.read_models import AddedItem
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, UserId, parse_user_id


async def add_to_library(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    *,
    user_id: str,
    kind: LibraryItemKind,
    raw_catalog_id: str,
) -> AddedItem:
    owner: UserId = parse_user_id(user_id)
    catalog_id = CatalogId.parse(raw_catalog_id)  # raises InvalidCatalogId before any I/O
    async with uow_factory() as uow:
        now = clock.now()
        candidate = LibraryItem.new(user_id=owner, kind=kind, catalog_id=catalog_id, at=now)
        stored, created = await uow.library.add_if_absent(candidate)
        if created:
            # Same transaction as the item: either both exist after commit or neither does.
            await uow.outbox.enqueue(stored.id, at=now)
        await uow.commit()
        return AddedItem(stored, already_in_library=not created)


class AddToLibrary:
    """Base of the two add use cases: they differ only in the kind of item."""

    kind: LibraryItemKind

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow_factory = uow_factory
        self._clock = clock

    async def _add(self, user_id: str, raw_catalog_id: str) -> AddedItem:
        return await add_to_library(
            self._uow_factory,
            self._clock,
            user_id=user_id,
            kind=self.kind,
            raw_catalog_id=raw_catalog_id,
        )

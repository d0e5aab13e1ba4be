"""The shared core of AddTrackToLibrary and AddAlbumToLibrary: one atomic write of the item and
its scheduling job (the transactional outbox), or the item already there."""

from __future__ import annotations

from application.ports.clock import Clock
from application.ports.library_additions import LibraryAdditions
from application.use_cases.read_models import AddedItem
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, UserId, parse_user_id


async def add_to_library(
    additions: LibraryAdditions,
    clock: Clock,
    *,
    user_id: str,
    kind: LibraryItemKind,
    raw_catalog_id: str,
) -> AddedItem:
    owner: UserId = parse_user_id(user_id)
    catalog_id = CatalogId.parse(raw_catalog_id)  # raises InvalidCatalogId before any I/O
    candidate = LibraryItem.new(user_id=owner, kind=kind, catalog_id=catalog_id, at=clock.now())
    # Item and job in one write: either both exist afterwards or neither does.
    stored, created = await additions.add(candidate)
    return AddedItem(stored, already_in_library=not created)


class AddToLibrary:
    """Base of the two add use cases: they differ only in the kind of item."""

    kind: LibraryItemKind

    def __init__(self, additions: LibraryAdditions, clock: Clock) -> None:
        self._additions = additions
        self._clock = clock

    async def _add(self, user_id: str, raw_catalog_id: str) -> AddedItem:
        return await add_to_library(
            self._additions,
            self._clock,
            user_id=user_id,
            kind=self.kind,
            raw_catalog_id=raw_catalog_id,
        )

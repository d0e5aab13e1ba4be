"""The shared core of AddTrackToLibrary and AddAlbumToLibrary: one atomic write of the item and
its scheduling job (the transactional outbox), or the item already there; within the user's
quotas (ADR 0022)."""

from __future__ import annotations

from dataclasses import dataclass

from application.errors import AddRateLimited
from application.ports.clock import Clock
from application.ports.library_additions import LibraryAdditions
from application.ports.rate_limits import AddRateLimits
from application.use_cases.read_models import AddedItem
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, UserId, parse_user_id


@dataclass(frozen=True, slots=True)
class AddQuotas:
    """What one user may add: a rate (kept by `rate_limits`) and a cap on the items of theirs
    still waiting to be scheduled, each of which will cost catalogue calls at the shared pace."""

    rate_limits: AddRateLimits
    max_pending: int | None  # None: no cap


async def add_to_library(
    additions: LibraryAdditions,
    clock: Clock,
    quotas: AddQuotas | None,
    *,
    user_id: str,
    kind: LibraryItemKind,
    raw_catalog_id: str,
) -> AddedItem:
    owner: UserId = parse_user_id(user_id)
    catalog_id = CatalogId.parse(raw_catalog_id, kind.id_form)  # InvalidCatalogId before any I/O
    # A malformed id costs no token: it never reaches the database.
    if quotas is not None and (retry_after := quotas.rate_limits.take(owner)) > 0:
        raise AddRateLimited(retry_after)
    candidate = LibraryItem.new(user_id=owner, kind=kind, catalog_id=catalog_id, at=clock.now())
    # Item and job in one write: either both exist afterwards or neither does.
    max_pending = quotas.max_pending if quotas is not None else None
    stored, created = await additions.add(candidate, max_pending=max_pending)
    return AddedItem(stored, already_in_library=not created)


class AddToLibrary:
    """Base of the two add use cases: they differ only in the kind of item."""

    kind: LibraryItemKind

    def __init__(
        self, additions: LibraryAdditions, clock: Clock, quotas: AddQuotas | None = None
    ) -> None:
        self._additions = additions
        self._clock = clock
        self._quotas = quotas  # None: unlimited (tests and tools that add on their own behalf)

    async def _add(self, user_id: str, raw_catalog_id: str) -> AddedItem:
        return await add_to_library(
            self._additions,
            self._clock,
            self._quotas,
            user_id=user_id,
            kind=self.kind,
            raw_catalog_id=raw_catalog_id,
        )

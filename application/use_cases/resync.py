from __future__ import annotations

from dataclasses import dataclass

from application.errors import LibraryItemNotFound
from application.ports.clock import Clock
from application.ports.unit_of_work import UnitOfWorkFactory
from domain.library import LibraryItemKind
from domain.values import parse_library_item_id

RESYNCED_KINDS = frozenset(kind for kind in LibraryItemKind if kind.resyncs_on_readd)


@dataclass(frozen=True, slots=True)
class ResyncCommand:
    item_ids: tuple[str, ...] = ()  # library item ids; none: every item that changes


@dataclass(frozen=True, slots=True)
class ResyncOutcome:
    resynced: int  # jobs put back to pending
    still_pending: int  # of the items named, those whose job had not ended (left alone)


class Resync:
    """The operator's re-sync of items that change after they are added (playlists, ADR 0029),
    the same that a user's re-add makes: each named item's job, or every such item's with no
    names, if it has ended, is pending again and its track links removed, so the relay reads the
    item afresh and requests only the ISRCs not yet settled. One transaction; the relays are
    woken when it commits. Raises InvalidLibraryItemId for a malformed id and
    LibraryItemNotFound for an id that is no item of a kind that changes, before writing
    anything."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow_factory = uow_factory
        self._clock = clock

    async def __call__(self, command: ResyncCommand) -> ResyncOutcome:
        ids = [parse_library_item_id(raw) for raw in dict.fromkeys(command.item_ids)]
        async with self._uow_factory() as uow:
            if ids:
                found = await uow.jobs.items(ids)
                for item_id in ids:
                    item = found.get(item_id)
                    if item is None or item.kind not in RESYNCED_KINDS:
                        raise LibraryItemNotFound(str(item_id))
            resynced = await uow.jobs.resync(
                ids or None, kinds=RESYNCED_KINDS, now=self._clock.now()
            )
            await uow.commit()
        still_pending = len(ids) - len(resynced) if ids else 0
        return ResyncOutcome(resynced=len(resynced), still_pending=still_pending)

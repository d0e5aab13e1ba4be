from __future__ import annotations

from dataclasses import dataclass

from application.errors import InvalidPageSize
from application.ports.unit_of_work import LibraryPosition, UnitOfWorkFactory
from application.use_cases.cursors import decode_cursor, encode_cursor
from application.use_cases.read_models import LibraryPage
from domain.library import LibraryItemKind
from domain.values import parse_user_id

MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class ListLibraryCommand:
    user_id: str
    first: int = 50
    after: str | None = None
    kind: LibraryItemKind | None = None


class ListLibrary:
    """A page of the user's own library, newest first, optionally one kind only. Cursors are
    opaque and stay valid when items are added. Raises InvalidPageSize or InvalidCursor.
    Read-only."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def __call__(self, command: ListLibraryCommand) -> LibraryPage:
        owner = parse_user_id(command.user_id)
        if not 0 <= command.first <= MAX_PAGE_SIZE:
            raise InvalidPageSize(command.first, MAX_PAGE_SIZE)
        after = decode_cursor(command.after) if command.after is not None else None
        async with self._uow_factory() as uow:
            page = await uow.library.page(
                owner, kind=command.kind, after=after, limit=command.first
            )
        cursors = tuple(
            encode_cursor(LibraryPosition(item.added_at, item.id)) for item in page.items
        )
        return LibraryPage(
            items=page.items,
            cursors=cursors,
            has_next_page=page.has_more,
            total_count=page.total_count,
        )

"""Library items in PostgreSQL. Every query carries the owner, so isolation is in the SQL."""

from __future__ import annotations

from sqlalchemy import RowMapping, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.postgres.tables import library_items
from application.ports.unit_of_work import LibraryPosition, LibrarySlice
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, LibraryItemId, UserId


class PostgresLibraryRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, user_id: UserId, item_id: LibraryItemId) -> LibraryItem | None:
        row = (
            (
                await self._connection.execute(
                    select(library_items).where(
                        library_items.c.id == item_id, library_items.c.user_id == user_id
                    )
                )
            )
            .mappings()
            .first()
        )
        return row_to_item(row) if row is not None else None

    async def remove(self, user_id: UserId, item_id: LibraryItemId) -> bool:
        result = await self._connection.execute(
            library_items.delete()
            .where(library_items.c.id == item_id, library_items.c.user_id == user_id)
            .returning(library_items.c.id)
        )
        return result.scalar_one_or_none() is not None

    async def page(
        self,
        user_id: UserId,
        *,
        kind: LibraryItemKind | None,
        after: LibraryPosition | None,
        limit: int,
    ) -> LibrarySlice:
        owned = [library_items.c.user_id == user_id]
        if kind is not None:
            owned.append(library_items.c.kind == kind.value)
        query = select(library_items).where(*owned)
        if after is not None:
            # Newest first: the next page holds what is strictly older than the cursor, with the
            # id breaking ties between items added in the same microsecond.
            query = query.where(
                or_(
                    library_items.c.added_at < after.added_at,
                    and_(
                        library_items.c.added_at == after.added_at,
                        library_items.c.id < after.item_id,
                    ),
                )
            )
        query = query.order_by(library_items.c.added_at.desc(), library_items.c.id.desc()).limit(
            limit + 1
        )
        rows = (await self._connection.execute(query)).mappings().all()
        counting = select(func.count()).select_from(library_items).where(*owned)
        total = (await self._connection.execute(counting)).scalar_one()
        items = tuple(row_to_item(row) for row in rows[:limit])
        return LibrarySlice(items=items, has_more=len(rows) > limit, total_count=int(total))


def row_to_item(row: RowMapping) -> LibraryItem:
    return LibraryItem(
        id=LibraryItemId(row["id"]),
        user_id=UserId(row["user_id"]),
        kind=LibraryItemKind(row["kind"]),
        catalog_id=CatalogId(row["catalog_id"]),
        added_at=row["added_at"],
        title=row["title"],
        artist_names=tuple(row["artist_names"] or ()),
    )

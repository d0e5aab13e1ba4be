"""What the library use cases answer with: plain data, no framework types."""

from __future__ import annotations

from dataclasses import dataclass

from domain.library import LibraryItem


@dataclass(frozen=True, slots=True)
class AddedItem:
    item: LibraryItem
    already_in_library: bool


@dataclass(frozen=True, slots=True)
class LibraryPage:
    items: tuple[LibraryItem, ...]
    cursors: tuple[str, ...]  # one opaque cursor per item, same order
    has_next_page: bool
    total_count: int

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None

"""Errors the use cases raise on purpose; the entrypoints map each to their transport."""

from domain.errors import DomainError, InvalidLibraryItemId
from domain.values import LibraryItemId, parse_library_item_id


class ApplicationError(DomainError):
    """Base of the use cases' expected errors."""


class LibraryItemNotFound(ApplicationError):
    """Unknown id, or another user's item: the two are indistinguishable on purpose."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"no library item with id {item_id[:64]!r}")
        self.item_id = item_id


def item_id_or_not_found(raw: str) -> LibraryItemId:
    """A malformed item id reads exactly as an unknown one: ids reveal nothing."""
    try:
        return parse_library_item_id(raw)
    except InvalidLibraryItemId as error:
        raise LibraryItemNotFound(raw) from error


class InvalidCursor(ApplicationError):
    def __init__(self, raw: str) -> None:
        super().__init__("the pagination cursor is not one this service issued")
        self.raw = raw


class InvalidPageSize(ApplicationError):
    def __init__(self, first: int, maximum: int) -> None:
        super().__init__(f"first must be between 0 and {maximum}, not {first}")
        self.first = first
        self.maximum = maximum


class InvalidSearch(ApplicationError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

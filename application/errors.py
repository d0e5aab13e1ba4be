"""The two families of errors raised on purpose (ADR 0025), which the entrypoints map each to
their transport:

- the caller's mistakes: `DomainError` (domain/errors.py) and its `ApplicationError`s here.
  The request as sent is refused; the caller must change it (or, over a quota, slow down).
- a dependency down: `DependencyUnavailable`, raised by the ports' adapters (the database,
  the search index, the catalogue, the queue). Not the caller's fault; asking again later may
  succeed, and nothing was half done."""

from domain.errors import DomainError, InvalidLibraryItemId
from domain.values import LibraryItemId, parse_library_item_id


class DependencyUnavailable(Exception):
    """Base of every error that says a dependency could not serve the call now. Each port names
    its own (StorageUnavailable, IndexUnavailable, CatalogUnavailable, QueueUnavailable)."""


class ApplicationError(DomainError):
    """Base of the use cases' expected errors: the caller's mistakes a use case detects."""


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


class AddRateLimited(ApplicationError):
    """The user has used up their adds for now (ADR 0022); nothing was written."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(f"too many adds; retry in {retry_after_seconds:.3f} s")
        self.retry_after_seconds = retry_after_seconds


class TooManyPendingAdds(ApplicationError):
    """The user already has `limit` items waiting to be scheduled (ADR 0022); nothing was
    written. Adds are accepted again as their scheduling finishes."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"{limit} added items are still waiting to be scheduled; retry when some are done"
        )
        self.limit = limit


class NothingToRetry(ApplicationError):
    """A retry of an item whose ingestion has not failed (neither its scheduling nor any of
    its tracks): nothing was changed."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"library item {item_id[:64]!r} has nothing that failed to retry")
        self.item_id = item_id


class TooManySubscriptions(ApplicationError):
    """The user already holds `limit` progress subscriptions in this process (ADR 0031)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"at most {limit} progress subscriptions at a time; complete one to start another"
        )
        self.limit = limit

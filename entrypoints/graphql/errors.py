"""The GraphQL transport's one table from expected errors to what clients see.

Mutations answer expected errors as members of their result union; query arguments that cannot
be honoured become GraphQL errors with `extensions.code = "BAD_USER_INPUT"`. Anything not in
these tables is unexpected and masked by the schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from application.errors import InvalidCursor, InvalidPageSize, LibraryItemNotFound
from application.ports.track_index import IndexUnavailable
from application.ports.unit_of_work import StorageUnavailable
from domain.errors import DomainError, InvalidCatalogId, InvalidUserId
from entrypoints.graphql import types

UNAUTHENTICATED = "UNAUTHENTICATED"
BAD_USER_INPUT = "BAD_USER_INPUT"

T = TypeVar("T")
ErrorTable = dict[type[DomainError], Callable[[Any], T]]

# Expected errors of the add mutations, as members of AddToLibraryResult.
ADD_TO_LIBRARY_ERRORS: ErrorTable[types.InvalidCatalogId] = {
    InvalidCatalogId: lambda error: types.InvalidCatalogId(
        message=str(error), catalog_id=error.raw
    ),
}
# Expected errors of removeFromLibrary, as members of RemoveFromLibraryResult.
REMOVE_FROM_LIBRARY_ERRORS: ErrorTable[types.LibraryItemNotFound] = {
    LibraryItemNotFound: lambda error: types.LibraryItemNotFound(
        message=str(error), item_id=strawberry.ID(error.item_id)
    ),
}

BAD_INPUT: tuple[type[DomainError], ...] = (InvalidCursor, InvalidPageSize, InvalidUserId)


def as_union_member(table: ErrorTable[T], error: DomainError) -> T:
    """The union member for an expected error; re-raises what the table does not know."""
    for error_type, build in table.items():
        if isinstance(error, error_type):
            return build(error)
    raise error


def bad_user_input(error: DomainError) -> GraphQLError:
    return GraphQLError(str(error), extensions={"code": BAD_USER_INPUT}, original_error=None)


def unauthenticated(reason: str) -> GraphQLError:
    return GraphQLError(f"authentication required: {reason}", extensions={"code": UNAUTHENTICATED})


def should_mask(error: GraphQLError) -> bool:
    """Mask only what escaped a resolver unexpectedly. Parse and validation errors (no original
    error) and the GraphQLErrors raised on purpose above stay as they are."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


# Errors that are not the client's fault and not a bug: answered with a code that tells the
# client to retry, instead of the masked "Unexpected error.".
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
_UNAVAILABLE: dict[type[Exception], str] = {
    StorageUnavailable: "the library is temporarily unavailable; retry shortly",
    IndexUnavailable: "the search index is temporarily unavailable; retry shortly",
}


class MaskUnexpectedErrors(MaskErrors):
    """MaskErrors that answers a dependency outage with SERVICE_UNAVAILABLE and a safe message,
    and masks everything else unexpected."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        for error_type, message in _UNAVAILABLE.items():
            if isinstance(error.original_error, error_type):
                return GraphQLError(
                    message,
                    nodes=error.nodes,
                    path=error.path,
                    extensions={"code": SERVICE_UNAVAILABLE},
                )
        return super().anonymise_error(error)

    def _process_result(self, result: object) -> None:
        # MaskErrors tests the result against a runtime-checkable Protocol, an isinstance that
        # walks the protocol's members on every request (bench/ profile). Every result that
        # reaches this hook has `errors`; reading it directly keeps the masking the same.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

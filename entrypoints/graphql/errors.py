"""The GraphQL transport's one table from expected errors to what clients see (ADR 0025).

Keyed on the two families: the caller's mistakes (DomainError) read as a member of a mutation's
result union where the union has one, else as a GraphQL error with `extensions.code =
"BAD_USER_INPUT"` and the error's own message; a dependency down (DependencyUnavailable) reads
as `SERVICE_UNAVAILABLE` with a fixed message that tells the client to retry and names nothing
inside. Resolvers catch `EXPECTED` and hand the error to a helper here; anything not in the
table is unexpected and masked by the schema."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import InvalidOperationTypeError

from application.errors import (
    AddRateLimited,
    DependencyUnavailable,
    LibraryItemNotFound,
    NothingToRetry,
    TooManyPendingAdds,
    TooManySubscriptions,
)
from application.ports.track_index import IndexUnavailable
from application.ports.unit_of_work import StorageUnavailable
from domain.errors import DomainError, InvalidCatalogId
from entrypoints.graphql import types

UNAUTHENTICATED = "UNAUTHENTICATED"
BAD_USER_INPUT = "BAD_USER_INPUT"
NOT_FOUND = "NOT_FOUND"
BAD_REQUEST = "BAD_REQUEST"
# Not the client's fault and not a bug: the client should retry shortly.
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
# Over a per-user quota (ADR 0022): GraphQL errors with a code, as throttling reads on the APIs
# that have it, not members of the add's union; the schema of design.md stays as it is.
RATE_LIMITED = "RATE_LIMITED"
TOO_MANY_PENDING = "TOO_MANY_PENDING"
TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"

# What resolvers catch; the table below answers every error of these two families.
EXPECTED: tuple[type[Exception], ...] = (DomainError, DependencyUnavailable)


@dataclass(frozen=True, slots=True)
class Answer:
    """How one expected error reads to a client."""

    code: str
    # None: the error's own message, written for the caller (domain errors carry no internals).
    message: str | None = None
    # The member of a mutation's result union, for the mutations whose union has that type.
    member: Callable[[Any], object] | None = None
    # More `extensions` than the code, from the error's data.
    details: Callable[[Any], dict[str, Any]] | None = None

    def extensions_for(self, error: Exception) -> dict[str, Any]:
        return {"code": self.code} | (self.details(error) if self.details is not None else {})


# The table. The most specific entry for an error's class wins, so each family's base is the
# answer for every member not listed on its own.
ERRORS: dict[type[Exception], Answer] = {
    # The caller's mistakes.
    InvalidCatalogId: Answer(
        BAD_USER_INPUT,
        member=lambda error: types.InvalidCatalogId(message=str(error), catalog_id=error.raw),
    ),
    LibraryItemNotFound: Answer(
        NOT_FOUND,
        member=lambda error: types.LibraryItemNotFound(
            message=str(error), item_id=strawberry.ID(error.item_id)
        ),
    ),
    NothingToRetry: Answer(
        BAD_USER_INPUT,
        member=lambda error: types.NothingToRetry(
            message=str(error), item_id=strawberry.ID(error.item_id)
        ),
    ),
    AddRateLimited: Answer(
        RATE_LIMITED,
        # Rounded up: a client that waits exactly this long finds a token there.
        details=lambda error: {
            "retryAfterSeconds": math.ceil(error.retry_after_seconds * 1000) / 1000
        },
    ),
    TooManyPendingAdds: Answer(TOO_MANY_PENDING, details=lambda error: {"limit": error.limit}),
    TooManySubscriptions: Answer(
        TOO_MANY_SUBSCRIPTIONS, details=lambda error: {"limit": error.limit}
    ),
    DomainError: Answer(BAD_USER_INPUT),
    # The WebSocket transport runs subscriptions only (ADR 0031); HTTP refuses this error
    # before execution with its own status codes, so only a WebSocket client reads this.
    InvalidOperationTypeError: Answer(
        BAD_REQUEST,
        "only subscriptions are served over WebSockets; send queries and mutations over HTTP",
    ),
    # A dependency down.
    StorageUnavailable: Answer(
        SERVICE_UNAVAILABLE, "the library is temporarily unavailable; retry shortly"
    ),
    IndexUnavailable: Answer(
        SERVICE_UNAVAILABLE, "the search index is temporarily unavailable; retry shortly"
    ),
    DependencyUnavailable: Answer(
        SERVICE_UNAVAILABLE, "the service is temporarily unavailable; retry shortly"
    ),
}


def answer_for(error_type: type[BaseException]) -> Answer | None:
    """The table's entry for an error class: its own, or its nearest listed base's."""
    for cls in error_type.__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    return None


def as_graphql_error(error: Exception) -> GraphQLError:
    """The GraphQL error the table answers for `error`. Raises `error` itself when the table
    does not know it: unexpected, it is masked."""
    answer = answer_for(type(error))
    if answer is None:
        raise error
    message = str(error) if answer.message is None else answer.message
    return GraphQLError(message, extensions=answer.extensions_for(error))


Member = TypeVar("Member")


def as_union_member(error: Exception, member_type: type[Member]) -> Member:
    """The result union's member for `error` when the table builds one of `member_type`;
    otherwise the table's GraphQL error is raised (a dependency down fails the whole field)."""
    answer = answer_for(type(error))
    if answer is not None and answer.member is not None:
        member = answer.member(error)
        if isinstance(member, member_type):
            return member
    raise as_graphql_error(error) from None


def raise_unless_not_found(error: Exception) -> None:
    """For a lookup field, which answers null for what the table calls NOT_FOUND (an unknown
    id and another user's read the same): returns for that, raises the rest as the table says."""
    answer = answer_for(type(error))
    if answer is None or answer.code != NOT_FOUND:
        raise_as_graphql_error(error)


def raise_as_graphql_error(error: Exception) -> NoReturn:
    raise as_graphql_error(error) from None


def unauthenticated(reason: str) -> GraphQLError:
    return GraphQLError(f"authentication required: {reason}", extensions={"code": UNAUTHENTICATED})


def should_mask(error: GraphQLError) -> bool:
    """Mask only what escaped a resolver unexpectedly. Parse and validation errors (no original
    error) and the GraphQLErrors raised on purpose above stay as they are."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    """MaskErrors that answers an expected error escaping a field that did not catch it (a
    nested field's loader losing the database) as the table says, and masks everything else."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        answer = answer_for(type(original)) if original is not None else None
        if answer is None or original is None:
            return super().anonymise_error(error)
        return GraphQLError(
            str(original) if answer.message is None else answer.message,
            nodes=error.nodes,
            path=error.path,
            extensions=answer.extensions_for(original),
        )

    def _process_result(self, result: object) -> None:
        # MaskErrors tests the result against a runtime-checkable Protocol, an isinstance that
        # walks the protocol's members on every request (bench/ profile). Every result that
        # reaches this hook has `errors`; reading it directly keeps the masking the same.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

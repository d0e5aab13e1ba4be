"""The two error families and each transport's one table keyed on them (ADR 0025): a caller's
mistake reads as such (a union member, BAD_USER_INPUT, exit 2, no retry), a dependency down reads
as such (SERVICE_UNAVAILABLE, exit 69, retried), and anything else stays unexpected."""

from __future__ import annotations

import inngest
import pytest

from application.errors import (
    DependencyUnavailable,
    InvalidCursor,
    InvalidPageSize,
    InvalidSearch,
    LibraryItemNotFound,
)
from application.ports.catalog import CatalogItemNotFound, CatalogUnavailable
from application.ports.ingestion_queue import QueueUnavailable
from application.ports.track_index import IndexUnavailable
from application.ports.unit_of_work import StorageUnavailable
from domain.errors import DomainError, InvalidCatalogId, InvalidIsrc, InvalidUserId
from entrypoints import cli, inngest_worker
from entrypoints.graphql import errors, types

CALLER_MISTAKES: list[DomainError] = [
    InvalidCatalogId("x1"),
    InvalidIsrc("nope"),
    InvalidUserId(""),
    InvalidCursor("forged"),
    InvalidPageSize(first=-1, maximum=100),
    InvalidSearch("the query is empty"),
    LibraryItemNotFound("li-1"),
    CatalogItemNotFound("track", "1"),
]
DEPENDENCIES_DOWN: list[DependencyUnavailable] = [
    StorageUnavailable("the database is unreachable: ConnectionRefusedError 10.0.0.7:5432"),
    IndexUnavailable("qdrant at http://10.0.0.8:6333 timed out"),
    CatalogUnavailable("TIDAL answered 503"),
    QueueUnavailable("the Event API answered 500"),
]


def _name(error: Exception) -> str:
    return type(error).__name__


@pytest.mark.parametrize("error", DEPENDENCIES_DOWN, ids=_name)
def test_a_dependency_down_is_not_a_callers_mistake(error: DependencyUnavailable) -> None:
    assert not isinstance(error, DomainError)


# -- GraphQL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [e for e in CALLER_MISTAKES if not isinstance(e, LibraryItemNotFound)],
    ids=_name,
)
def test_a_callers_mistake_is_bad_user_input_with_its_own_message(error: DomainError) -> None:
    answer = errors.as_graphql_error(error)

    assert answer.extensions == {"code": "BAD_USER_INPUT"}
    assert answer.message == str(error)


@pytest.mark.parametrize("error", DEPENDENCIES_DOWN, ids=_name)
def test_a_dependency_down_is_service_unavailable_and_names_nothing_inside(
    error: DependencyUnavailable,
) -> None:
    answer = errors.as_graphql_error(error)

    assert answer.extensions == {"code": "SERVICE_UNAVAILABLE"}
    assert "retry" in answer.message
    assert str(error) not in answer.message and "10.0.0" not in answer.message


def test_an_unknown_item_is_not_found() -> None:
    answer = errors.as_graphql_error(LibraryItemNotFound("li-1"))

    assert answer.extensions == {"code": "NOT_FOUND"}


def test_an_error_of_neither_family_is_raised_as_it_is_to_be_masked() -> None:
    unexpected = KeyError("internal")

    with pytest.raises(KeyError):
        errors.as_graphql_error(unexpected)


def test_an_invalid_catalog_id_in_an_add_is_the_unions_member() -> None:
    member = errors.as_union_member(InvalidCatalogId("x1"), types.InvalidCatalogId)

    assert member == types.InvalidCatalogId(message=str(InvalidCatalogId("x1")), catalog_id="x1")


def test_an_unknown_item_in_a_removal_is_the_unions_member() -> None:
    member = errors.as_union_member(LibraryItemNotFound("li-1"), types.LibraryItemNotFound)

    assert isinstance(member, types.LibraryItemNotFound)
    assert member.item_id == "li-1"


def test_a_member_the_union_does_not_have_is_a_graphql_error_instead() -> None:
    with pytest.raises(Exception) as raised:
        errors.as_union_member(LibraryItemNotFound("li-1"), types.InvalidCatalogId)

    assert getattr(raised.value, "extensions", None) == {"code": "NOT_FOUND"}


@pytest.mark.parametrize("error", DEPENDENCIES_DOWN, ids=_name)
def test_a_dependency_down_in_a_mutation_fails_the_field_not_a_union_member(
    error: DependencyUnavailable,
) -> None:
    with pytest.raises(Exception) as raised:
        errors.as_union_member(error, types.InvalidCatalogId)

    assert getattr(raised.value, "extensions", None) == {"code": "SERVICE_UNAVAILABLE"}


def test_a_lookup_answers_null_for_an_unknown_item_and_raises_the_rest() -> None:
    errors.raise_unless_not_found(LibraryItemNotFound("li-1"))  # returns: the field is null

    with pytest.raises(Exception) as raised:
        errors.raise_unless_not_found(StorageUnavailable("down"))
    assert getattr(raised.value, "extensions", None) == {"code": "SERVICE_UNAVAILABLE"}


# -- CLI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", CALLER_MISTAKES, ids=_name)
def test_a_callers_mistake_exits_2(error: DomainError) -> None:
    assert cli.exit_code_for(error) == 2


@pytest.mark.parametrize("error", DEPENDENCIES_DOWN, ids=_name)
def test_a_dependency_down_exits_69_ex_unavailable(error: DependencyUnavailable) -> None:
    assert cli.exit_code_for(error) == 69


def test_a_configuration_value_that_does_not_parse_exits_2() -> None:
    assert cli.exit_code_for(ValueError("DATABASE_URL must be a postgresql:// URL")) == 2


def test_an_error_of_neither_family_is_not_in_the_cli_table() -> None:
    assert cli.exit_code_for(RuntimeError("a bug")) is None


# -- Inngest worker ------------------------------------------------------------------------------


@pytest.mark.parametrize("error", CALLER_MISTAKES, ids=_name)
async def test_a_callers_mistake_in_a_step_ends_the_run_without_retries(
    error: DomainError,
) -> None:
    async def body() -> None:
        raise error

    with pytest.raises(inngest.NonRetriableError):
        await inngest_worker.as_the_table_says(body)()


@pytest.mark.parametrize("error", DEPENDENCIES_DOWN, ids=_name)
async def test_a_dependency_down_in_a_step_is_retried(error: DependencyUnavailable) -> None:
    async def body() -> None:
        raise error

    with pytest.raises(type(error)):
        await inngest_worker.as_the_table_says(body)()


def test_an_error_of_neither_family_is_retried_as_inngest_does_by_default() -> None:
    assert inngest_worker.is_retried(RuntimeError("a bug"))

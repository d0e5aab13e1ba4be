"""Hostile GraphQL documents and cursors against the real server over HTTP (issue 11, items 1-2):
documents whose cost hides in fragments are refused before anything expands them, while the
server keeps answering; a forged cursor is the caller's mistake, never a server error; in
production no error suggests a name of the schema."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

LIBRARY = """
query Library($first: Int, $after: String) {
  library(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id catalogId } }
  }
}"""
ADD_ALBUM = """
mutation Add($id: ID!) {
  addAlbumToLibrary(albumId: $id) { __typename ... on AddToLibrarySuccess { item { id } } }
}"""


class Caller:
    """One signed-in user talking to the live server."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "variables": variables or {}}
        if operation_name is not None:
            body["operationName"] = operation_name
        response = await self.client.post(
            "/graphql", json=body, headers={"accept": "application/json"}
        )
        # A refused document may be a 200 or a 4xx, as GraphQL over HTTP allows; never a 5xx.
        assert response.status_code < 500, response.text[:500]
        assert "Traceback" not in response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
async def server(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as client:
        yield client


@pytest.fixture
async def as_user(
    live_server: str, token_for: Callable[..., str]
) -> AsyncIterator[Callable[[str], Caller]]:
    clients: list[httpx.AsyncClient] = []

    def make(user_id: str) -> Caller:
        headers = {"authorization": f"Bearer {token_for(user_id)}"}
        clients.append(httpx.AsyncClient(base_url=live_server, headers=headers, timeout=60))
        return Caller(clients[-1])

    yield make
    for client in clients:
        await client.aclose()


def _messages(result: dict[str, Any]) -> list[str]:
    return [error["message"] for error in result.get("errors") or []]


def _refused(result: dict[str, Any], *words: str) -> str:
    assert result.get("data") is None, result
    messages = " | ".join(_messages(result))
    for word in words:
        assert word in messages, messages
    return messages


# ---------------------------------------------------------------------------------------------
# Documents whose cost hides in fragments


def _doubling_fragments(levels: int) -> str:
    """Each fragment spreads the one before twice: F(n) holds 3 * 2**n - 2 selections."""
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return " ".join(fragments)


def _doubling(levels: int, name: str = "P") -> str:
    return f"query {name} {{ ...F{levels} }} {_doubling_fragments(levels)}"


def _wide_fragment_spread(times: int, width: int) -> str:
    fields = " ".join(["__typename"] * width)
    spreads = " ".join(["...W"] * times)
    return f"{{ {spreads} }} fragment W on Query {{ {fields} }}"


def _many_operations(count: int) -> str:
    """Each operation within the budget (95 selections), all of them together far past it."""
    operations = " ".join(f"query O{n} {{ ...F5 }}" for n in range(count))
    return f"{operations} {_doubling_fragments(5)}"


HUGE_ONCE_EXPANDED = {
    # The document of issue 11 (788 bytes), and the same family far further.
    "doubling, 19 levels": _doubling(19),
    # As far as the token limit (300) lets the family go.
    "doubling, 28 levels": _doubling(28),
    "one wide fragment spread many times": _wide_fragment_spread(times=40, width=100),
    "many operations sharing a fragment": _many_operations(count=12),
}


async def test_documents_huge_once_expanded_are_refused_while_the_server_keeps_answering(
    as_user: Callable[[str], Caller], server: httpx.AsyncClient
) -> None:
    alice = as_user("alice")

    async def hostile() -> list[dict[str, Any]]:
        # Several operations in one document need an operation name to be run at all.
        sent = (
            alice(document, operation_name="O0" if "O0" in document else None)
            for document in HUGE_ONCE_EXPANDED.values()
        )
        return list(await asyncio.gather(*sent))

    async def health() -> list[httpx.Response]:
        return [await server.get("/healthz") for _ in range(20)]

    refusals, checks = await asyncio.gather(hostile(), health())

    for case, refused in zip(HUGE_ONCE_EXPANDED, refusals, strict=True):
        messages = _refused(refused)
        assert "selections found once fragments are expanded. Allowed: 1000" in messages, case
    for check in checks:
        assert check.status_code == 200
        assert check.json() == {"status": "ok"}
    # And the server still does its work.
    assert (await alice("{ library { totalCount } }")) == {"data": {"library": {"totalCount": 0}}}


async def test_a_document_under_the_selection_budget_answers_however_it_is_split_into_fragments(
    as_user: Callable[[str], Caller],
) -> None:
    alice = as_user("alice")

    # 7 levels: 3 * 2**7 - 1 = 383 selections, within the budget of 1000 (and the 128
    # `__typename` merge into one); 9 levels: 1535, past it.
    small = await alice(_doubling(7))
    large = await alice(_doubling(9))

    assert small == {"data": {"__typename": "Query"}}
    _refused(large, "selections found once fragments are expanded")


async def test_a_field_repeated_past_the_merge_budget_is_refused_while_real_conflicts_are_named(
    as_user: Callable[[str], Caller],
) -> None:
    alice = as_user("alice")
    field = "library { totalCount pageInfo { hasNextPage } }"

    # Every pair of the 30 is compared (graphql-core's OverlappingFieldsCanBeMergedRule), past
    # the budget; a few repeats are an ordinary, if odd, query.
    many = await alice("{ " + " ".join([field] * 30) + " }")
    few = await alice("{ " + " ".join([field] * 5) + " }")
    conflicting = await alice(
        "{ library(first: 1) { totalCount } library(first: 2) { totalCount } }"
    )

    assert _refused(many) == (
        "Fields sharing a response name take more than 1000 units of work to compare."
        " Validation aborted."
    )
    assert few == {"data": {"library": {"totalCount": 0, "pageInfo": {"hasNextPage": False}}}}
    assert _refused(conflicting).startswith(
        "Fields 'library' conflict because they have differing arguments."
    )


async def test_fragments_no_operation_uses_are_refused_in_graphql_cores_words(
    as_user: Callable[[str], Caller],
) -> None:
    alice = as_user("alice")
    # As many definitions as fit the token limit, none spread: all refused before any rule
    # walks them; one spread through another counts as used.
    unused = " ".join(f"fragment U{n} on Query {{ __typename }}" for n in range(38))
    used = "fragment A on Query { ...B } fragment B on Query { __typename }"

    result = await alice(f"{{ ...A }} {used} {unused}")

    assert result.get("data") is None
    # The first 20 named, as graphql-core names them, then its own words for stopping there.
    assert _messages(result) == [f"Fragment 'U{n}' is never used." for n in range(20)] + [
        "Too many validation errors, error limit reached. Validation aborted."
    ]


async def test_a_cycle_of_fragments_is_refused_with_its_path(
    as_user: Callable[[str], Caller],
) -> None:
    alice = as_user("alice")

    itself = await alice("{ ...A } fragment A on Query { __typename ...A }")
    through_others = await alice(
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...C }"
        " fragment C on Query { __typename ...A }"
    )

    assert _refused(itself) == "Cannot spread fragment 'A' within itself."
    assert _refused(through_others) == "Cannot spread fragment 'A' within itself via 'B', 'C'."


async def test_aliases_hidden_in_fragments_count_once_per_spread(
    as_user: Callable[[str], Caller],
) -> None:
    alice = as_user("alice")
    aliases = " ".join(f"a{n}: library {{ totalCount }}" for n in range(8))
    fragment = f"fragment Al on Query {{ {aliases} }}"

    # 8 aliases spread 3 times (24) are allowed and answered; 4 times (32) are past 30.
    allowed = await alice(f"{{ ...Al ... on Query {{ ...Al }} ...Al }} {fragment}")
    refused = await alice(f"{{ ...Al ... on Query {{ ...Al ...Al }} ...Al }} {fragment}")

    assert allowed["data"] == {f"a{n}": {"totalCount": 0} for n in range(8)}
    assert _refused(refused) == "32 aliases found. Allowed: 30"


@pytest.mark.parametrize("settings_overrides", [{"graphql_max_depth": 2}], indirect=True)
async def test_depth_hidden_in_fragments_counts_where_the_fragment_is_spread(
    as_user: Callable[[str], Caller],
) -> None:
    alice = as_user("alice")
    # library (0) edges (1) node (2) id (3): the fields past level 2 are all in fragments.
    deep = await alice(
        "query Deep { library { ...Edges } } fragment Edges on LibraryConnection"
        " { edges { ...Node } } fragment Node on LibraryItemEdge { node { id } }"
    )
    shallow = await alice(
        "query Shallow { library { ...Edges } } fragment Edges on LibraryConnection"
        " { edges { cursor } }"
    )

    assert _refused(deep) == "'Deep' exceeds maximum operation depth of 2"
    assert shallow == {"data": {"library": {"edges": []}}}


async def test_renaming_the_operation_changes_nothing_in_what_is_refused_or_answered(
    as_user: Callable[[str], Caller],
) -> None:
    alice = as_user("alice")

    for name in ("P", "Renamed", "AnotherName", "P2"):
        _refused(await alice(_doubling(28, name)), "selections found")
        renamed_ordinary = f"query {name} {{ library {{ totalCount }} }}"
        assert await alice(renamed_ordinary, operation_name=name) == {
            "data": {"library": {"totalCount": 0}}
        }


async def test_an_unknown_fragment_is_named_as_graphql_names_it(
    as_user: Callable[[str], Caller],
) -> None:
    alice = as_user("alice")

    at_the_top = await alice("{ ...Nope }")
    nested = await alice("{ library { ...Nope totalCount } }")

    assert _refused(at_the_top) == "Unknown fragment 'Nope'."
    assert _refused(nested) == "Unknown fragment 'Nope'."


# ---------------------------------------------------------------------------------------------
# Forged cursors


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


ITEM = "0b4c7e1e-8f7a-4a55-9d7e-0c1f4c4b9a11"
FORGED_CURSORS = {
    # The cursor of issue 11: year 1 at +01:00 is year 0 in UTC, which reached PostgreSQL.
    "a time before year 1 in UTC": _cursor(f"li1:0001-01-01T00:00:00+01:00|{ITEM}"),
    "a time after year 9999 in UTC": _cursor(f"li1:9999-12-31T23:30:00-01:00|{ITEM}"),
    "a time in another zone": _cursor(f"li1:2026-01-01T10:00:00+02:00|{ITEM}"),
    "a time without a zone": _cursor(f"li1:2026-01-01T10:00:00|{ITEM}"),
    "a date alone": _cursor(f"li1:2026-01-01|{ITEM}"),
    "an id that is not a uuid": _cursor("li1:2026-01-01T10:00:00+00:00|' OR 1=1 --"),
    "another version": _cursor(f"li2:2026-01-01T10:00:00+00:00|{ITEM}"),
    "garbage": "garbage",
    "not base64": "%%%%",
    "base64 of bytes that are not UTF-8": base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    "too long": "A" * 4000,
}


async def test_a_forged_cursor_is_bad_user_input_and_logs_no_traceback(
    as_user: Callable[[str], Caller], caplog: pytest.LogCaptureFixture
) -> None:
    alice = as_user("alice")
    caplog.set_level(logging.INFO)

    for case, cursor in FORGED_CURSORS.items():
        result = await alice(LIBRARY, {"after": cursor})

        assert result["data"] is None, case
        codes = [error.get("extensions", {}).get("code") for error in result["errors"]]
        assert codes == ["BAD_USER_INPUT"], (case, result)
        assert result["errors"][0]["message"] == (
            "the pagination cursor is not one this service issued"
        )
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


async def test_a_well_formed_cursor_anywhere_in_time_pages_the_callers_own_items(
    as_user: Callable[[str], Caller],
) -> None:
    alice, bob = as_user("alice"), as_user("bob")
    added = await bob(ADD_ALBUM, {"id": "11"})
    bob_item = added["data"]["addAlbumToLibrary"]["item"]["id"]
    await alice(ADD_ALBUM, {"id": "12"})

    earliest = await alice(LIBRARY, {"after": _cursor(f"li1:0001-01-01T00:00:00+00:00|{ITEM}")})
    # After the latest instant there is: everything of alice's, and a position naming an item
    # of bob's says only where to start.
    latest = await alice(
        LIBRARY, {"after": _cursor(f"li1:9999-12-31T23:59:59.999999+00:00|{bob_item}")}
    )

    assert earliest["data"]["library"]["edges"] == []
    assert earliest["data"]["library"]["totalCount"] == 1
    assert len(latest["data"]["library"]["edges"]) == 1
    assert latest["data"]["library"]["edges"][0]["node"]["catalogId"] == "12"
    assert uuid.UUID(latest["data"]["library"]["edges"][0]["node"]["id"]) != uuid.UUID(bob_item)


# ---------------------------------------------------------------------------------------------
# Suggestions

# Each document, and the name of the schema an error would suggest for it.
SUGGESTING = {
    "a misspelt field": ("{ librar { totalCount } }", {}, "'library'"),
    "a misspelt argument": ("{ library(frist: 1) { totalCount } }", {}, "'first'"),
    "a misspelt enum literal": ("{ library(kind: ALBUMS) { totalCount } }", {}, "'ALBUM'"),
    "a misspelt enum in a variable": (
        "query K($kind: LibraryItemKind) { library(kind: $kind) { totalCount } }",
        {"kind": "ALBUMS"},
        "'ALBUM'",
    ),
}


@pytest.mark.parametrize("settings_overrides", [{"libingest_env": "production"}], indirect=True)
async def test_in_production_no_error_suggests_a_name_of_the_schema(
    as_user: Callable[[str], Caller],
) -> None:
    alice = as_user("alice")

    for case, (query, variables, suggestion) in SUGGESTING.items():
        messages = _refused(await alice(query, variables))

        assert "Did you mean" not in messages, case
        assert suggestion not in messages, case


async def test_in_development_errors_suggest_the_names_meant(
    as_user: Callable[[str], Caller],
) -> None:
    alice = as_user("alice")

    for case, (query, variables, suggestion) in SUGGESTING.items():
        messages = _refused(await alice(query, variables))

        assert "Did you mean" in messages, case
        assert suggestion in messages, case

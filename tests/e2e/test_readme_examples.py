"""The README's walkthrough, as a reader copies it: its GraphQL documents run against the app and
answer what the README shows, and a malformed id answers an error a reader sees, not `{}`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.conftest import GraphQLClient

README = Path(__file__).resolve().parents[2] / "README.md"


def _walkthrough_documents() -> list[str]:
    """The GraphQL documents of the README's curl commands (`-d '{"query": ...}'`), in order."""
    bodies = re.findall(r"-d '(\{\"query\".*?\})'", README.read_text(encoding="utf-8"))
    return [json.loads(body)["query"] for body in bodies]


def _add_document() -> str:
    [add] = [doc for doc in _walkthrough_documents() if "addAlbumToLibrary" in doc]
    return add


async def test_the_readme_add_answers_the_item(as_user: Callable[[str], GraphQLClient]) -> None:
    answer: Any = await as_user("reader")(_add_document())

    added = answer["data"]["addAlbumToLibrary"]
    assert added["alreadyInLibrary"] is False
    assert added["item"]["id"]


async def test_the_readme_add_with_a_malformed_id_answers_its_error_member(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    document = _add_document().replace('"900000100"', '"not-an-album"')

    answer: Any = await as_user("reader")(document)

    refused = answer["data"]["addAlbumToLibrary"]
    assert refused != {}
    assert "not-an-album" in refused["message"]


async def test_the_readme_item_query_answers_the_album_it_added(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    reader = as_user("reader")
    added: Any = await reader(_add_document())
    item_id = added["data"]["addAlbumToLibrary"]["item"]["id"]
    [item_query] = [doc for doc in _walkthrough_documents() if "libraryItem" in doc]

    answer: Any = await reader(item_query.replace("<ITEM>", item_id))

    assert set(answer["data"]["libraryItem"]["ingestion"]) == {
        "state",
        "tracksTotal",
        "tracksIndexed",
    }


def test_the_walkthrough_has_an_add_an_item_query_a_search_and_a_playlist_add() -> None:
    documents = _walkthrough_documents()

    assert len(documents) == 4
    assert "... on UserError" in _add_document()
    assert all("... on UserError" in doc for doc in documents if "mutation" in doc)


async def test_the_readme_playlist_add_answers_the_item_and_a_malformed_id_its_error(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    [document] = [doc for doc in _walkthrough_documents() if "addPlaylistToLibrary" in doc]
    reader = as_user("reader")

    added: Any = await reader(document)
    refused: Any = await reader(document.replace("5a3b1e00-", "not-a-uuid-"))

    assert added["data"]["addPlaylistToLibrary"]["alreadyInLibrary"] is False
    assert added["data"]["addPlaylistToLibrary"]["item"]["id"]
    assert "a UUID such as" in refused["data"]["addPlaylistToLibrary"]["message"]

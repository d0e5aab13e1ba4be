"""What an add answers before the relay has run, from what the catalogue cache already knows:
the item's title and artists, and an album's track counts while it is PENDING."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.conftest import GraphQLClient

# No relay: the item stays PENDING, as it is in the moments after an add.
pytestmark = pytest.mark.parametrize(
    "settings_overrides", [{"relay_enabled": False}], indirect=True
)

ADD = """
mutation ($id: ID!) {
  addAlbumToLibrary(albumId: $id) {
    ... on AddToLibrarySuccess { item { id title artistNames } }
    ... on UserError { message }
  }
}
"""
PROGRESS = """
query ($id: ID!) {
  libraryItem(id: $id) {
    ingestion { state tracksTotal tracksRequested tracksIndexed tracksSkipped tracksFailed }
  }
}
"""


async def _cache_an_album(engine: AsyncEngine, *, complete: bool) -> None:
    """Album 501 of four tracks: two indexed already (another user's add), one requested, one
    without an ISRC."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO catalog_albums"
                " (album_id, title, artist_names, track_ids, complete, fetched_at)"
                " VALUES ('501', 'Cached Album', '{Ann}', '{1,2,3,4}', :complete, now())"
            ),
            {"complete": complete},
        )
        await connection.execute(
            text(
                "INSERT INTO catalog_tracks (track_id, isrc, title, fetched_at) VALUES"
                " ('1', 'XXTST2600001', 'One', now()), ('2', 'XXTST2600002', 'Two', now()),"
                " ('3', 'XXTST2600003', 'Three', now()), ('4', NULL, 'Four', now())"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO isrc_ledger (isrc, state, event_id, track_id, requested_at,"
                " next_attempt_at, updated_at) VALUES"
                " ('XXTST2600001', 'indexed', 'e1', '1', now(), now(), now()),"
                " ('XXTST2600002', 'indexed', 'e2', '2', now(), now(), now()),"
                " ('XXTST2600003', 'dispatched', 'e3', '3', now(), now(), now())"
            )
        )


async def test_an_album_the_cache_knows_answers_its_title_and_counts_while_pending(
    engine: AsyncEngine, as_user: Callable[[str], GraphQLClient]
) -> None:
    await _cache_an_album(engine, complete=True)
    alice = as_user("alice")

    added: Any = await alice(ADD, {"id": "501"})
    item = added["data"]["addAlbumToLibrary"]["item"]
    progress: Any = await alice(PROGRESS, {"id": item["id"]})

    assert (item["title"], item["artistNames"]) == ("Cached Album", ["Ann"])
    assert progress["data"]["libraryItem"]["ingestion"] == {
        "state": "PENDING",
        "tracksTotal": 4,
        "tracksRequested": 1,
        "tracksIndexed": 2,
        "tracksSkipped": 1,
        "tracksFailed": 0,
    }


async def test_an_album_the_cache_holds_only_in_part_shows_no_counts_yet(
    engine: AsyncEngine, as_user: Callable[[str], GraphQLClient]
) -> None:
    await _cache_an_album(engine, complete=False)
    alice = as_user("alice")

    added: Any = await alice(ADD, {"id": "501"})
    item = added["data"]["addAlbumToLibrary"]["item"]
    progress: Any = await alice(PROGRESS, {"id": item["id"]})

    assert progress["data"]["libraryItem"]["ingestion"]["state"] == "PENDING"
    assert progress["data"]["libraryItem"]["ingestion"]["tracksTotal"] == 0


async def test_an_album_the_cache_does_not_know_answers_no_title(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    added: Any = await as_user("alice")(ADD, {"id": "502"})

    assert added["data"]["addAlbumToLibrary"]["item"]["title"] is None

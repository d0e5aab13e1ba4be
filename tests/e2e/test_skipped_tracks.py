"""A PARTIAL item says which tracks were skipped and why (issue 13, ADR 0028), end to end: the
real app over ASGI with its relay, PostgreSQL, a loopback TIDAL and a loopback Inngest."""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e import test_scheduling as scheduling
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_scheduling import add_album, album_of, events_reach, settled
from tests.support.loopback_inngest import LoopbackInngest
from tests.support.loopback_tidal import LoopbackTidal

# The scheduling tests' loopback TIDAL and Inngest, and the settings that point the app at them.
tidal = scheduling.tidal
inngest = scheduling.inngest
settings_overrides = scheduling.settings_overrides

SKIPPED = """
query Item($id: ID!) { libraryItem(id: $id) { ingestion {
  state tracksTotal tracksRequested tracksSkipped skippedTracks { trackId reason } } } }"""


async def _skipped(user: GraphQLClient, item_id: str) -> dict[str, object]:
    await settled(user, item_id)
    answer = await user(SKIPPED, {"id": item_id})
    return dict(answer["data"]["libraryItem"]["ingestion"])


async def test_a_partial_album_names_its_tracks_without_isrc_and_those_not_available(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal, inngest: LoopbackInngest
) -> None:
    album = tidal.add_album(
        album_of("6100000", ["QZSKP2600001", None, "QZSKP2600003", "QZSKP2600004"])
    )
    tidal.switches.unavailable_tracks = {album.items[3].id}
    alice, bob = as_user("alice"), as_user("bob")

    first = await _skipped(alice, await add_album(alice, "6100000"))
    await events_reach(inngest, 2)
    # Bob's add reads the album from the catalogue cache: it says the same.
    second = await _skipped(bob, await add_album(bob, "6100000"))

    expected = {
        "state": "PARTIAL",
        "tracksTotal": 4,
        "tracksRequested": 2,
        "tracksSkipped": 2,
        "skippedTracks": [
            {"trackId": "6100002", "reason": "NO_ISRC"},
            {"trackId": "6100004", "reason": "NOT_AVAILABLE"},
        ],
    }
    assert first == expected
    assert second == expected


async def test_an_album_with_every_track_scheduled_names_no_skipped_track(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal
) -> None:
    tidal.add_album(album_of("6200000", ["QZSKQ2600001"]))
    alice = as_user("alice")

    progress = await _skipped(alice, await add_album(alice, "6200000"))

    assert (progress["state"], progress["skippedTracks"]) == ("SCHEDULED", [])

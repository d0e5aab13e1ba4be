"""Scheduling through the whole service: an album added over GraphQL reaches the loopback Event
API as one event per distinct ISRC."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import GraphQLClient
from tests.support.loopback_inngest import LoopbackInngest
from tests.support.loopback_tidal import LoopbackTidal, generated_album

ADD_ALBUM = """
mutation Add($id: ID!) { addAlbumToLibrary(albumId: $id) {
  ... on AddToLibrarySuccess { item { id } } } }"""
ITEM = """
query Item($id: ID!) { libraryItem(id: $id) { title ingestion {
  state tracksTotal tracksRequested tracksIndexed tracksSkipped tracksFailed lastError } } }"""


@pytest.fixture
def tidal() -> Iterator[LoopbackTidal]:
    with LoopbackTidal() as server:
        server.add_album(generated_album("500000", 120))
        yield server


@pytest.fixture
def inngest() -> Iterator[LoopbackInngest]:
    with LoopbackInngest() as server:
        yield server


@pytest.fixture
def settings_overrides(tidal: LoopbackTidal, inngest: LoopbackInngest) -> dict[str, Any]:
    return {
        "tidal_client_id": tidal.client_id,
        "tidal_client_secret": tidal.client_secret,
        "tidal_api_base_url": tidal.base_url,
        "tidal_auth_url": tidal.auth_url,
        "tidal_requests_per_second": 1000.0,
        "tidal_burst": 100,
        "inngest_dev": "1",
        "inngest_event_api_base_url": inngest.url,
        "relay_sweep_seconds": 0.2,
    }


async def _until(condition: Callable[[], Any], seconds: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_a_120_track_album_sends_one_event_per_isrc(
    as_user: Callable[[str], GraphQLClient], inngest: LoopbackInngest
) -> None:
    alice = as_user("alice")
    added = await alice(ADD_ALBUM, {"id": "500000"})
    item_id = added["data"]["addAlbumToLibrary"]["item"]["id"]

    async def scheduled() -> Any:
        item = (await alice(ITEM, {"id": item_id}))["data"]["libraryItem"]
        return item if item["ingestion"]["state"] != "PENDING" else None

    item = await _until(scheduled)
    assert item["ingestion"]["state"] == "SCHEDULED", item
    assert item["ingestion"]["tracksTotal"] == 120
    assert item["ingestion"]["tracksRequested"] == 120
    assert item["title"] == "Loopback album 500000"

    # SCHEDULED says every track is requested in the ledger; the events leave right after, from
    # the same process, but need not have arrived by the time the state is read.
    async def all_sent() -> bool:
        return len(inngest.events) >= 120

    await _until(all_sent)
    await asyncio.sleep(0.3)  # room for a duplicate to arrive, were one sent
    ids = [event.id for event in inngest.events]
    assert len(ids) == 120 == len(set(ids))
    assert ids[0] == "track-ingestion-requested:QZLBK2600001"

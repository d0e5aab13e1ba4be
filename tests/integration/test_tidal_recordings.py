"""The TIDAL adapter against real TIDAL responses (shared/tidal-recordings, beside the clone).

The recordings are read at test time and never copied into the project. They answer the
adapter's requests through an httpx transport that checks each request is the one the recording
answers: the album with include=items, then each `links.next` with include added back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.tidal.client import TidalCatalog
from adapters.tidal.pace import Unpaced
from adapters.tidal.parsing import (
    embedded_items,
    index_of,
    parse_json_api,
    parse_playlist,
    parse_track,
)
from application.ports.catalog import AlbumPage
from domain.values import CatalogId, Isrc

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "tidal-recordings"
BASE_URL = "https://openapi.tidal.com/v2"

pytestmark = pytest.mark.skipif(
    not RECORDINGS.is_dir(), reason=f"no TIDAL recordings at {RECORDINGS}"
)


def recording(name: str) -> Any:
    return json.loads((RECORDINGS / name).read_text("utf-8"))


def recorded_item_ids(*names: str) -> list[str]:
    """The item ids of the recorded pages, in their order: the truth the stream must match."""
    ids: list[str] = []
    for name in names:
        data = recording(name)["data"]
        if data and data[0]["type"] == "albums":  # the album document: items in its relationship
            data = data[0]["relationships"]["items"]["data"]
        ids.extend(item["id"] for item in data)
    return ids


class RecordedTidal:
    """Answers each known request with its recording; anything else fails the test."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.unexpected: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 14400})
        self.requests.append(request)
        path, params = request.url.path, request.url.params
        includes = {part for value in params.get_list("include") for part in value.split(",")}
        name = None
        if "items" in includes or "items.artists" in includes:
            cursor = params.get("page[cursor]")
            name = {
                ("/v2/albums/396698918", None): "album-396698918-page1.json",
                ("/v2/albums/396698918/relationships/items", "3nI1Esi"): (
                    "album-396698918-page2.json"
                ),
                ("/v2/albums/396698918/relationships/items", "3nI1F0y"): (
                    "album-396698918-page3.json"
                ),
                ("/v2/albums/443692756", None): "album-443692756.json",
                ("/v2/albums/381265361", None): "album-381265361-single.json",
            }.get((path, cursor))
        if name is None:
            self.unexpected.append(str(request.url))
            return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND", "detail": "?"}]})
        return httpx.Response(
            200,
            content=(RECORDINGS / name).read_bytes(),
            headers={"content-type": "application/vnd.api+json"},
        )


async def stream(album_id: str, country: str = "US") -> tuple[list[AlbumPage], RecordedTidal]:
    recorded = RecordedTidal()
    catalog = TidalCatalog(
        client_id="id",
        client_secret="secret",
        base_url=BASE_URL,
        country_code=country,
        transport=httpx.MockTransport(recorded.handle),
        pace=Unpaced(),
    )
    async with catalog:
        pages = [page async for page in catalog.album_pages(CatalogId(album_id))]
    assert recorded.unexpected == []
    return pages, recorded


async def test_album_396698918_gives_46_tracks_in_order_with_isrcs_from_three_documents() -> None:
    pages, recorded = await stream("396698918")

    tracks = [track for page in pages for track in page.tracks]
    assert [len(page.tracks) for page in pages] == [20, 20, 6]
    assert len(recorded.requests) == 3
    assert [track.track_number for track in tracks] == list(range(1, 47))
    assert {track.volume_number for track in tracks} == {1}
    assert [str(track.catalog_id) for track in tracks] == recorded_item_ids(
        "album-396698918-page1.json", "album-396698918-page2.json", "album-396698918-page3.json"
    )
    assert all(track.isrc is not None for track in tracks)
    assert tracks[0].isrc == Isrc("AUNMG2400011")
    assert tracks[20].isrc == Isrc("AUNMG2400031")
    assert tracks[40].isrc == Isrc("AUNMG2400051")
    assert tracks[0].title == "4M" and tracks[20].title == "HUM"
    assert tracks[0].duration_seconds == 180  # "PT3M"
    assert tracks[20].duration_seconds == 159  # "PT2M39S"
    assert tracks[20].artist_names == ("Air Max '97",)
    assert all(track.album_id == CatalogId("396698918") for track in tracks)
    assert pages[0].album.title == "PRODUCTION DOSSIER"
    assert pages[0].album.number_of_items == 46
    assert [page.is_last for page in pages] == [False, False, True]


async def test_every_page_the_adapter_requests_asks_for_the_tracks_in_included() -> None:
    _pages, recorded = await stream("396698918")

    for request in recorded.requests:
        includes = request.url.params["include"].split(",")
        assert "items" in includes
        assert request.url.params["countryCode"] == "US"


async def test_album_443692756_gives_the_8_tracks_that_exist_in_the_country() -> None:
    pages, _recorded = await stream("443692756", country="SE")

    tracks = [track for page in pages for track in page.tracks]
    assert len(tracks) == 8
    assert pages[0].album.number_of_items == 10
    assert tracks[0].isrc == Isrc("SE3X91800101")
    assert tracks[0].title == "Bour Yalla"
    # The track names three artists; the recording includes only two of them, in this order.
    assert tracks[0].artist_names == ("Sousou Cissoko", "Maher Cissoko")
    assert [page.is_last for page in pages] == [True]
    assert [str(t.catalog_id) for t in tracks] == recorded_item_ids("album-443692756.json")


async def test_the_single_381265361_gives_its_one_track_with_a_string_copyright() -> None:
    pages, _recorded = await stream("381265361")

    tracks = [track for page in pages for track in page.tracks]
    assert [(str(t.catalog_id), str(t.isrc)) for t in tracks] == [("381265362", "USUM72409273")]
    assert tracks[0].artist_names and tracks[0].duration_seconds == 252


# -- playlists (ADR 0029) ----------------------------------------------------------------------
# None is recorded yet (docs/reference/tidal-playlists.md §6): a `playlist-*.json` recording of
# `GET /playlists/{id}?include=items...` dropped into the folder is checked here as it comes.

PLAYLIST_RECORDINGS = sorted(RECORDINGS.glob("playlist-*.json")) if RECORDINGS.is_dir() else []


@pytest.mark.skipif(not PLAYLIST_RECORDINGS, reason="no recorded TIDAL playlist responses")
@pytest.mark.parametrize("path", PLAYLIST_RECORDINGS, ids=lambda path: path.name)
def test_a_recorded_playlist_parses_into_its_header_items_and_tracks(path: Path) -> None:
    document = parse_json_api(json.loads(path.read_text("utf-8")))
    data = document["data"]
    resource = data[0] if isinstance(data, list) else data
    index = index_of(document)

    playlist = parse_playlist(resource)
    embedded = embedded_items(resource)

    assert playlist.catalog_id.value == resource["id"].lower()
    assert embedded is not None, "recorded without include=items"
    refs, _ = embedded
    tracks = [ref for ref in refs if ref.is_track]
    for ref in tracks:
        included = index.get("tracks", ref.id)
        if included is not None:
            assert parse_track(included, index).catalog_id.value == ref.id
    assert all(ref.type in {"tracks", "videos"} for ref in refs)

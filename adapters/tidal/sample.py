"""The offline sample catalogue: made-up albums served through the real TIDAL adapter.

Used when no TIDAL credentials are configured, so the app runs on a fresh machine. Nothing here is
TIDAL data: every title says "Sample", the ISRCs use the unassigned country code XX, and the
documents in `sample_catalog/` were written for this project. Each file holds one album as a
JSON:API compound document with all of its items; `SampleTidalTransport` answers the token
endpoint and the API paths the adapter calls from them, 20 items per page with `links.next`,
exactly as TIDAL pages, so the sample run exercises the same parsing and paging code.

Sample albums (catalogue ids):

- `396698918` "Sample Album: 46 Tracks": 46 tracks on one volume (three pages). Its id is the
  one the README walkthrough adds.
- `900000100` "Sample Double Album: 124 Tracks on Two Volumes": 62 tracks per volume (seven
  pages), some with two artists or a version.
- `900000300` "Sample Album With a Repeated ISRC": 11 tracks and one video (item 6, skipped);
  tracks 3 and 12 share ISRC XXSMP2600003.
- `900000400` "Sample Album With Tracks Lacking an ISRC": 10 tracks; 4 and 7 have no ISRC and
  9 has one that is not valid.
- `900000500` "Sample Single": one track.

Sample playlist (a UUID, as TIDAL's playlist ids are), whose items are the sample albums' tracks,
so its file holds the playlist alone:

- `5a3b1e00-0000-4000-8000-000000000001` "Sample Playlist: 42 Tracks, a Video and Repeats": 43
  items on three pages: album `900000300`'s twelve items (its video and its repeated ISRC
  included), album `900000400`'s ten tracks (three without a usable ISRC), the first twenty of
  `396698918`, and `900000301` once more at the end.

Track ids are the album id plus the track's position (1-based).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import httpx

from adapters.tidal.client import TidalCatalog
from adapters.tidal.pace import Unpaced

SAMPLE_BASE_URL = "https://sample-catalogue.invalid/v2"
SAMPLE_AUTH_URL = "https://sample-catalogue.invalid/v1/oauth2/token"
SAMPLE_ALBUM_IDS = ("396698918", "900000100", "900000300", "900000400", "900000500")
SAMPLE_PLAYLIST_IDS = ("5a3b1e00-0000-4000-8000-000000000001",)
_PAGE_SIZE = 20
_JSON_API = "application/vnd.api+json"


def sample_catalog(country_code: str = "US") -> TidalCatalog:
    """A TidalCatalog that answers from the offline sample catalogue, never the network."""
    return TidalCatalog(
        client_id="sample-catalogue",
        client_secret="sample-catalogue",
        base_url=SAMPLE_BASE_URL,
        auth_url=SAMPLE_AUTH_URL,
        country_code=country_code,
        transport=SampleTidalTransport(),
        pace=Unpaced(),
    )


@cache
def _sample_documents() -> Mapping[str, Mapping[str, Any]]:
    folder = resources.files("adapters.tidal") / "sample_catalog"
    documents = {}
    for album_id in SAMPLE_ALBUM_IDS:
        documents[album_id] = json.loads((folder / f"album-{album_id}.json").read_text("utf-8"))
    for playlist_id in SAMPLE_PLAYLIST_IDS:
        documents[playlist_id] = json.loads(
            (folder / f"playlist-{playlist_id}.json").read_text("utf-8")
        )
    return documents


class _SampleData:
    """Albums and playlists, their items, and every included resource, indexed once."""

    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        self.albums: dict[str, Mapping[str, Any]] = {}
        self.playlists: dict[str, Mapping[str, Any]] = {}
        self.items: dict[str, list[Any]] = {}  # by album or playlist id
        self.resources: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.album_of: dict[str, str] = {}
        for resource_id, document in documents.items():
            resource = document["data"]
            self.items[resource_id] = resource["relationships"]["items"]["data"]
            if resource["type"] == "playlists":
                self.playlists[resource_id] = resource
                continue
            self.albums[resource_id] = resource
            for included in document["included"]:
                self.resources[(included["type"], included["id"])] = included
            for item in self.items[resource_id]:
                self.album_of[item["id"]] = resource_id


class SampleTidalTransport(httpx.AsyncBaseTransport):
    """An httpx transport that plays TIDAL's token endpoint and catalogue API from the sample
    documents. Any path it does not know answers 404 like TIDAL."""

    def __init__(self) -> None:
        self._data = _SampleData(_sample_documents())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/oauth2/token"):
            token = {"access_token": "sample", "token_type": "Bearer", "expires_in": 86_400}
            return httpx.Response(200, json=token)
        parts = path.removeprefix("/v2/").split("/")
        params = request.url.params
        country = params.get("countryCode", "US")
        match parts:
            case ["tracks", track_id]:
                return self._track(track_id, country)
            case ["tracks"]:
                ids = [i for value in params.get_list("filter[id]") for i in value.split(",")]
                return self._tracks(ids, country)
            case ["albums", album_id] if album_id in self._data.albums:
                return self._album(album_id, country)
            case ["playlists", playlist_id] if playlist_id in self._data.playlists:
                return self._playlist(playlist_id, country)
            case [("albums" | "playlists") as kind, resource_id, "relationships", "items"] if (
                resource_id in self._data.items
            ):
                offset = params.get("page[cursor]", "0")
                start = int(offset) if offset.isdigit() else 0
                return self._items_page(kind, resource_id, start, country)
        return _document({"errors": [{"code": "NOT_FOUND", "detail": "not in the sample"}]}, 404)

    def _track(self, track_id: str, country: str) -> httpx.Response:
        resource = self._data.resources.get(("tracks", track_id))
        if resource is None:
            return _document(
                {"errors": [{"code": "NOT_FOUND", "detail": "not in the sample"}]}, 404
            )
        return _document(
            {
                "data": self._with_album(resource),
                "included": self._artists_of([resource]),
                "links": {"self": f"/tracks/{track_id}?countryCode={country}"},
            }
        )

    def _tracks(self, track_ids: Sequence[str], country: str) -> httpx.Response:
        found = [
            self._with_album(self._data.resources[("tracks", i)])
            for i in dict.fromkeys(track_ids)
            if ("tracks", i) in self._data.resources
        ]
        return _document(
            {"data": found, "included": self._artists_of(found), "links": {"self": "/tracks"}}
        )

    def _album(self, album_id: str, country: str) -> httpx.Response:
        album = dict(self._data.albums[album_id])
        relationships = dict(album["relationships"])
        first = self._data.items[album_id][:_PAGE_SIZE]
        # TIDAL's embedded next link drops `include`; the sample does too, so the adapter's
        # handling of it runs here as well.
        relationships["items"] = {
            "data": first,
            "links": self._links("albums", album_id, 0, {"countryCode": country}),
        }
        album["relationships"] = relationships
        album_artists = [
            self._data.resources[("artists", ref["id"])] for ref in relationships["artists"]["data"]
        ]
        included = self._included_for(first) + album_artists
        return _document(
            {
                "data": album,
                "included": _unique(included),
                "links": {"self": f"/albums/{album_id}?countryCode={country}"},
            }
        )

    def _playlist(self, playlist_id: str, country: str) -> httpx.Response:
        playlist = dict(self._data.playlists[playlist_id])
        first = self._data.items[playlist_id][:_PAGE_SIZE]
        playlist["relationships"] = {
            "items": {
                "data": first,
                "links": self._links("playlists", playlist_id, 0, {"countryCode": country}),
            }
        }
        return _document(
            {
                "data": playlist,
                "included": self._included_for(first),
                "links": {"self": f"/playlists/{playlist_id}?countryCode={country}"},
            }
        )

    def _items_page(self, kind: str, resource_id: str, start: int, country: str) -> httpx.Response:
        page = self._data.items[resource_id][start : start + _PAGE_SIZE]
        return _document(
            {
                "data": page,
                "included": self._included_for(page),
                "links": self._links(kind, resource_id, start, {"countryCode": country}),
            }
        )

    def _included_for(self, items: Sequence[Mapping[str, Any]]) -> list[Any]:
        resources = [self._data.resources[(item["type"], item["id"])] for item in items]
        return _unique(resources + self._artists_of(resources))

    def _artists_of(self, resources: Sequence[Mapping[str, Any]]) -> list[Any]:
        return _unique(
            self._data.resources[("artists", ref["id"])]
            for resource in resources
            for ref in resource["relationships"]["artists"]["data"]
        )

    def _with_album(self, track: Mapping[str, Any]) -> Mapping[str, Any]:
        album_id = self._data.album_of.get(track["id"])
        if album_id is None:
            return track
        relationships = {
            **track["relationships"],
            "albums": {"data": [{"id": album_id, "type": "albums"}]},
        }
        return {**track, "relationships": relationships}

    def _links(
        self, kind: str, resource_id: str, start: int, params: Mapping[str, str]
    ) -> dict[str, Any]:
        path = f"/{kind}/{resource_id}/relationships/items"
        links: dict[str, Any] = {"self": f"{path}?{urlencode(params)}"}
        following = start + _PAGE_SIZE
        if following < len(self._data.items[resource_id]):
            cursor = str(following)
            links["next"] = f"{path}?{urlencode({**params, 'page[cursor]': cursor})}"
            links["meta"] = {"nextCursor": cursor}
        return links


def _document(body: Mapping[str, Any], status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": _JSON_API}
    )


def _unique(resources: Any) -> list[Any]:
    seen: dict[tuple[str, str], Any] = {}
    for resource in resources:
        seen.setdefault((resource["type"], resource["id"]), resource)
    return list(seen.values())

"""A loopback TIDAL: a real HTTP server on 127.0.0.1 that speaks TIDAL's v2 JSON:API.

It answers what the adapter calls, in the shapes shared/reference/tidal-api.md documents:

- `POST /v1/oauth2/token` (client credentials, form body or HTTP Basic)
- `GET /v2/tracks/{id}`, `GET /v2/tracks?filter[id]=...` (repeated keys or comma-joined; unknown
  ids omitted; answered in reverse order, since TIDAL does not keep the request's order)
- `GET /v2/albums/{id}?include=items` and `GET /v2/albums?filter[id]=...`: the first page of
  items in `relationships.items`, whose `links.next` drops `include` as TIDAL's does
- `GET /v2/albums/{id}/relationships/items?page[cursor]=...`: later pages, `links.next` relative
  to `/v2`, absent on the last page
- `GET /v2/playlists/{id}?include=items` and `GET /v2/playlists/{id}/relationships/items`: the
  same paging for a playlist (docs/reference/tidal-playlists.md): `name` for its title,
  `numberOfItems` and `lastModifiedAt`, items that are tracks or videos with `meta.addedAt` and
  `meta.itemId`, only the relationships asked for, and cursors that keep base64's `=` padding
  (percent-encoded in `links.next`), so a client must follow the link as given

Usage::

    with LoopbackTidal() as tidal:
        tidal.add_album(generated_album("1001", tracks=46))
        tidal.switches.latency = 0.05
        tidal.switches.faults.append(Fault.rate_limited(retry_after="0"))
        ...  # point the adapter at tidal.base_url / tidal.auth_url
        assert tidal.counts.api == 3 and tidal.counts.token == 1

The server machinery (start, stop, latency, faults, the threads) is LoopbackServer's
(tests/support/loopback_server.py), shared with the loopback Inngest and Qdrant.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from tests.support.loopback_server import (
    Fault,
    FaultSwitches,
    LoopbackRequest,
    LoopbackResponse,
    LoopbackServer,
)

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "JSON_API",
    "Fault",
    "LoopbackAlbum",
    "LoopbackArtist",
    "LoopbackPlaylist",
    "LoopbackTidal",
    "LoopbackTrack",
    "RequestCounts",
    "Switches",
    "generated_album",
]

CLIENT_ID = "loopback-client"
CLIENT_SECRET = "loopback-secret"
JSON_API = "application/vnd.api+json"
_DEFAULT_ARTIST = ("9000001", "Loopback Artist")


@dataclass(frozen=True, slots=True)
class LoopbackArtist:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class LoopbackTrack:
    """One item of an album (or a standalone track). `kind` is "tracks" or "videos"."""

    id: str
    title: str
    isrc: str | None
    volume_number: int = 1
    track_number: int = 1
    artists: tuple[LoopbackArtist, ...] = (LoopbackArtist(*_DEFAULT_ARTIST),)
    duration: str = "PT3M"
    version: str | None = None
    kind: str = "tracks"


@dataclass(frozen=True, slots=True)
class LoopbackAlbum:
    id: str
    title: str
    items: tuple[LoopbackTrack, ...]
    artists: tuple[LoopbackArtist, ...] = (LoopbackArtist(*_DEFAULT_ARTIST),)


@dataclass(frozen=True, slots=True)
class LoopbackPlaylist:
    """A playlist: its UUID, its name, and its items in order (a track may repeat; a track it
    lists that no album holds is served with no album)."""

    id: str
    name: str
    items: tuple[LoopbackTrack, ...]
    last_modified_at: str = "2026-01-01T00:00:00Z"


def generated_album(
    album_id: str,
    tracks: int,
    *,
    volumes: int = 1,
    videos_at: Iterable[int] = (),
    isrc_prefix: str = "QZLBK26",
) -> LoopbackAlbum:
    """An album of `tracks` items with ids album_id+1.., ISRCs `<prefix>00001`.., spread evenly
    over `volumes`. Positions (0-based) in `videos_at` are videos instead of tracks."""
    videos = set(videos_at)
    per_volume = max(1, -(-tracks // volumes))
    items = []
    for position in range(tracks):
        number = position + 1
        items.append(
            LoopbackTrack(
                id=str(int(album_id) + number),
                title=f"Loopback track {number}",
                isrc=f"{isrc_prefix}{number:05d}",
                volume_number=position // per_volume + 1,
                track_number=position % per_volume + 1,
                kind="videos" if position in videos else "tracks",
            )
        )
    return LoopbackAlbum(id=album_id, title=f"Loopback album {album_id}", items=tuple(items))


@dataclass
class Switches(FaultSwitches):
    """Behaviour of the server, changeable while it runs (from any thread). The latency applies
    to every response, token endpoint included; the faults to API requests only."""

    page_size: int = 20
    batch_limit: int = 20  # /tracks?filter[id] with more ids than this answers 400
    omit_from_included: set[str] = field(default_factory=set)  # track ids left out of album pages
    # Track ids an album lists that TIDAL gives no resource for, in its pages or by id.
    unavailable_tracks: set[str] = field(default_factory=set)
    token_expires_in: int = 14_400
    ratelimit_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RequestCounts:
    """Requests received, by endpoint: "token", "track", "tracks", "album", "albums",
    "album_items", "playlist", "playlist_items". `api` is every call but the token's."""

    by_endpoint: Counter[str] = field(default_factory=Counter)

    @property
    def token(self) -> int:
        return self.by_endpoint["token"]

    @property
    def api(self) -> int:
        return sum(n for endpoint, n in self.by_endpoint.items() if endpoint != "token")


Handler = Callable[[LoopbackRequest, str], LoopbackResponse]


class LoopbackTidal(LoopbackServer):
    """TIDAL's catalogue API on 127.0.0.1 at an ephemeral port, served from albums and tracks
    the test adds. Start it with `with` (or `start()`/`stop()`)."""

    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET
    content_type = JSON_API
    switches: Switches

    def __init__(self, switches: Switches | None = None) -> None:
        super().__init__(switches if switches is not None else Switches())
        self._albums: dict[str, LoopbackAlbum] = {}
        self._playlists: dict[str, LoopbackPlaylist] = {}
        self._tracks: dict[str, tuple[LoopbackTrack, str | None]] = {}  # id -> (track, album id)
        self._counts = RequestCounts()
        self._valid_tokens: set[str] = set()
        self._issued = 0
        self._lock = threading.Lock()
        # (method, route pattern, endpoint name, handler); the name is what `counts` counts.
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = [
            ("POST", re.compile(r"/v1/oauth2/token"), "token", self._token),
            ("GET", re.compile(r"/v2/tracks"), "tracks", self._tracks_batch),
            ("GET", re.compile(r"/v2/tracks/([^/]+)"), "track", self._track),
            ("GET", re.compile(r"/v2/albums"), "albums", self._albums_batch),
            ("GET", re.compile(r"/v2/albums/([^/]+)"), "album", self._album),
            (
                "GET",
                re.compile(r"/v2/albums/([^/]+)/relationships/items"),
                "album_items",
                self._album_items,
            ),
            ("GET", re.compile(r"/v2/playlists/([^/]+)"), "playlist", self._playlist),
            (
                "GET",
                re.compile(r"/v2/playlists/([^/]+)/relationships/items"),
                "playlist_items",
                self._playlist_items,
            ),
        ]

    # -- catalogue and observation ------------------------------------------------------------

    def add_album(self, album: LoopbackAlbum) -> LoopbackAlbum:
        with self._lock:
            self._albums[album.id] = album
            for item in album.items:
                self._tracks[item.id] = (item, album.id)
        return album

    def add_playlist(self, playlist: LoopbackPlaylist) -> LoopbackPlaylist:
        """Serve `playlist`, in place of any playlist of the same id: a playlist changes."""
        with self._lock:
            self._playlists[playlist.id] = playlist
            for item in playlist.items:
                self._tracks.setdefault(item.id, (item, None))
        return playlist

    def add_track(self, track: LoopbackTrack) -> LoopbackTrack:
        with self._lock:
            self._tracks[track.id] = (track, None)
        return track

    @property
    def counts(self) -> RequestCounts:
        """A snapshot of the requests received so far."""
        with self._lock:
            return RequestCounts(Counter(self._counts.by_endpoint))

    def reset_counts(self) -> None:
        with self._lock:
            self._counts = RequestCounts()

    def revoke_tokens(self) -> None:
        """Every token issued so far now answers 401, as an expired one would."""
        with self._lock:
            self._valid_tokens.clear()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v2"

    @property
    def auth_url(self) -> str:
        return f"{self.origin}/v1/oauth2/token"

    # -- serving ------------------------------------------------------------------------------

    def admit(self, request: LoopbackRequest) -> LoopbackResponse | None:
        """Every request to an endpoint is counted, before any latency or fault."""
        if (endpoint := self.endpoint(request)) != "unknown":
            self._count(endpoint)
        return None

    def faults_apply_to(self, request: LoopbackRequest) -> bool:
        return self.endpoint(request) not in ("token", "unknown")

    def endpoint(self, request: LoopbackRequest) -> str:
        """The name `counts` uses for the request's endpoint ("unknown" when none matches)."""
        return next(
            (name for _, route, name, _ in self._routes if route.fullmatch(request.route)),
            "unknown",
        )

    def error(self, status: int, fault: Fault) -> LoopbackResponse:
        if status == 504:
            return _json({"errors": [{"code": "GATEWAY_TIMEOUT", "detail": "hung"}]}, 504)
        headers = {"retry-after": fault.retry_after} if fault.retry_after else {}
        headers.update(self.switches.ratelimit_headers)
        detail = "Rate limit exceeded" if status == 429 else "Service unavailable"
        return _json({"errors": [{"detail": detail}]}, status, headers=headers)

    def answer(self, request: LoopbackRequest) -> LoopbackResponse:
        for method, route, name, handle in self._routes:
            if (match := route.fullmatch(request.route)) is None:
                continue
            if request.method != method:
                return _json({"errors": [{"detail": "Method Not Allowed"}]}, 405)
            if name != "token" and (refused := self._unauthorized(request)) is not None:
                return refused
            return handle(request, match.group(1) if route.groups else "")
        return _json({"errors": [{"code": "NOT_FOUND", "detail": "Not Found"}]}, 404)

    # -- endpoints ----------------------------------------------------------------------------

    def _token(self, request: LoopbackRequest, _: str) -> LoopbackResponse:
        form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = client_secret = None
        if form.get("grant_type") != "client_credentials":
            return _json(
                {"status": 400, "error": "unsupported_grant_type"}, 400, "application/json"
            )
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            body = {"status": 401, "error": "invalid_client", "sub_status": 1002}
            return _json(body, 401, "application/json")
        with self._lock:
            self._issued += 1
            token = f"loopback-token-{self._issued}"
            self._valid_tokens.add(token)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.switches.token_expires_in,
            "scope": "",
        }
        return _json(body, 200, "application/json")

    def _track(self, request: LoopbackRequest, track_id: str) -> LoopbackResponse:
        entry = self._tracks.get(track_id)
        if (
            entry is None
            or entry[0].kind != "tracks"
            or track_id in self.switches.unavailable_tracks
        ):
            return _not_found("Track", track_id)
        track, album_id = entry
        includes = _includes(request)
        included = _artist_resources([track]) if "artists" in includes else []
        if "albums" in includes and album_id is not None:
            included.append(self._album_resource(self._albums[album_id], set(), _country(request)))
        document: dict[str, Any] = {
            "data": _track_resource(track, album_id, _country(request)),
            "links": {"self": _self_link(request)},
        }
        if included:
            document["included"] = included
        return _json(document)

    def _tracks_batch(self, request: LoopbackRequest, _: str) -> LoopbackResponse:
        ids = _filter_ids(request)
        if not ids:
            return _bad_request("filter[id] is required here")
        if len(ids) > self.switches.batch_limit:
            return _bad_request(f"at most {self.switches.batch_limit} ids per request")
        found = [
            self._tracks[track_id]
            for track_id in dict.fromkeys(ids)
            if track_id in self._tracks
            and self._tracks[track_id][0].kind == "tracks"
            and track_id not in self.switches.unavailable_tracks
        ]
        found.reverse()  # TIDAL sorts by its own key, not by the filter's order
        document: dict[str, Any] = {
            "data": [_track_resource(t, album_id, _country(request)) for t, album_id in found],
            "links": {"self": _self_link(request)},
        }
        if "artists" in _includes(request):
            document["included"] = _artist_resources([t for t, _ in found])
        return _json(document)

    def _album(self, request: LoopbackRequest, album_id: str) -> LoopbackResponse:
        album = self._albums.get(album_id)
        if album is None:
            return _not_found("Album", album_id)
        data, included = self._album_document(album, request)
        return _json({"data": data, "included": included, "links": {"self": _self_link(request)}})

    def _albums_batch(self, request: LoopbackRequest, _: str) -> LoopbackResponse:
        data: list[Any] = []
        included: list[Any] = []
        for album_id in dict.fromkeys(_filter_ids(request)):
            if album_id in self._albums:
                resource, extra = self._album_document(self._albums[album_id], request)
                data.append(resource)
                included.extend(extra)
        return _json({"data": data, "included": included, "links": {"self": _self_link(request)}})

    def _album_items(self, request: LoopbackRequest, album_id: str) -> LoopbackResponse:
        album = self._albums.get(album_id)
        if album is None:
            return _not_found("Album", album_id)
        path = f"/albums/{album.id}/relationships/items"
        return self._items_page(request, album.id, album.items, path, _item_identifier)

    def _items_page(
        self,
        request: LoopbackRequest,
        owner: str,
        items: Sequence[LoopbackTrack],
        path: str,
        identifier: Callable[[LoopbackTrack], dict[str, Any]],
        *,
        padded: bool = False,
    ) -> LoopbackResponse:
        """A page of an album's or a playlist's items relationship, at `page[cursor]`."""
        cursor = request.param("page[cursor]")
        start = _offset(cursor, owner) if cursor else 0
        if start is None:
            return _bad_request("invalid page[cursor]")
        includes = _includes(request)
        page = items[start : start + self.switches.page_size]
        document: dict[str, Any] = {
            "data": [identifier(item) for item in page],
            "links": self._links(path, owner, len(items), start, request, True, padded=padded),
        }
        if _includes_items(includes):
            document["included"] = self._included_items(page, includes, _country(request))
        return _json(document)

    def _playlist(self, request: LoopbackRequest, playlist_id: str) -> LoopbackResponse:
        playlist = self._playlists.get(playlist_id)
        if playlist is None:
            return _not_found("Playlist", playlist_id)
        includes = _includes(request)
        country = _country(request)
        resource: dict[str, Any] = {
            "id": playlist.id,
            "type": "playlists",
            "attributes": {
                "name": playlist.name,
                "description": "A loopback playlist",
                "accessType": "PUBLIC",
                "bounded": True,
                "createdAt": "2026-01-01T00:00:00Z",
                "lastModifiedAt": playlist.last_modified_at,
                "externalLinks": [],
                "numberOfFollowers": 0,
                "numberOfItems": len(playlist.items),
                "playlistType": "USER",
            },
        }
        document: dict[str, Any] = {"data": resource, "links": {"self": _self_link(request)}}
        if _includes_items(includes):
            # Only the relationships asked for are present (the spec's current behaviour).
            first_page = playlist.items[: self.switches.page_size]
            resource["relationships"] = {
                "items": {
                    "data": [_playlist_item_identifier(item) for item in first_page],
                    "links": self._playlist_links(playlist, 0, request, echo_include=False),
                }
            }
            document["included"] = self._included_items(first_page, includes, country)
        return _json(document)

    def _playlist_items(self, request: LoopbackRequest, playlist_id: str) -> LoopbackResponse:
        playlist = self._playlists.get(playlist_id)
        if playlist is None:
            return _not_found("Playlist", playlist_id)
        path = f"/playlists/{playlist.id}/relationships/items"
        return self._items_page(
            request, playlist.id, playlist.items, path, _playlist_item_identifier, padded=True
        )

    def _playlist_links(
        self,
        playlist: LoopbackPlaylist,
        start: int,
        request: LoopbackRequest,
        *,
        echo_include: bool,
    ) -> dict[str, Any]:
        path = f"/playlists/{playlist.id}/relationships/items"
        return self._links(
            path, playlist.id, len(playlist.items), start, request, echo_include, padded=True
        )

    # -- documents ----------------------------------------------------------------------------

    def _album_document(
        self, album: LoopbackAlbum, request: LoopbackRequest
    ) -> tuple[dict[str, Any], list[Any]]:
        includes = _includes(request)
        country = _country(request)
        resource = self._album_resource(album, includes, country)
        included: list[Any] = []
        if _includes_items(includes):
            first_page = album.items[: self.switches.page_size]
            resource["relationships"]["items"] = {
                "data": [_item_identifier(item) for item in first_page],
                # TIDAL's embedded next link carries countryCode and the cursor, not include.
                "links": self._page_links(album, 0, request, echo_include=False),
            }
            included.extend(self._included_items(first_page, includes, country))
        if "artists" in includes:
            included.extend(_artist_resource(artist) for artist in album.artists)
        return resource, _unique(included)

    def _album_resource(
        self, album: LoopbackAlbum, includes: set[str], country: str
    ) -> dict[str, Any]:
        relationships: dict[str, Any] = {
            "items": {
                "links": {"self": f"/albums/{album.id}/relationships/items?countryCode={country}"}
            },
            "artists": {
                "links": {"self": f"/albums/{album.id}/relationships/artists?countryCode={country}"}
            },
        }
        if "artists" in includes:
            relationships["artists"]["data"] = [
                {"id": artist.id, "type": "artists"} for artist in album.artists
            ]
        return {
            "id": album.id,
            "type": "albums",
            "attributes": {
                "title": album.title,
                "barcodeId": "0000000000000",
                "numberOfItems": len(album.items),
                "numberOfVolumes": max((item.volume_number for item in album.items), default=1),
                "duration": "PT1H2M",
                "explicit": False,
                "mediaTags": ["LOSSLESS"],
                "popularity": 0.5,
                "albumType": "ALBUM",
                "type": "ALBUM",
                "copyright": {"text": "Loopback Records"},
                "releaseDate": "2026-01-01",
            },
            "relationships": relationships,
        }

    def _included_items(
        self, page: Sequence[LoopbackTrack], includes: set[str], country: str
    ) -> list[Any]:
        left_out = self.switches.omit_from_included | self.switches.unavailable_tracks
        shown = [item for item in page if item.id not in left_out]
        included: list[Any] = [
            _track_resource(item, self._tracks.get(item.id, (item, None))[1], country)
            for item in shown
        ]
        if "items.artists" in includes:
            included.extend(_artist_resources(shown))
        return _unique(included)

    def _page_links(
        self, album: LoopbackAlbum, start: int, request: LoopbackRequest, *, echo_include: bool
    ) -> dict[str, Any]:
        path = f"/albums/{album.id}/relationships/items"
        return self._links(path, album.id, len(album.items), start, request, echo_include)

    def _links(
        self,
        path: str,
        owner: str,
        size: int,
        start: int,
        request: LoopbackRequest,
        echo_include: bool,
        *,
        padded: bool = False,
    ) -> dict[str, Any]:
        params: dict[str, str] = {"countryCode": _country(request)}
        include = request.param("include")
        if echo_include and include:
            params["include"] = include
        self_params = dict(params)
        if start:
            self_params["page[cursor]"] = _cursor(owner, start, padded=padded)
        links: dict[str, Any] = {"self": f"{path}?{urlencode(self_params, quote_via=quote)}"}
        following = start + self.switches.page_size
        if following < size:
            cursor = _cursor(owner, following, padded=padded)
            next_params = {**params, "page[cursor]": cursor}
            links["next"] = f"{path}?{urlencode(next_params, quote_via=quote)}"
            links["meta"] = {"nextCursor": cursor}
        return links

    # -- plumbing -----------------------------------------------------------------------------

    def _count(self, endpoint: str) -> None:
        with self._lock:
            self._counts.by_endpoint[endpoint] += 1

    def _unauthorized(self, request: LoopbackRequest) -> LoopbackResponse | None:
        authorization = request.headers.get("authorization", "")
        with self._lock:
            authorized = authorization.startswith("Bearer ") and (
                authorization[7:] in self._valid_tokens
            )
        if authorized:
            return None
        body = {
            "errors": [
                {
                    "code": "UNAUTHORIZED",
                    "detail": "Invalid or missing Authorization Header",
                    "meta": {"category": "AUTHENTICATION_ERROR"},
                }
            ]
        }
        return _json(body, 401)


def _json(
    body: Any,
    status: int = 200,
    media_type: str = JSON_API,
    headers: dict[str, str] | None = None,
) -> LoopbackResponse:
    return LoopbackResponse(
        status, json.dumps(body).encode(), content_type=media_type, headers=headers or {}
    )


def _not_found(kind: str, resource_id: str) -> LoopbackResponse:
    # Real 404 bodies carry code/detail/meta and no status.
    error = {
        "code": "NOT_FOUND",
        "detail": f"{kind} of a given 'id' {resource_id} not found",
        "meta": {"category": "INVALID_REQUEST_ERROR"},
    }
    return _json({"errors": [error]}, 404)


def _bad_request(detail: str) -> LoopbackResponse:
    return _json({"errors": [{"code": "GENERIC_REQUEST_ERROR", "detail": detail}]}, 400)


def _includes(request: LoopbackRequest) -> set[str]:
    values = request.query.get("include", [])
    return {part.strip() for value in values for part in value.split(",") if part.strip()}


def _includes_items(includes: set[str]) -> bool:
    return any(path == "items" or path.startswith("items.") for path in includes)


def _filter_ids(request: LoopbackRequest) -> list[str]:
    values = request.query.get("filter[id]", [])
    return [part for value in values for part in value.split(",") if part]


def _country(request: LoopbackRequest) -> str:
    return request.param("countryCode") or "US"


def _self_link(request: LoopbackRequest) -> str:
    path = request.route.removeprefix("/v2")
    return f"{path}?{request.query_string}" if request.query_string else path


def _cursor(owner: str, offset: int, *, padded: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(f"{owner}:{offset}".encode()).decode()
    return encoded if padded else encoded.rstrip("=")


def _offset(cursor: str, album_id: str) -> int | None:
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    owner, _, offset = decoded.partition(":")
    return int(offset) if owner == album_id and offset.isdigit() else None


def _item_identifier(item: LoopbackTrack) -> dict[str, Any]:
    return {
        "id": item.id,
        "type": item.kind,
        "meta": {"trackNumber": item.track_number, "volumeNumber": item.volume_number},
    }


def _playlist_item_identifier(item: LoopbackTrack) -> dict[str, Any]:
    # A playlist's items carry when they were added and an id of the entry, not album places.
    return {
        "id": item.id,
        "type": item.kind,
        "meta": {"addedAt": "2026-01-01T00:00:00Z", "itemId": f"entry-{item.id}"},
    }


def _track_resource(track: LoopbackTrack, album_id: str | None, country: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "title": track.title,
        "version": track.version,
        "duration": track.duration,
        "explicit": False,
        "popularity": 0.1,
        "mediaTags": ["LOSSLESS"],
        "copyright": {"text": "Loopback Records"},
        "accessType": "PUBLIC",
        "availability": ["STREAM", "DJ"],
    }
    if track.isrc is not None:
        attributes["isrc"] = track.isrc
    albums: dict[str, Any] = {"links": {"self": f"/{track.kind}/{track.id}/relationships/albums"}}
    if album_id is not None:
        albums["data"] = [{"id": album_id, "type": "albums"}]
    return {
        "id": track.id,
        "type": track.kind,
        "attributes": attributes,
        "relationships": {
            "artists": {
                "data": [{"id": artist.id, "type": "artists"} for artist in track.artists],
                "links": {
                    "self": f"/{track.kind}/{track.id}/relationships/artists?countryCode={country}"
                },
            },
            "albums": albums,
        },
    }


def _artist_resource(artist: LoopbackArtist) -> dict[str, Any]:
    return {"id": artist.id, "type": "artists", "attributes": {"name": artist.name}}


def _artist_resources(tracks: Iterable[LoopbackTrack]) -> list[Any]:
    return _unique(_artist_resource(artist) for track in tracks for artist in track.artists)


def _unique(resources: Iterable[dict[str, Any]]) -> list[Any]:
    """JSON:API forbids a resource twice in `included`."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in resources:
        seen.setdefault((resource["type"], resource["id"]), resource)
    return list(seen.values())

"""TIDAL's JSON:API documents -> the catalogue port's CatalogTrack and CatalogAlbum.

Written to survive real data (shared/reference/tidal-api.md §3): every attribute but `title` is
optional, `version` may be null, `copyright` is a string or an object, durations are ISO 8601 with
missing parts (`PT3M`, `PT2H16S`), enum values may grow, and `included` is heterogeneous and in no
particular order, so it is always indexed by (type, id). Anything that breaks the JSON:API shape
itself raises MalformedDocument, which the client turns into CatalogUnavailable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from application.ports.catalog import CatalogAlbum, CatalogPlaylist, CatalogTrack
from domain.errors import InvalidCatalogId, InvalidIsrc
from domain.values import CatalogId, CatalogIdForm, Isrc

JsonObject = dict[str, Any]

TRACK_TYPE = "tracks"
ARTIST_TYPE = "artists"
ALBUM_TYPE = "albums"
PLAYLIST_TYPE = "playlists"

_DURATION = re.compile(
    r"P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


class MalformedDocument(Exception):
    """The body is not the JSON:API document the endpoint promises."""


@dataclass(frozen=True, slots=True)
class ItemRef:
    """One entry of an album's items relationship: which resource, and where it sits."""

    id: str
    type: str
    volume_number: int | None
    track_number: int | None

    @property
    def is_track(self) -> bool:
        return self.type == TRACK_TYPE


class ResourceIndex:
    """The `included` array (and any primary data) indexed by (type, id)."""

    def __init__(self, resources: Iterable[Any] = ()) -> None:
        self._by_key: dict[tuple[str, str], JsonObject] = {}
        self.add(resources)

    def add(self, resources: Iterable[Any]) -> None:
        for resource in resources:
            if isinstance(resource, dict):
                kind, rid = resource.get("type"), resource.get("id")
                if isinstance(kind, str) and isinstance(rid, str):
                    self._by_key[(kind, rid)] = resource

    def get(self, kind: str, resource_id: str) -> JsonObject | None:
        return self._by_key.get((kind, resource_id))


def parse_duration(raw: object) -> int | None:
    """ISO 8601 duration -> whole seconds; None when absent or unreadable (it is optional)."""
    if not isinstance(raw, str):
        return None
    match = _DURATION.fullmatch(raw.strip())
    if match is None or raw.strip() in ("P", "PT") or raw.strip().endswith("T"):
        return None
    parts = match.groupdict()
    seconds = (
        int(parts["days"] or 0) * 86_400
        + int(parts["hours"] or 0) * 3_600
        + int(parts["minutes"] or 0) * 60
        + float(parts["seconds"] or 0)
    )
    return round(seconds)


def parse_isrc(raw: object) -> Isrc | None:
    """An ISRC the domain accepts, or None: a missing or invalid one counts as "no ISRC"."""
    if not isinstance(raw, str):
        return None
    try:
        return Isrc.parse(raw)
    except InvalidIsrc:
        return None


def parse_json_api(body: object) -> JsonObject:
    """The top level of a JSON:API data document: an object with `data`."""
    if not isinstance(body, dict) or "data" not in body:
        raise MalformedDocument("not a JSON:API data document (no top-level data)")
    included = body.get("included", [])
    if not isinstance(included, list):
        raise MalformedDocument("included is not an array")
    return body


def error_summaries(body: object) -> list[str]:
    """Readable lines from a JSON:API `errors` array, for logs; `status`, `code` and `meta` may
    all be missing (real bodies often lack `status`), so the HTTP status line stays the truth."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    lines = []
    for error in body["errors"]:
        if isinstance(error, dict):
            code = error.get("code") or error.get("status") or "?"
            lines.append(f"{code}: {error.get('detail', '')}"[:200])
    return lines


def index_of(document: JsonObject) -> ResourceIndex:
    return ResourceIndex(document.get("included", []))


def catalog_id(raw: object, what: str, form: CatalogIdForm = CatalogIdForm.DIGITS) -> CatalogId:
    if not isinstance(raw, str):
        raise MalformedDocument(f"{what} has no string id")
    try:
        return CatalogId.parse(raw, form)
    except InvalidCatalogId as error:
        raise MalformedDocument(f"{what} id is not a catalogue id: {raw[:40]!r}") from error


def _attributes(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    attributes = resource.get("attributes")
    if not isinstance(attributes, dict):
        raise MalformedDocument(f"{resource.get('type')} {resource.get('id')} has no attributes")
    return attributes


def _required_title(resource: Mapping[str, Any]) -> str:
    title = _attributes(resource).get("title")
    if not isinstance(title, str):
        raise MalformedDocument(f"{resource.get('type')} {resource.get('id')} has no title")
    return title


def _optional_str(raw: object) -> str | None:
    return raw if isinstance(raw, str) and raw else None


def _optional_int(raw: object) -> int | None:
    # bool is an int in Python; a boolean track number is nonsense, not 0/1.
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def _related_ids(resource: Mapping[str, Any], relationship: str) -> list[tuple[str, str]]:
    """(type, id) of a to-many or to-one relationship's data; empty when it only has links,
    which older and current responses alike may do for relationships that were not included."""
    relationships = resource.get("relationships")
    if not isinstance(relationships, dict):
        return []
    related = relationships.get(relationship)
    data = related.get("data") if isinstance(related, dict) else None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return []
    return [
        (entry["type"], entry["id"])
        for entry in data
        if isinstance(entry, dict)
        and isinstance(entry.get("type"), str)
        and isinstance(entry.get("id"), str)
    ]


def artist_names(resource: Mapping[str, Any], index: ResourceIndex) -> tuple[str, ...]:
    """Names of the resource's artists that are in `included`, in relationship order."""
    names = []
    for kind, artist_id in _related_ids(resource, "artists"):
        artist = index.get(kind, artist_id)
        attributes = artist.get("attributes") if artist else None
        name = attributes.get("name") if isinstance(attributes, dict) else None
        if isinstance(name, str) and name:
            names.append(name)
    return tuple(names)


def parse_track(
    resource: Mapping[str, Any],
    index: ResourceIndex,
    *,
    album_id: CatalogId | None = None,
    position: ItemRef | None = None,
) -> CatalogTrack:
    """A `tracks` resource -> CatalogTrack. The album and the position come from the album's
    items relationship when known; otherwise from the track's own `albums` relationship."""
    if resource.get("type") != TRACK_TYPE:
        raise MalformedDocument(f"expected a track, got {str(resource.get('type'))[:40]!r}")
    attributes = _attributes(resource)
    if album_id is None:
        albums = [rid for kind, rid in _related_ids(resource, "albums") if kind == ALBUM_TYPE]
        album_id = catalog_id(albums[0], "album") if albums else None
    return CatalogTrack(
        catalog_id=catalog_id(resource.get("id"), "track"),
        isrc=parse_isrc(attributes.get("isrc")),
        title=_required_title(resource),
        version=_optional_str(attributes.get("version")),
        artist_names=artist_names(resource, index),
        album_id=album_id,
        volume_number=position.volume_number if position else None,
        track_number=position.track_number if position else None,
        duration_seconds=parse_duration(attributes.get("duration")),
    )


def parse_album(resource: Mapping[str, Any], index: ResourceIndex) -> CatalogAlbum:
    if resource.get("type") != ALBUM_TYPE:
        raise MalformedDocument(f"expected an album, got {str(resource.get('type'))[:40]!r}")
    attributes = _attributes(resource)
    return CatalogAlbum(
        catalog_id=catalog_id(resource.get("id"), "album"),
        title=_required_title(resource),
        artist_names=artist_names(resource, index),
        number_of_items=_optional_int(attributes.get("numberOfItems")),
    )


def parse_playlist(resource: Mapping[str, Any]) -> CatalogPlaylist:
    """A `playlists` resource -> CatalogPlaylist. TIDAL names a playlist with `name` (required
    by its schema), where albums and tracks have `title`."""
    if resource.get("type") != PLAYLIST_TYPE:
        raise MalformedDocument(f"expected a playlist, got {str(resource.get('type'))[:40]!r}")
    attributes = _attributes(resource)
    name = attributes.get("name")
    if not isinstance(name, str):
        raise MalformedDocument(f"playlist {resource.get('id')} has no name")
    return CatalogPlaylist(
        catalog_id=catalog_id(resource.get("id"), "playlist", CatalogIdForm.UUID),
        title=name,
        number_of_items=_optional_int(attributes.get("numberOfItems")),
    )


def single_resource(document: JsonObject, kind: str, resource_id: str) -> JsonObject:
    """The primary resource of `GET /{kind}/{id}`. Also accepts the collection form
    `GET /{kind}?filter[id]=` (data is an array), picking the resource by id, not position."""
    data = document.get("data")
    candidates = data if isinstance(data, list) else [data]
    for candidate in candidates:
        if (
            isinstance(candidate, dict)
            and candidate.get("type") == kind
            and candidate.get("id") == resource_id
        ):
            return candidate
    raise MalformedDocument(f"the document holds no {kind} {resource_id}")


def resource_list(document: JsonObject) -> list[JsonObject]:
    """The primary data of a collection document (`GET /tracks?filter[id]=`)."""
    data = document.get("data")
    if not isinstance(data, list):
        raise MalformedDocument("collection data is not an array")
    return [entry for entry in data if isinstance(entry, dict)]


def item_refs(data: object) -> list[ItemRef]:
    """An items relationship's data (album page 1) or an items page's primary data."""
    if not isinstance(data, list):
        raise MalformedDocument("items data is not an array")
    refs = []
    for entry in data:
        if not isinstance(entry, dict):
            raise MalformedDocument("an item identifier is not an object")
        rid, kind = entry.get("id"), entry.get("type")
        if not isinstance(rid, str) or not isinstance(kind, str):
            raise MalformedDocument("an item identifier lacks id or type")
        raw_meta = entry.get("meta")
        meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        refs.append(
            ItemRef(
                id=rid,
                type=kind,
                volume_number=_optional_int(meta.get("volumeNumber")),
                track_number=_optional_int(meta.get("trackNumber")),
            )
        )
    return refs


def next_link(links: object) -> str | None:
    """`links.next`, absent on the last page."""
    if not isinstance(links, dict):
        return None
    link = links.get("next")
    return link if isinstance(link, str) and link else None


def embedded_items(resource: Mapping[str, Any]) -> tuple[list[ItemRef], str | None] | None:
    """The first items page embedded in an album or a playlist fetched with include=items: its
    identifiers and the relationship's own `links.next`. None when the relationship carries no
    data (items not included), so the caller fetches the items endpoint instead."""
    relationships = resource.get("relationships")
    items = relationships.get("items") if isinstance(relationships, dict) else None
    if not isinstance(items, dict) or "data" not in items:
        return None
    return item_refs(items["data"]), next_link(items.get("links"))

"""TIDAL JSON:API parsing, header parsing, and the stream's order under any paging (Hypothesis)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.tidal.client import BATCH_SIZE, TidalCatalog
from adapters.tidal.pace import RateLimitHeaders, Unpaced, retry_after_seconds
from adapters.tidal.parsing import (
    ItemRef,
    MalformedDocument,
    ResourceIndex,
    error_summaries,
    item_refs,
    parse_album,
    parse_duration,
    parse_track,
    single_resource,
)
from domain.values import CatalogId, Isrc


def track_resource(track_id: str, **attributes: Any) -> dict[str, Any]:
    return {"id": track_id, "type": "tracks", "attributes": attributes}


# -- attributes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("PT2M39S", 159),
        ("PT3M", 180),
        ("PT2H16S", 7216),
        ("PT45S", 45),
        ("PT1H", 3600),
        ("PT1.6S", 2),
        ("P1DT1S", 86401),
        ("", None),
        ("P", None),
        ("PT", None),
        ("3:45", None),
        (225, None),
        (None, None),
    ],
)
def test_iso_8601_durations_with_missing_parts_are_read_in_seconds(
    raw: object, seconds: int | None
) -> None:
    assert parse_duration(raw) == seconds


def test_a_track_with_only_a_title_parses_with_everything_else_empty() -> None:
    track = parse_track(track_resource("1", title="Only a title"), ResourceIndex())

    assert track.title == "Only a title"
    assert (track.isrc, track.version, track.duration_seconds, track.album_id) == (
        None,
        None,
        None,
        None,
    )
    assert track.artist_names == ()


@pytest.mark.parametrize("copyright", ["(P) 2024 Label", {"text": "2024 Label"}, None])
def test_a_null_version_any_copyright_shape_and_unknown_enums_are_accepted(
    copyright: object,
) -> None:
    resource = track_resource(
        "2",
        title="T",
        version=None,
        copyright=copyright,
        accessType="SOMETHING_NEW",
        mediaTags=["FUTURE_TAG"],
        key="NOT_A_KEY",
        isrc="AUNMG2400031",
        duration="PT2M39S",
    )

    track = parse_track(resource, ResourceIndex())

    assert (track.version, track.isrc, track.duration_seconds) == (
        None,
        Isrc("AUNMG2400031"),
        159,
    )


@pytest.mark.parametrize(
    ("raw", "isrc"),
    [
        ("us-um7-24-09273", Isrc("USUM72409273")),
        ("NOT-AN-ISRC", None),
        ("", None),
        (12345, None),
        ("AUNMG24000311", None),
    ],
)
def test_isrcs_are_normalised_and_an_invalid_one_counts_as_none(
    raw: object, isrc: Isrc | None
) -> None:
    assert parse_track(track_resource("3", title="T", isrc=raw), ResourceIndex()).isrc == isrc


def test_a_track_without_a_title_is_a_malformed_document() -> None:
    with pytest.raises(MalformedDocument):
        parse_track(track_resource("4", isrc="AUNMG2400031"), ResourceIndex())


def test_artist_names_come_from_included_in_relationship_order_skipping_absent_ones() -> None:
    resource = track_resource("5", title="T")
    resource["relationships"] = {
        "artists": {
            "data": [
                {"id": "b", "type": "artists"},
                {"id": "missing", "type": "artists"},
                {"id": "a", "type": "artists"},
            ]
        },
        "albums": {"data": [{"id": "77", "type": "albums"}]},
    }
    index = ResourceIndex(
        [
            {"id": "a", "type": "artists", "attributes": {"name": "Alpha"}},
            {"id": "b", "type": "artists", "attributes": {"name": "Beta"}},
            {"id": "5", "type": "videos", "attributes": {"title": "same id, other type"}},
        ]
    )

    track = parse_track(resource, index)

    assert track.artist_names == ("Beta", "Alpha")
    assert track.album_id == CatalogId("77")


def test_an_album_reads_its_header_whatever_its_type_enum_says() -> None:
    resource = {
        "id": "9",
        "type": "albums",
        "attributes": {"title": "Album", "numberOfItems": 46, "albumType": "MIXTAPE"},
    }

    album = parse_album(resource, ResourceIndex())

    assert (album.catalog_id, album.title, album.number_of_items) == (CatalogId("9"), "Album", 46)


def test_the_collection_form_of_an_album_document_is_matched_by_id_not_position() -> None:
    document = {
        "data": [
            {"id": "1", "type": "albums", "attributes": {"title": "Other"}},
            {"id": "2", "type": "albums", "attributes": {"title": "Wanted"}},
        ]
    }

    assert single_resource(document, "albums", "2")["attributes"]["title"] == "Wanted"
    with pytest.raises(MalformedDocument):
        single_resource(document, "albums", "3")


def test_item_identifiers_keep_their_position_and_type() -> None:
    refs = item_refs(
        [
            {"id": "1", "type": "tracks", "meta": {"trackNumber": 1, "volumeNumber": 2}},
            {"id": "2", "type": "videos", "meta": {"trackNumber": 2, "volumeNumber": 2}},
            {"id": "3", "type": "tracks"},
        ]
    )

    assert refs == [
        ItemRef("1", "tracks", 2, 1),
        ItemRef("2", "videos", 2, 2),
        ItemRef("3", "tracks", None, None),
    ]
    assert [ref.is_track for ref in refs] == [True, False, True]
    with pytest.raises(MalformedDocument):
        item_refs([{"type": "tracks"}])


def test_errors_without_status_are_still_readable() -> None:
    body = {
        "errors": [
            {"code": "NOT_FOUND", "detail": "Album not found", "meta": {"category": "X"}},
            {"detail": "no code either"},
        ]
    }

    assert error_summaries(body) == ["NOT_FOUND: Album not found", "?: no code either"]
    assert error_summaries("<html>") == []


# -- headers ----------------------------------------------------------------------------------

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    raw: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(raw, now=NOW) == seconds


def test_tidals_ratelimit_headers_convert_its_tokens_into_requests() -> None:
    headers = {
        "x-ratelimit-remaining": "5",
        "x-ratelimit-requested-tokens": "5",
        "x-ratelimit-burst-capacity": "10",
        "x-ratelimit-replenish-rate": "1",
    }

    limits = RateLimitHeaders.parse(headers)

    assert limits is not None
    assert (limits.requests_remaining, limits.request_burst, limits.requests_per_second) == (
        1.0,
        2.0,
        0.2,
    )
    assert RateLimitHeaders.parse({"x-ratelimit-remaining": "5"}) is None


# -- the stream under any paging (Hypothesis) -------------------------------------------------


class PagedAlbum:
    """Serves one album's items cut into the given pages, each page's `included` in the given
    order, through an httpx transport; records the filter[id] batches it is asked for."""

    def __init__(self, count: int, cuts: list[int], orders: list[list[int]]) -> None:
        self.ids = [str(1000 + n) for n in range(count)]
        bounds = [0, *sorted(set(cuts)), count]
        self.pages = [self.ids[a:b] for a, b in itertools.pairwise(bounds) if b > a]
        self.orders = orders
        self.batches: list[list[str]] = []

    def track(self, track_id: str) -> dict[str, Any]:
        isrc = f"QZPRP26{int(track_id):05d}"
        return track_resource(track_id, title=f"T{track_id}", isrc=isrc)

    def page_document(self, number: int) -> dict[str, Any]:
        ids = self.pages[number]
        order = self.orders[number % len(self.orders)] if self.orders else []
        shuffled = sorted(ids, key=lambda i: order[ids.index(i) % len(order)] if order else 0)
        links: dict[str, Any] = {"self": "/x"}
        if number + 1 < len(self.pages):
            links["next"] = f"/albums/1/relationships/items?page%5Bcursor%5D=c{number + 1}"
        return {
            "data": [{"id": i, "type": "tracks", "meta": {"trackNumber": 1}} for i in ids],
            "included": [self.track(i) for i in shuffled],
            "links": links,
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, params = request.url.path, request.url.params
        if path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if path == "/v2/albums/1":
            first = self.page_document(0)
            album = {
                "id": "1",
                "type": "albums",
                "attributes": {"title": "A"},
                "relationships": {"items": {"data": first["data"], "links": first["links"]}},
            }
            return httpx.Response(200, json={"data": album, "included": first["included"]})
        if path == "/v2/albums/1/relationships/items":
            return httpx.Response(200, json=self.page_document(int(params["page[cursor]"][1:])))
        if path == "/v2/tracks":
            batch = params.get_list("filter[id]")
            self.batches.append(batch)
            return httpx.Response(200, json={"data": [self.track(i) for i in reversed(batch)]})
        return httpx.Response(404, json={"errors": []})

    def catalog(self) -> TidalCatalog:
        return TidalCatalog(
            client_id="c",
            client_secret="s",
            base_url="https://tidal.test/v2",
            auth_url="https://tidal.test/oauth2/token",
            transport=httpx.MockTransport(self.handle),
            pace=Unpaced(),
        )


async def _stream(album: PagedAlbum) -> list[tuple[str, str]]:
    async with album.catalog() as catalog:
        return [
            (str(track.catalog_id), str(track.isrc))
            async for page in catalog.album_pages(CatalogId("1"))
            for track in page.tracks
        ]


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=70),
    cuts=st.lists(st.integers(min_value=1, max_value=69), max_size=8),
    orders=st.lists(st.permutations(list(range(25))), max_size=3),
)
def test_however_items_are_paged_and_included_is_ordered_the_stream_keeps_album_order(
    count: int, cuts: list[int], orders: list[list[int]]
) -> None:
    album = PagedAlbum(count, [cut for cut in cuts if cut < count], orders)

    streamed = asyncio.run(_stream(album))

    assert streamed == [(i, f"QZPRP26{int(i):05d}") for i in album.ids]


@settings(max_examples=40, deadline=None)
@given(ids=st.lists(st.integers(min_value=1, max_value=10**6).map(str), max_size=90))
def test_batch_lookups_keep_order_and_never_exceed_20_ids(ids: list[str]) -> None:
    album = PagedAlbum(1, [], [])

    async def lookup() -> dict[CatalogId, Any]:
        async with album.catalog() as catalog:
            return await catalog.tracks([CatalogId(i) for i in ids])

    found = asyncio.run(lookup())

    unique = list(dict.fromkeys(ids))
    assert all(0 < len(batch) <= BATCH_SIZE for batch in album.batches)
    assert [i for batch in album.batches for i in batch] == unique
    assert list(found) == [CatalogId(i) for i in unique]

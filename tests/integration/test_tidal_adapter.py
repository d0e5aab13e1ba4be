"""The TIDAL adapter against a loopback TIDAL server over real TCP, and the sample catalogue."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.metrics.prometheus import PrometheusMetrics
from adapters.tidal.client import READ_AHEAD_PAGES, RetryPolicy, TidalCatalog
from adapters.tidal.pace import METER_HEADROOM, TokenBucketPace, Unpaced
from adapters.tidal.sample import SAMPLE_ALBUM_IDS, SAMPLE_PLAYLIST_IDS, sample_catalog
from application.ports.catalog import (
    AlbumPage,
    CatalogItemNotFound,
    CatalogTrack,
    CatalogUnavailable,
    PlaylistPage,
)
from domain.values import CatalogId, Isrc
from tests.contracts import catalog as contract
from tests.contracts.catalog import CatalogContract
from tests.support.loopback_tidal import (
    Fault,
    LoopbackAlbum,
    LoopbackArtist,
    LoopbackPlaylist,
    LoopbackTidal,
    LoopbackTrack,
    generated_album,
)
from tests.unit.fakes import FakeSeconds

FAST_RETRIES = RetryPolicy(
    attempts=3, wait_initial=0.001, wait_max=0.01, wait_jitter=0.0, longest_retry_after=5.0
)


@pytest.fixture
def tidal() -> Iterator[LoopbackTidal]:
    with LoopbackTidal() as server:
        yield server


@pytest.fixture
async def catalog(tidal: LoopbackTidal) -> AsyncIterator[TidalCatalog]:
    async with catalog_for(tidal) as adapter:
        yield adapter


def catalog_for(
    tidal: LoopbackTidal,
    *,
    retry: RetryPolicy = FAST_RETRIES,
    request_timeout: float = 2.0,
    client_secret: str | None = None,
    metrics: PrometheusMetrics | None = None,
) -> TidalCatalog:
    return TidalCatalog(
        client_id=tidal.client_id,
        client_secret=client_secret or tidal.client_secret,
        base_url=tidal.base_url,
        auth_url=tidal.auth_url,
        pace=Unpaced(),
        retry=retry,
        request_timeout=request_timeout,
        metrics=metrics,
    )


async def all_pages(catalog: TidalCatalog, album_id: str) -> list[AlbumPage]:
    return [page async for page in catalog.album_pages(CatalogId(album_id))]


def track_ids(pages: list[AlbumPage]) -> list[str]:
    return [str(track.catalog_id) for page in pages for track in page.tracks]


# -- the port's contract ----------------------------------------------------------------------


def serve_contract_catalogue(tidal: LoopbackTidal) -> None:
    """The contract suite's catalogue, as the loopback TIDAL serves it."""

    def artists(names: tuple[str, ...]) -> tuple[LoopbackArtist, ...]:
        return tuple(LoopbackArtist(str(9000 + n), name) for n, name in enumerate(names))

    def loopback(track: CatalogTrack) -> LoopbackTrack:
        return LoopbackTrack(
            id=track.catalog_id.value,
            title=track.title,
            isrc=track.isrc.value if track.isrc is not None else None,
            volume_number=track.volume_number or 1,
            track_number=track.track_number or 1,
            artists=artists(track.artist_names),
            duration=f"PT{track.duration_seconds}S",
        )

    for header, tracks in contract.ALBUMS:
        tidal.add_album(
            LoopbackAlbum(
                id=header.catalog_id.value,
                title=header.title,
                items=tuple(loopback(track) for track in tracks),
                artists=artists(header.artist_names),
            )
        )
    for track in contract.SINGLE_TRACKS:
        tidal.add_track(loopback(track))
    for playlist, tracks in contract.PLAYLISTS:
        tidal.add_playlist(
            LoopbackPlaylist(
                id=playlist.catalog_id.value,
                name=playlist.title,
                items=tuple(loopback(track) for track in tracks),
            )
        )


class TestTidalCatalogContract(CatalogContract):
    @pytest.fixture
    async def catalog(self, tidal: LoopbackTidal) -> AsyncIterator[TidalCatalog]:
        serve_contract_catalogue(tidal)
        async with catalog_for(tidal) as adapter:
            yield adapter

    @pytest.fixture
    async def unavailable_catalog(self, tidal: LoopbackTidal) -> AsyncIterator[TidalCatalog]:
        serve_contract_catalogue(tidal)
        tidal.switches.every_request = Fault.server_error(503)
        async with catalog_for(tidal) as adapter:
            yield adapter


# -- call counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("tracks", [1, 20, 21, 120, 500])
async def test_an_uncached_album_of_n_tracks_costs_ceil_n_over_20_calls_and_one_token(
    tidal: LoopbackTidal, catalog: TidalCatalog, tracks: int
) -> None:
    album = tidal.add_album(generated_album("7000000", tracks))

    pages = await all_pages(catalog, "7000000")

    assert track_ids(pages) == [item.id for item in album.items]
    assert [str(t.isrc) for p in pages for t in p.tracks] == [i.isrc for i in album.items]
    assert tidal.counts.api == math.ceil(tracks / 20)
    assert tidal.counts.token == 1
    assert [page.is_last for page in pages] == [False] * (len(pages) - 1) + [True]


async def test_an_album_of_46_tracks_streams_in_order_from_three_pages(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    tidal.add_album(generated_album("7100000", 46, volumes=2))

    pages = await all_pages(catalog, "7100000")

    assert [len(page.tracks) for page in pages] == [20, 20, 6]
    positions = [(t.volume_number, t.track_number) for p in pages for t in p.tracks]
    assert positions == [(1, n) for n in range(1, 24)] + [(2, n) for n in range(1, 24)]
    assert all(page.album.title == "Loopback album 7100000" for page in pages)
    assert pages[0].album.number_of_items == 46
    assert pages[0].album.artist_names == ("Loopback Artist",)
    assert pages[-1].tracks[-1].artist_names == ("Loopback Artist",)
    assert tidal.counts.by_endpoint == {"token": 1, "album": 1, "album_items": 2}


async def test_pages_are_read_ahead_of_a_busy_consumer_up_to_a_bound(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    tidal.add_album(generated_album("7200000", 200))  # ten pages
    # The consumer holds the first page; the pages after it are fetched meanwhile: as many as
    # the buffer holds, and one more that waits for room.
    bound = 1 + READ_AHEAD_PAGES + 1
    async with contextlib.aclosing(catalog.album_pages(CatalogId("7200000"))) as pages:
        first = await anext(pages)
        for _ in range(500):
            if tidal.counts.api >= bound:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # time for a request past the bound, if one were made
        assert tidal.counts.api == bound

        rest = [page async for page in pages]

    assert track_ids([first, *rest]) == [str(7_200_000 + n) for n in range(1, 201)]
    assert tidal.counts.api == 10


async def test_ten_concurrent_resolutions_share_one_token_request(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    tidal.switches.latency = 0.02  # keeps the token request in flight while the others ask
    for index in range(10):
        tidal.add_album(generated_album(str(7300000 + index * 1000), 25))

    results = await asyncio.gather(
        *(all_pages(catalog, str(7300000 + index * 1000)) for index in range(10))
    )

    assert [len(track_ids(pages)) for pages in results] == [25] * 10
    assert tidal.counts.token == 1
    assert tidal.counts.api == 20


# -- tokens -----------------------------------------------------------------------------------


async def test_a_401_renews_the_token_once_and_the_request_succeeds(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    tidal.add_album(generated_album("7400000", 3))
    await catalog.track(CatalogId("7400001"))
    tidal.revoke_tokens()

    track = await catalog.track(CatalogId("7400002"))

    assert track.title == "Loopback track 2"
    assert tidal.counts.token == 2
    assert tidal.counts.api == 3  # one before, then the refused one and its repeat


async def test_wrong_client_credentials_read_as_unavailable_after_one_token_request(
    tidal: LoopbackTidal,
) -> None:
    tidal.add_album(generated_album("7500000", 1))
    async with catalog_for(tidal, client_secret="wrong") as catalog:
        with pytest.raises(CatalogUnavailable):
            await catalog.track(CatalogId("7500001"))
    assert tidal.counts.token == 1
    assert tidal.counts.api == 0


async def test_an_expiring_token_is_renewed_before_it_expires(tidal: LoopbackTidal) -> None:
    tidal.add_album(generated_album("7600000", 2))
    tidal.switches.token_expires_in = 0  # renewed at once: at half its life, which is now
    async with catalog_for(tidal) as catalog:
        await catalog.track(CatalogId("7600001"))
        await catalog.track(CatalogId("7600002"))
    assert tidal.counts.token == 2


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "retry_after",
    [None, "0", "Wed, 21 Oct 2015 07:28:00 GMT"],
    ids=["without-retry-after", "retry-after-seconds", "retry-after-http-date"],
)
async def test_a_429_is_waited_out_and_the_request_succeeds(
    tidal: LoopbackTidal, catalog: TidalCatalog, retry_after: str | None
) -> None:
    tidal.add_album(generated_album("7700000", 21))
    tidal.switches.faults.extend([Fault.rate_limited(retry_after), Fault.rate_limited(retry_after)])

    pages = await all_pages(catalog, "7700000")

    assert len(track_ids(pages)) == 21
    assert tidal.counts.api == 4  # two refused, then the album and its second page


async def test_the_pace_metrics_count_every_admitted_request_and_every_429(
    tidal: LoopbackTidal,
) -> None:
    tidal.add_album(generated_album("7710000", 21))
    tidal.switches.faults.extend([Fault.rate_limited("0"), Fault.rate_limited("0")])
    metrics = PrometheusMetrics()

    async with catalog_for(tidal, metrics=metrics) as catalog:
        await all_pages(catalog, "7710000")

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(name)

    assert sample("libingest_tidal_pace_slots_total") == tidal.counts.api == 4
    assert sample("libingest_tidal_rate_limited_total") == 2
    assert sample("libingest_tidal_pace_wait_seconds_count") == 4
    assert sample("libingest_tidal_pace_waits_total") == 0  # Unpaced: no admission waited


async def test_a_retry_after_longer_than_the_longest_wait_gives_up_at_once(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    tidal.add_album(generated_album("7800000", 1))
    tidal.switches.faults.append(Fault.rate_limited("3600"))

    with pytest.raises(CatalogUnavailable):
        await catalog.track(CatalogId("7800001"))
    assert tidal.counts.api == 1


async def test_a_5xx_is_retried_and_the_request_succeeds(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    tidal.add_album(generated_album("7900000", 1))
    tidal.switches.faults.extend([Fault.server_error(500), Fault.server_error(503)])

    track = await catalog.track(CatalogId("7900001"))

    assert str(track.isrc) == "QZLBK2600001"
    assert tidal.counts.api == 3


async def test_a_5xx_forever_reads_as_unavailable_after_the_retry_budget(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    tidal.add_album(generated_album("8000000", 30))
    tidal.switches.every_request = Fault.server_error(502)

    with pytest.raises(CatalogUnavailable):
        await all_pages(catalog, "8000000")
    assert tidal.counts.api == FAST_RETRIES.attempts


async def test_a_hanging_response_times_out_and_reads_as_unavailable(
    tidal: LoopbackTidal,
) -> None:
    tidal.add_album(generated_album("8100000", 1))
    tidal.switches.every_request = Fault.timeout()
    async with catalog_for(tidal, request_timeout=0.2) as catalog:
        with pytest.raises(CatalogUnavailable):
            await catalog.track(CatalogId("8100001"))
    assert tidal.counts.api == FAST_RETRIES.attempts


async def test_one_timeout_is_retried_and_the_request_succeeds(tidal: LoopbackTidal) -> None:
    tidal.add_album(generated_album("8200000", 1))
    tidal.switches.faults.append(Fault.timeout())
    async with catalog_for(tidal, request_timeout=0.2) as catalog:
        track = await catalog.track(CatalogId("8200001"))
    assert track.title == "Loopback track 1"
    assert tidal.counts.api == 2


async def test_a_refused_connection_reads_as_unavailable() -> None:
    with LoopbackTidal() as stopped:
        base_url, auth_url = stopped.base_url, stopped.auth_url
    catalog = TidalCatalog(
        client_id="x",
        client_secret="y",
        base_url=base_url,
        auth_url=auth_url,
        pace=Unpaced(),
        retry=FAST_RETRIES,
    )
    async with catalog:
        with pytest.raises(CatalogUnavailable):
            await catalog.track(CatalogId("1"))


@pytest.mark.parametrize(
    "body",
    ["<html>gateway says hello</html>", '{"unexpected": true}', '{"data": [{"id": 1}]}'],
    ids=["not-json", "no-data", "not-an-album"],
)
async def test_a_malformed_body_reads_as_unavailable(
    tidal: LoopbackTidal, catalog: TidalCatalog, body: str
) -> None:
    tidal.add_album(generated_album("8300000", 5))
    tidal.switches.faults.append(Fault.malformed(body))

    with pytest.raises(CatalogUnavailable):
        await all_pages(catalog, "8300000")


async def test_an_unknown_track_or_album_is_not_found(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    with pytest.raises(CatalogItemNotFound) as track_error:
        await catalog.track(CatalogId("123"))
    with pytest.raises(CatalogItemNotFound) as album_error:
        await all_pages(catalog, "456")

    assert (track_error.value.kind, track_error.value.catalog_id) == ("track", "123")
    assert (album_error.value.kind, album_error.value.catalog_id) == ("album", "456")
    assert tidal.counts.api == 2  # a 404 is permanent: never retried


# -- items, videos, batches -------------------------------------------------------------------


async def test_tracks_tidal_cannot_give_even_by_id_are_named_on_their_page_as_unavailable(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    album = tidal.add_album(generated_album("8300000", 25, videos_at=[1]))
    tidal.switches.unavailable_tracks = {album.items[3].id, album.items[22].id}

    pages = await all_pages(catalog, "8300000")

    assert [[str(t) for t in page.unavailable] for page in pages] == [
        [album.items[3].id],
        [album.items[22].id],
    ]
    assert [page.skipped_items for page in pages] == [2, 1]  # with the video
    assert sum(len(page.tracks) for page in pages) == 22


async def test_tracks_missing_from_included_are_fetched_by_id_and_matched_by_id(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    album = tidal.add_album(generated_album("8400000", 30))
    absent = {item.id for item in album.items[2:9]} | {album.items[25].id}
    tidal.switches.omit_from_included = absent

    pages = await all_pages(catalog, "8400000")

    # The loopback answers filter[id] in reverse order: matching by position would swap them.
    assert [(str(t.catalog_id), str(t.isrc)) for p in pages for t in p.tracks] == [
        (item.id, item.isrc) for item in album.items
    ]
    assert tidal.counts.by_endpoint["tracks"] == 2  # one batch per page that lacked tracks
    assert tidal.counts.api == 4


async def test_more_than_20_missing_tracks_are_fetched_in_batches_of_20(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    tidal.switches.page_size = 45  # a page larger than a batch
    album = tidal.add_album(generated_album("8500000", 45))
    tidal.switches.omit_from_included = {item.id for item in album.items}

    pages = await all_pages(catalog, "8500000")

    assert track_ids(pages) == [item.id for item in album.items]
    assert tidal.counts.by_endpoint["tracks"] == 3


async def test_a_400_on_a_batch_splits_it_in_halves(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    album = tidal.add_album(generated_album("8600000", 20))
    tidal.switches.omit_from_included = {item.id for item in album.items}
    tidal.switches.batch_limit = 5  # 20 -> 400; 10, 10 -> 400; 5, 5, 5, 5 -> answered

    pages = await all_pages(catalog, "8600000")

    assert track_ids(pages) == [item.id for item in album.items]
    assert tidal.counts.by_endpoint["tracks"] == 1 + 2 + 4


async def test_videos_among_the_items_are_skipped_and_counted(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    album = tidal.add_album(generated_album("8700000", 25, videos_at=[0, 7, 22]))

    pages = await all_pages(catalog, "8700000")

    assert track_ids(pages) == [item.id for item in album.items if item.kind == "tracks"]
    assert [page.skipped_items for page in pages] == [2, 1]


async def test_a_batch_lookup_returns_known_tracks_by_id_and_omits_unknown_ones(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    album = tidal.add_album(generated_album("8800000", 45))
    wanted = [CatalogId(item.id) for item in album.items] + [CatalogId("999")]

    found = await catalog.tracks(wanted)

    assert set(found) == {CatalogId(item.id) for item in album.items}
    assert found[CatalogId("8800007")].isrc == Isrc("QZLBK2600007")
    assert found[CatalogId("8800007")].album_id == CatalogId("8800000")
    assert tidal.counts.by_endpoint["tracks"] == 3


async def test_one_track_comes_with_its_artists_album_and_duration(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    duo = (LoopbackArtist("11", "First Artist"), LoopbackArtist("12", "Second Artist"))
    tidal.add_album(
        LoopbackAlbum(
            id="8900000",
            title="Duets",
            items=(
                LoopbackTrack(
                    id="8900001",
                    title="Together",
                    isrc="qz-lbk-26-00099",
                    artists=duo,
                    duration="PT1H2M3S",
                    version="Remastered",
                ),
            ),
        )
    )

    track = await catalog.track(CatalogId("8900001"))

    assert track.artist_names == ("First Artist", "Second Artist")
    assert track.album_id == CatalogId("8900000")
    assert track.isrc == Isrc("QZLBK2600099")
    assert (track.version, track.duration_seconds) == ("Remastered", 3723)
    assert tidal.counts.api == 1


# -- pace -------------------------------------------------------------------------------------


async def test_the_token_bucket_admits_a_burst_then_paces_at_its_base_rate() -> None:
    clock = FakeSeconds()
    pace = TokenBucketPace(requests_per_second=0.5, burst=2, clock=clock, sleep=clock.sleep)

    for _ in range(4):
        await pace.acquire()

    assert clock.now == pytest.approx(4.0)  # two at once, then one every 2 s


async def test_the_token_bucket_follows_tidals_ratelimit_headers_and_retry_after() -> None:
    clock = FakeSeconds()
    pace = TokenBucketPace(requests_per_second=100, burst=10, clock=clock, sleep=clock.sleep)
    await pace.acquire()

    pace.observe(
        {
            "x-ratelimit-remaining": "0",
            "x-ratelimit-requested-tokens": "5",
            "x-ratelimit-burst-capacity": "10",
            "x-ratelimit-replenish-rate": "1",
        }
    )
    await pace.acquire()
    # 5 tokens a request at 1 token/s, used at METER_HEADROOM of that rate (ADR 0028).
    assert clock.now == pytest.approx(5.0 / METER_HEADROOM)

    pace.observe({"retry-after": "30"})
    await pace.acquire()
    assert clock.now == pytest.approx(5.0 / METER_HEADROOM + 30)


async def test_every_request_is_admitted_by_the_pace(tidal: LoopbackTidal) -> None:
    class CountingPace(Unpaced):
        admitted = 0

        async def acquire(self, *, opens_item: bool = True) -> None:
            CountingPace.admitted += 1

    tidal.add_album(generated_album("9000000", 41))
    catalog = TidalCatalog(
        client_id=tidal.client_id,
        client_secret=tidal.client_secret,
        base_url=tidal.base_url,
        auth_url=tidal.auth_url,
        pace=CountingPace(),
        retry=FAST_RETRIES,
    )
    async with catalog:
        await all_pages(catalog, "9000000")
    assert CountingPace.admitted == tidal.counts.api == 3


@pytest.mark.parametrize(("size", "requests"), [(1, 1), (20, 1), (21, 2), (41, 3), (120, 6)])
async def test_a_pages_turn_at_the_pace_is_taken_while_the_page_before_is_in_flight(
    tidal: LoopbackTidal, size: int, requests: int
) -> None:
    answered = 0
    answered_at_each_turn: list[int] = []

    class RecordingPace(Unpaced):
        async def acquire(self, *, opens_item: bool = True) -> None:
            answered_at_each_turn.append(answered)

    async def count(response: httpx.Response) -> None:
        nonlocal answered
        if response.request.url.path.startswith("/v2/"):
            answered += 1

    tidal.switches.latency = 0.05
    tidal.add_album(generated_album("9100000", size))
    async with httpx.AsyncClient(event_hooks={"response": [count]}) as http:
        catalog = TidalCatalog(
            client_id=tidal.client_id,
            client_secret=tidal.client_secret,
            base_url=tidal.base_url,
            auth_url=tidal.auth_url,
            http_client=http,
            pace=RecordingPace(),
            retry=FAST_RETRIES,
        )
        pages = await all_pages(catalog, "9100000")

    assert len(track_ids(pages)) == size
    # One turn per request, none taken for a page that never comes (the album's item count
    # says how many follow) ...
    assert len(answered_at_each_turn) == tidal.counts.api == requests
    # ... the first two after the answers before them, every later one while the page before
    # it is still on its way (one answer fewer than requests made by then).
    assert answered_at_each_turn[:2] == list(range(min(requests, 2)))
    assert answered_at_each_turn[2:] == list(range(1, requests - 1))


async def test_a_stream_closed_early_leaves_no_turn_at_the_pace_being_taken(
    tidal: LoopbackTidal,
) -> None:
    class SlowPace(Unpaced):
        async def acquire(self, *, opens_item: bool = True) -> None:
            await asyncio.sleep(0.05)

    tidal.add_album(generated_album("9200000", 120))
    before = asyncio.all_tasks()
    async with catalog_for(tidal) as catalog:
        catalog._pace = SlowPace()
        pages = catalog.album_pages(CatalogId("9200000"))
        await anext(pages)
        await anext(pages)
        await anext(pages)  # later turns are being taken as the pages are read ahead
        await pages.aclose()

    assert asyncio.all_tasks() - before == set()
    assert 3 <= tidal.counts.api <= 3 + READ_AHEAD_PAGES + 1


# -- the offline sample catalogue -------------------------------------------------------------


async def test_the_sample_catalogue_serves_the_walkthrough_album_through_the_adapter() -> None:
    async with sample_catalog() as catalog:
        pages = await all_pages(catalog, "396698918")

    assert [len(page.tracks) for page in pages] == [20, 20, 6]
    assert "Sample" in pages[0].album.title
    assert all(track.isrc is not None for page in pages for track in page.tracks)


async def test_the_sample_catalogue_has_a_two_volume_album_of_more_than_120_tracks() -> None:
    async with sample_catalog() as catalog:
        pages = await all_pages(catalog, "900000100")

    tracks = [track for page in pages for track in page.tracks]
    assert len(tracks) >= 120
    assert {track.volume_number for track in tracks} == {1, 2}
    assert len({track.isrc for track in tracks}) == len(tracks)


async def test_the_sample_catalogue_has_a_repeated_isrc_tracks_without_one_and_a_single() -> None:
    async with sample_catalog() as catalog:
        repeated = [t for p in await all_pages(catalog, "900000300") for t in p.tracks]
        lacking = [t for p in await all_pages(catalog, "900000400") for t in p.tracks]
        single = [t for p in await all_pages(catalog, "900000500") for t in p.tracks]
        track = await catalog.track(CatalogId("900000409"))
        batch = await catalog.tracks([CatalogId("900000501"), CatalogId("1")])

    assert len(repeated) != len({t.isrc for t in repeated})
    assert [t.track_number for t in lacking if t.isrc is None] == [4, 7, 9]
    assert len(single) == 1
    assert track.isrc is None  # "NOT-AN-ISRC" counts as none
    assert list(batch) == [CatalogId("900000501")]


async def test_every_sample_album_title_says_it_is_a_sample() -> None:
    async with sample_catalog() as catalog:
        for album_id in SAMPLE_ALBUM_IDS:
            pages = await all_pages(catalog, album_id)
            assert all("Sample" in page.album.title for page in pages)


# -- playlists (ADR 0029, docs/reference/tidal-playlists.md) ---------------------------------

PLAYLIST_ID = "5a3b1e00-0000-4000-8000-00000000b001"


async def playlist_pages(
    catalog: TidalCatalog, playlist_id: str = PLAYLIST_ID
) -> list[PlaylistPage]:
    return [page async for page in catalog.playlist_pages(CatalogId(playlist_id))]


def listed(album: LoopbackAlbum, *positions: int) -> tuple[LoopbackTrack, ...]:
    return tuple(album.items[position] for position in positions)


@pytest.mark.parametrize("size", [1, 20, 21, 1_000])
async def test_a_playlist_of_n_items_costs_ceil_n_over_20_calls_following_padded_cursors(
    tidal: LoopbackTidal, catalog: TidalCatalog, size: int
) -> None:
    # The loopback's playlist cursors end in base64 '=' padding, percent-encoded in links.next
    # (a cursor format TIDAL's own example code stumbled on): the link is followed as given.
    album = tidal.add_album(generated_album("7400000", size))
    tidal.add_playlist(LoopbackPlaylist(PLAYLIST_ID, "Loopback playlist", album.items))

    pages = await playlist_pages(catalog)

    assert [t.catalog_id.value for p in pages for t in p.tracks] == [i.id for i in album.items]
    assert tidal.counts.by_endpoint["playlist"] == 1
    assert tidal.counts.api == math.ceil(size / 20)
    assert [page.is_last for page in pages] == [False] * (len(pages) - 1) + [True]
    assert pages[0].playlist.title == "Loopback playlist"
    assert pages[0].playlist.number_of_items == size


async def test_a_playlists_videos_are_skipped_and_counted_and_its_repeats_kept(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    album = tidal.add_album(generated_album("7500000", 30, videos_at=[3, 25]))
    items = listed(album, 0, 3, 1, 25, 0, *range(4, 24))
    tidal.add_playlist(LoopbackPlaylist(PLAYLIST_ID, "With videos", items))

    pages = await playlist_pages(catalog)

    expected = [item.id for item in items if item.kind == "tracks"]
    assert [t.catalog_id.value for p in pages for t in p.tracks] == expected
    assert [page.skipped_items for page in pages] == [2, 0]
    # A playlist's track keeps its own album, and has no place on it.
    first = pages[0].tracks[0]
    assert (first.album_id, first.volume_number, first.track_number) == (
        CatalogId("7500000"),
        None,
        None,
    )


async def test_a_playlists_tracks_left_out_of_included_are_looked_up_by_id(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    album = tidal.add_album(generated_album("7600000", 25))
    tidal.add_playlist(LoopbackPlaylist(PLAYLIST_ID, "Sparse", album.items))
    tidal.switches.omit_from_included = {album.items[2].id, album.items[22].id}

    pages = await playlist_pages(catalog)

    assert [t.catalog_id.value for p in pages for t in p.tracks] == [i.id for i in album.items]
    assert tidal.counts.by_endpoint["tracks"] == 2


async def test_a_changed_playlist_is_read_as_it_is_now(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    album = tidal.add_album(generated_album("7700000", 10))
    tidal.add_playlist(LoopbackPlaylist(PLAYLIST_ID, "Before", listed(album, 0, 1)))
    before = await playlist_pages(catalog)
    tidal.add_playlist(LoopbackPlaylist(PLAYLIST_ID, "After", listed(album, 1, 5, 6)))

    after = await playlist_pages(catalog)

    assert [t.catalog_id.value for t in before[0].tracks] == ["7700001", "7700002"]
    assert [t.catalog_id.value for t in after[0].tracks] == ["7700002", "7700006", "7700007"]
    assert after[0].playlist.title == "After"


async def test_an_unknown_playlist_is_not_found_after_one_call(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    with pytest.raises(CatalogItemNotFound) as raised:
        await playlist_pages(catalog)

    assert str(raised.value) == f"playlist {PLAYLIST_ID} is not in the catalogue"
    assert tidal.counts.api == 1


async def test_a_playlist_whose_id_in_the_document_is_not_a_uuid_reads_as_unavailable(
    tidal: LoopbackTidal, catalog: TidalCatalog
) -> None:
    # Asked for by its UUID, answered with another id: a document that is not what was asked.
    album = tidal.add_album(generated_album("7800000", 2))
    tidal.add_playlist(LoopbackPlaylist("12345", "Digits", album.items))

    with pytest.raises(CatalogUnavailable):
        [page async for page in catalog.playlist_pages(CatalogId("12345"))]


async def test_the_sample_catalogue_serves_its_playlist_with_a_video_and_repeats() -> None:
    async with sample_catalog() as catalog:
        pages = await playlist_pages(catalog, SAMPLE_PLAYLIST_IDS[0])

    tracks = [track for page in pages for track in page.tracks]
    assert len(tracks) == 42
    assert sum(page.skipped_items for page in pages) == 1
    assert tracks[0].catalog_id == tracks[-1].catalog_id == CatalogId("900000301")
    assert len({track.isrc for track in tracks if track.isrc is not None}) == 37

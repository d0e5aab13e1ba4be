"""The PostgreSQL catalogue cache in front of the fake catalogue (which counts its calls), on a
real server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.catalog_cache import CachingCatalog
from application.ports.catalog import (
    AlbumPage,
    CatalogAlbum,
    CatalogItemNotFound,
    CatalogTrack,
    CatalogUnavailable,
)
from domain.values import CatalogId, Isrc
from tests.contracts import catalog as contract
from tests.contracts.catalog import CatalogContract
from tests.unit.fakes import FakeCatalog, FakeClock

ALBUM_ID = CatalogId("900")
MAX_AGE = timedelta(days=7)


def _track(number: int, album_id: CatalogId | None = ALBUM_ID) -> CatalogTrack:
    # Every third track lacks an ISRC and a version, so that NULLs round-trip too.
    plain = number % 3 == 0
    return CatalogTrack(
        catalog_id=CatalogId(str(1000 + number)),
        isrc=None if plain else Isrc(f"USABC26{number:05d}"),
        title=f"Track {number}",
        version=None if plain else "Remastered",
        artist_names=("First Artist", "Second Artist") if number % 2 else ("Solo",),
        album_id=album_id,
        volume_number=1 + number // 100,
        track_number=number,
        duration_seconds=None if plain else 180 + number,
    )


def _album(
    track_count: int, album_id: CatalogId = ALBUM_ID
) -> tuple[CatalogAlbum, list[CatalogTrack]]:
    header = CatalogAlbum(
        catalog_id=album_id, title="An Album", artist_names=("Band",), number_of_items=track_count
    )
    return header, [_track(number, album_id) for number in range(1, track_count + 1)]


def counting_catalog(
    albums: Sequence[tuple[CatalogAlbum, list[CatalogTrack]]] = (),
) -> FakeCatalog:
    """The fake catalogue, one item on each page not a track, so that the count round-trips."""
    return FakeCatalog(albums, skipped_per_page=1)


class TestCachingCatalogContract(CatalogContract):
    @pytest.fixture
    def catalog(self, engine: AsyncEngine) -> CachingCatalog:
        return CachingCatalog(
            FakeCatalog(contract.ALBUMS, contract.SINGLE_TRACKS, playlists=contract.PLAYLISTS),
            engine,
        )

    @pytest.fixture
    def unavailable_catalog(self, engine: AsyncEngine) -> CachingCatalog:
        inner = FakeCatalog(contract.ALBUMS, contract.SINGLE_TRACKS, playlists=contract.PLAYLISTS)
        inner.up = False
        return CachingCatalog(inner, engine)


async def _resolve(catalog: CachingCatalog, album_id: CatalogId = ALBUM_ID) -> list[AlbumPage]:
    return [page async for page in catalog.album_pages(album_id)]


def _tracks_of(pages: Sequence[AlbumPage]) -> list[CatalogTrack]:
    return [track for page in pages for track in page.tracks]


async def _count(engine: AsyncEngine, query: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(query))).scalar_one())


async def test_a_complete_album_answers_from_the_cache_without_calling_the_catalogue(
    engine: AsyncEngine,
) -> None:
    inner = counting_catalog([_album(45)])
    first = await _resolve(CachingCatalog(inner, engine, clock=FakeClock()))

    # A new instance (another process) over the same database.
    cached = await _resolve(CachingCatalog(inner, engine, clock=FakeClock()))

    assert inner.album_calls == 1
    assert _tracks_of(cached) == _tracks_of(first) == _album(45)[1]
    assert [len(page.tracks) for page in cached] == [20, 20, 5]
    assert [page.is_last for page in cached] == [False, False, True]
    assert {page.album for page in cached} == {_album(45)[0]}
    assert sum(page.skipped_items for page in cached) == sum(p.skipped_items for p in first) == 3


async def test_an_album_without_tracks_is_cached_as_one_last_page(engine: AsyncEngine) -> None:
    inner = counting_catalog([_album(0)])
    catalog = CachingCatalog(inner, engine, clock=FakeClock())
    await _resolve(catalog)

    cached = await _resolve(catalog)

    assert inner.album_calls == 1
    assert [(page.tracks, page.skipped_items, page.is_last) for page in cached] == [((), 1, True)]


async def test_each_page_reaches_the_consumer_before_the_next_is_requested(
    engine: AsyncEngine,
) -> None:
    inner = counting_catalog([_album(45)])
    second_page_may_come = asyncio.Event()
    inner.gate_before_page[2] = second_page_may_come
    catalog = CachingCatalog(inner, engine, clock=FakeClock())

    async with contextlib.aclosing(catalog.album_pages(ALBUM_ID)) as stream:
        # If the cache waited for the whole album, this would never arrive.
        first = await asyncio.wait_for(anext(stream), timeout=5)
        inner.events.append("consumer received page 1")
        second_page_may_come.set()
        async for page in stream:
            inner.events.append(f"consumer received {len(page.tracks)} tracks")

    assert first.tracks == tuple(_album(45)[1][:20])
    assert inner.events == [
        "catalogue asked for page 1",
        "consumer received page 1",
        "catalogue asked for page 2",
        "consumer received 20 tracks",
        "catalogue asked for page 3",
        "consumer received 5 tracks",
        "catalogue stream closed",
    ]


async def test_a_consumer_that_stops_after_the_first_page_leaves_the_album_to_fetch_again(
    engine: AsyncEngine,
) -> None:
    inner = counting_catalog([_album(45)])
    catalog = CachingCatalog(inner, engine, clock=FakeClock())
    async with contextlib.aclosing(catalog.album_pages(ALBUM_ID)) as stream:
        async for _page in stream:
            break
    # Leaving the cache's stream released the catalogue's at once.
    assert inner.events == ["catalogue asked for page 1", "catalogue stream closed"]

    again = await _resolve(catalog)

    assert inner.album_calls == 2
    assert _tracks_of(again) == _album(45)[1]
    # The tracks of the page that did arrive were kept: looking one up costs no call.
    assert await catalog.track(_track(1).catalog_id) == _track(1)
    assert inner.track_calls == []


async def test_a_catalogue_failure_mid_album_passes_through_and_leaves_it_incomplete(
    engine: AsyncEngine,
) -> None:
    inner = counting_catalog([_album(45)])
    inner.fail_before_page = 2
    catalog = CachingCatalog(inner, engine, clock=FakeClock())
    received: list[AlbumPage] = []

    with pytest.raises(CatalogUnavailable, match="page 2 timed out"):
        async for page in catalog.album_pages(ALBUM_ID):
            received.append(page)

    assert [len(page.tracks) for page in received] == [20]
    assert await _count(engine, "SELECT count(*) FROM catalog_albums WHERE complete") == 0
    inner.fail_before_page = None
    again = await _resolve(catalog)
    assert inner.album_calls == 2
    assert _tracks_of(again) == _album(45)[1]
    assert await _count(engine, "SELECT count(*) FROM catalog_albums WHERE complete") == 1


async def test_an_album_older_than_the_maximum_age_is_fetched_again(engine: AsyncEngine) -> None:
    inner = counting_catalog([_album(21)])
    clock = FakeClock()
    catalog = CachingCatalog(inner, engine, clock=clock, max_age=MAX_AGE)
    await _resolve(catalog)

    clock.current += MAX_AGE - timedelta(minutes=1)
    await _resolve(catalog)
    calls_while_fresh = inner.album_calls
    clock.current += timedelta(minutes=2)
    refreshed = await _resolve(catalog)
    await _resolve(catalog)

    assert calls_while_fresh == 1
    assert inner.album_calls == 2  # refreshed once, then fresh again
    assert _tracks_of(refreshed) == _album(21)[1]


async def test_a_track_answers_from_the_cache_until_it_is_older_than_the_maximum_age(
    engine: AsyncEngine,
) -> None:
    inner = counting_catalog([_album(3)])
    clock = FakeClock()
    catalog = CachingCatalog(inner, engine, clock=clock, max_age=MAX_AGE)
    wanted = _track(3).catalog_id

    fetched = await catalog.track(wanted)
    cached = await catalog.track(wanted)
    clock.current += MAX_AGE + timedelta(seconds=1)
    refreshed = await catalog.track(wanted)

    assert fetched == cached == refreshed == _track(3)
    assert inner.track_calls == [wanted, wanted]


async def test_a_batch_lookup_answers_cached_tracks_and_fetches_the_rest_in_one_call(
    engine: AsyncEngine,
) -> None:
    inner = counting_catalog([_album(4)])
    catalog = CachingCatalog(inner, engine, clock=FakeClock())
    one, two, three, four = (_track(number).catalog_id for number in range(1, 5))
    unknown = CatalogId("77")
    await catalog.tracks([one, two])

    found = await catalog.tracks([three, one, unknown, two, four, three])

    assert inner.batch_calls == [[one, two], [three, unknown, four]]
    assert list(found) == [three, one, two, four]
    assert found[three] == _track(3) and found[one] == _track(1)
    assert await catalog.tracks([]) == {}
    assert len(inner.batch_calls) == 2


async def test_an_item_not_in_the_catalogue_raises_not_found_and_caches_nothing(
    engine: AsyncEngine,
) -> None:
    inner = counting_catalog()
    # Unknown ids not remembered either (that is tested below), so the second call goes through.
    catalog = CachingCatalog(inner, engine, clock=FakeClock(), unknown_max_age=timedelta(0))

    with pytest.raises(CatalogItemNotFound) as missing_track:
        await catalog.track(CatalogId("5"))
    with pytest.raises(CatalogItemNotFound) as missing_album:
        await _resolve(catalog, CatalogId("6"))
    with pytest.raises(CatalogItemNotFound):
        await _resolve(catalog, CatalogId("6"))

    assert (missing_track.value.kind, missing_track.value.catalog_id) == ("track", "5")
    assert (missing_album.value.kind, missing_album.value.catalog_id) == ("album", "6")
    assert inner.album_calls == 2
    assert await _count(engine, "SELECT count(*) FROM catalog_tracks") == 0
    assert await _count(engine, "SELECT count(*) FROM catalog_albums") == 0


# -- ids the catalogue does not know (ADR 0028) ---------------------------------------------


async def test_an_album_the_catalogue_does_not_know_is_answered_unknown_without_a_call_for_a_day(
    engine: AsyncEngine,
) -> None:
    inner, clock = counting_catalog(), FakeClock()
    catalog = CachingCatalog(inner, engine, clock=clock, unknown_max_age=timedelta(days=1))

    for _ in range(3):
        with pytest.raises(CatalogItemNotFound, match="album 404 is not in the catalogue"):
            await _resolve(catalog, CatalogId("404"))
    assert inner.album_calls == 1

    clock.advance(timedelta(days=1))
    inner.albums[CatalogId("404")] = _album(2, CatalogId("404"))
    pages = await _resolve(catalog, CatalogId("404"))

    assert inner.album_calls == 2  # remembered for a day, then asked again
    assert [len(page.tracks) for page in pages] == [2]


async def test_track_ids_the_catalogue_does_not_know_are_not_asked_again_with_the_others(
    engine: AsyncEngine,
) -> None:
    known = _track(1, None)
    inner = FakeCatalog(tracks=[known])
    catalog = CachingCatalog(inner, engine, clock=FakeClock())
    unknown, other_unknown = CatalogId("404"), CatalogId("405")

    first = await catalog.tracks([known.catalog_id, unknown])
    again = await catalog.tracks([unknown, other_unknown])
    with pytest.raises(CatalogItemNotFound):
        await catalog.track(unknown)
    with pytest.raises(CatalogItemNotFound):
        await catalog.track(other_unknown)

    assert (first, again) == ({known.catalog_id: known}, {})
    assert inner.batch_calls == [[known.catalog_id, unknown], [other_unknown]]
    assert inner.track_calls == []  # both remembered from the batches


async def test_with_no_age_for_unknown_ids_the_catalogue_is_asked_every_time(
    engine: AsyncEngine,
) -> None:
    inner = counting_catalog()
    catalog = CachingCatalog(inner, engine, clock=FakeClock(), unknown_max_age=timedelta(0))

    for _ in range(2):
        with pytest.raises(CatalogItemNotFound):
            await _resolve(catalog, CatalogId("404"))

    assert inner.album_calls == 2

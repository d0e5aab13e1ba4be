"""The Catalog port's contract: tracks, albums and playlists as the catalogue holds them, albums
and playlists in pages in their own order, CatalogItemNotFound for what it does not hold and
CatalogUnavailable when it cannot answer. Read-only and idempotent.

The suite's catalogue is below, in the port's own terms: the subclass serves exactly it from the
thing its adapter talks to (a loopback server, a fake, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from application.ports.catalog import (
    AlbumPage,
    Catalog,
    CatalogAlbum,
    CatalogItemNotFound,
    CatalogPlaylist,
    CatalogTrack,
    CatalogUnavailable,
    PlaylistPage,
)
from domain.values import CatalogId, Isrc

ARTIST = "Contract Artist"
# More tracks than fit on one page of TIDAL's (20), so the album takes several.
ALBUM = CatalogAlbum(
    catalog_id=CatalogId("7000000"),
    title="Contract album",
    artist_names=(ARTIST,),
    number_of_items=45,
)
ALBUM_TRACKS = tuple(
    CatalogTrack(
        catalog_id=CatalogId(str(7000000 + number)),
        isrc=Isrc(f"QZCTR26{number:05d}"),
        title=f"Contract track {number}",
        artist_names=(ARTIST,),
        album_id=ALBUM.catalog_id,
        volume_number=1,
        track_number=number,
        duration_seconds=180,
    )
    for number in range(1, 46)
)
# A track on no album, for which the catalogue gives no ISRC.
TRACK_WITHOUT_ISRC = CatalogTrack(
    catalog_id=CatalogId("7100001"),
    isrc=None,
    title="A track without an ISRC",
    artist_names=(ARTIST,),
    duration_seconds=180,
)
ALBUMS: tuple[tuple[CatalogAlbum, tuple[CatalogTrack, ...]], ...] = ((ALBUM, ALBUM_TRACKS),)
SINGLE_TRACKS = (TRACK_WITHOUT_ISRC,)
UNKNOWN_ID = CatalogId("7999999")


def looked_up(track: CatalogTrack) -> CatalogTrack:
    """What a lookup by id must answer: everything but the position on the album, which an
    album's pages give and a lookup may not know (TIDAL's track resource lacks it)."""
    return replace(track, volume_number=None, track_number=None)


# A playlist of the album's tracks and the track on no album, over two pages, repeating two of
# them. Its tracks are as a lookup answers them: a playlist says nothing of album places, but
# each track keeps its own album.
PLAYLIST = CatalogPlaylist(
    catalog_id=CatalogId("5a3b1e00-0000-4000-8000-00000000c001"),
    title="Contract playlist",
    number_of_items=33,
)
PLAYLIST_TRACKS = tuple(
    looked_up(track)
    for track in (*ALBUM_TRACKS[10:40], TRACK_WITHOUT_ISRC, ALBUM_TRACKS[0], ALBUM_TRACKS[10])
)
PLAYLISTS: tuple[tuple[CatalogPlaylist, tuple[CatalogTrack, ...]], ...] = (
    (PLAYLIST, PLAYLIST_TRACKS),
)
UNKNOWN_PLAYLIST_ID = CatalogId("5a3b1e00-0000-4000-8000-00000000c999")


async def all_pages(catalog: Catalog, album_id: CatalogId) -> list[AlbumPage]:
    return [page async for page in catalog.album_pages(album_id)]


def tracks_of(pages: Sequence[AlbumPage]) -> list[CatalogTrack]:
    return [track for page in pages for track in page.tracks]


async def all_playlist_pages(catalog: Catalog, playlist_id: CatalogId) -> list[PlaylistPage]:
    return [page async for page in catalog.playlist_pages(playlist_id)]


class CatalogContract:
    """Subclass as `Test<Adapter>CatalogContract` with two fixtures: `catalog`, the adapter
    serving ALBUMS, PLAYLISTS and SINGLE_TRACKS (and nothing else); and `unavailable_catalog`,
    the adapter with whatever it talks to unable to answer."""

    async def test_a_track_is_answered_as_the_catalogue_holds_it(self, catalog: Catalog) -> None:
        answer = await catalog.track(ALBUM_TRACKS[4].catalog_id)

        assert looked_up(answer) == looked_up(ALBUM_TRACKS[4])

    async def test_a_track_without_an_isrc_is_answered_with_none_for_it(
        self, catalog: Catalog
    ) -> None:
        answer = await catalog.track(TRACK_WITHOUT_ISRC.catalog_id)

        assert looked_up(answer) == TRACK_WITHOUT_ISRC

    async def test_an_unknown_track_is_not_found(self, catalog: Catalog) -> None:
        with pytest.raises(CatalogItemNotFound) as raised:
            await catalog.track(UNKNOWN_ID)

        assert (raised.value.kind, raised.value.catalog_id) == ("track", UNKNOWN_ID.value)

    async def test_an_album_streams_all_its_tracks_in_album_order(self, catalog: Catalog) -> None:
        pages = await all_pages(catalog, ALBUM.catalog_id)

        assert tracks_of(pages) == list(ALBUM_TRACKS)
        assert len(pages) > 1

    async def test_every_page_carries_the_album_and_only_the_last_is_marked_last(
        self, catalog: Catalog
    ) -> None:
        pages = await all_pages(catalog, ALBUM.catalog_id)

        assert all(page.album == ALBUM for page in pages)
        assert [page.is_last for page in pages] == [False] * (len(pages) - 1) + [True]

    async def test_an_unknown_album_is_not_found(self, catalog: Catalog) -> None:
        with pytest.raises(CatalogItemNotFound) as raised:
            await all_pages(catalog, UNKNOWN_ID)

        assert (raised.value.kind, raised.value.catalog_id) == ("album", UNKNOWN_ID.value)

    async def test_a_playlist_streams_its_tracks_in_playlist_order_repeats_and_all(
        self, catalog: Catalog
    ) -> None:
        pages = await all_playlist_pages(catalog, PLAYLIST.catalog_id)

        assert [track for page in pages for track in page.tracks] == list(PLAYLIST_TRACKS)
        assert len(pages) > 1
        assert sum(page.skipped_items for page in pages) == 0

    async def test_every_playlist_page_carries_the_playlist_and_only_the_last_is_marked_last(
        self, catalog: Catalog
    ) -> None:
        pages = await all_playlist_pages(catalog, PLAYLIST.catalog_id)

        assert all(page.playlist == PLAYLIST for page in pages)
        assert [page.is_last for page in pages] == [False] * (len(pages) - 1) + [True]

    async def test_an_unknown_playlist_is_not_found(self, catalog: Catalog) -> None:
        with pytest.raises(CatalogItemNotFound) as raised:
            await all_playlist_pages(catalog, UNKNOWN_PLAYLIST_ID)

        assert (raised.value.kind, raised.value.catalog_id) == (
            "playlist",
            UNKNOWN_PLAYLIST_ID.value,
        )

    async def test_a_batch_lookup_answers_the_known_tracks_and_leaves_out_the_unknown(
        self, catalog: Catalog
    ) -> None:
        wanted = [ALBUM_TRACKS[0], ALBUM_TRACKS[44], TRACK_WITHOUT_ISRC]

        found = await catalog.tracks([track.catalog_id for track in wanted] + [UNKNOWN_ID])

        assert {tid: looked_up(track) for tid, track in found.items()} == {
            track.catalog_id: looked_up(track) for track in wanted
        }

    async def test_a_batch_lookup_of_nothing_is_nothing(self, catalog: Catalog) -> None:
        assert await catalog.tracks([]) == {}

    async def test_asking_again_gives_the_same_answers(self, catalog: Catalog) -> None:
        ids = [ALBUM_TRACKS[1].catalog_id, TRACK_WITHOUT_ISRC.catalog_id]

        assert await catalog.track(ids[0]) == await catalog.track(ids[0])
        assert await catalog.tracks(ids) == await catalog.tracks(ids)
        first = await all_pages(catalog, ALBUM.catalog_id)
        assert tracks_of(await all_pages(catalog, ALBUM.catalog_id)) == tracks_of(first)

    async def test_every_call_to_a_catalogue_that_cannot_answer_raises_catalog_unavailable(
        self, unavailable_catalog: Catalog
    ) -> None:
        with pytest.raises(CatalogUnavailable):
            await unavailable_catalog.track(ALBUM_TRACKS[0].catalog_id)
        with pytest.raises(CatalogUnavailable):
            await unavailable_catalog.tracks([ALBUM_TRACKS[0].catalog_id])
        with pytest.raises(CatalogUnavailable):
            await all_pages(unavailable_catalog, ALBUM.catalog_id)
        with pytest.raises(CatalogUnavailable):
            await all_playlist_pages(unavailable_catalog, PLAYLIST.catalog_id)

"""The TIDAL adapter behind the PostgreSQL catalogue cache, counted on the loopback server: an
uncached album costs ceil(N/20) calls, the same album again costs none."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.catalog_cache import CachingCatalog
from adapters.tidal.client import RetryPolicy, TidalCatalog
from adapters.tidal.pace import Unpaced
from domain.values import CatalogId
from tests.support.loopback_tidal import LoopbackTidal, generated_album


@pytest.fixture
def tidal() -> Iterator[LoopbackTidal]:
    with LoopbackTidal() as server:
        yield server


@pytest.mark.parametrize("tracks", [1, 20, 21, 120, 500])
async def test_a_cached_album_costs_no_call_after_ceil_n_over_20_the_first_time(
    tidal: LoopbackTidal, engine: AsyncEngine, tracks: int
) -> None:
    album = tidal.add_album(generated_album("8100000", tracks))
    inner = TidalCatalog(
        client_id=tidal.client_id,
        client_secret=tidal.client_secret,
        base_url=tidal.base_url,
        auth_url=tidal.auth_url,
        pace=Unpaced(),
        retry=RetryPolicy(attempts=2, wait_initial=0.01, wait_max=0.05),
    )
    async with inner:
        catalog = CachingCatalog(inner, engine)
        first = [t async for page in catalog.album_pages(CatalogId("8100000")) for t in page.tracks]
        calls_uncached, tokens = tidal.counts.api, tidal.counts.token
        again = [t async for page in catalog.album_pages(CatalogId("8100000")) for t in page.tracks]

    assert [t.catalog_id.value for t in first] == [item.id for item in album.items]
    assert again == first
    assert calls_uncached == math.ceil(tracks / 20)
    assert tokens == 1
    assert tidal.counts.api == calls_uncached  # the second resolution called nothing

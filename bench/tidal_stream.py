"""Measure the TIDAL adapter against the loopback TIDAL server over real TCP.

    .venv/bin/python -m bench.tidal_stream [--latency 0.05] [--runs 5]

Prints the time to stream a 120-track album (first page and whole album, with a cold token and
with a warm one) at the given latency per response, and the API calls and token requests an
uncached album of N = 1, 20, 21, 120 and 500 tracks costs. Pacing is off: it measures the adapter
and the protocol, not TIDAL's rate limit (which at ~0.2 requests/s would dominate).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import statistics
import time

import structlog

from adapters.tidal.client import TidalCatalog
from adapters.tidal.pace import Unpaced
from domain.values import CatalogId
from tests.support.loopback_tidal import LoopbackTidal, generated_album


def _catalog(tidal: LoopbackTidal) -> TidalCatalog:
    return TidalCatalog(
        client_id=tidal.client_id,
        client_secret=tidal.client_secret,
        base_url=tidal.base_url,
        auth_url=tidal.auth_url,
        pace=Unpaced(),
    )


async def _stream(catalog: TidalCatalog, album_id: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    first_page_at = 0.0
    tracks = 0
    async for page in catalog.album_pages(CatalogId(album_id)):
        if not tracks:
            first_page_at = time.perf_counter() - started
        tracks += len(page.tracks)
    return first_page_at, time.perf_counter() - started, tracks


async def _timings(tidal: LoopbackTidal, runs: int) -> None:
    tidal.add_album(generated_album("120000000", 120, volumes=2))
    cold, warm = [], []
    for _ in range(runs):
        async with _catalog(tidal) as catalog:
            cold.append(await _stream(catalog, "120000000"))
            warm.append(await _stream(catalog, "120000000"))
    for label, samples in (("cold token", cold), ("warm token", warm)):
        first = statistics.median(sample[0] for sample in samples) * 1000
        whole = statistics.median(sample[1] for sample in samples) * 1000
        print(
            f"120-track album, {label}: first page {first:.0f} ms, "
            f"whole album {whole:.0f} ms (median of {runs}; {samples[0][2]} tracks)"
        )


async def _calls(tidal: LoopbackTidal) -> None:
    print("N tracks | API calls | token requests | ceil(N/20)")
    for tracks in (1, 20, 21, 120, 500):
        album_id = str(200000000 + tracks * 1000)
        tidal.add_album(generated_album(album_id, tracks))
        tidal.reset_counts()
        async with _catalog(tidal) as catalog:
            _first, _whole, streamed = await _stream(catalog, album_id)
        counts = tidal.counts
        assert streamed == tracks
        print(f"{tracks:8} | {counts.api:9} | {counts.token:14} | {math.ceil(tracks / 20):10}")


async def _main(latency: float, runs: int) -> None:
    with LoopbackTidal() as tidal:
        tidal.switches.latency = latency
        print(f"loopback TIDAL at {tidal.base_url}, {latency * 1000:.0f} ms per response")
        await _timings(tidal, runs)
        await _calls(tidal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per response")
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(_main(arguments.latency, arguments.runs))


if __name__ == "__main__":
    main()

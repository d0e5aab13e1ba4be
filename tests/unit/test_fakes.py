"""The fakes of tests/unit/fakes.py pass the same contract suites as the real adapters
(tests/contracts/), so a use case tested on a fake is tested on what the port promises."""

from __future__ import annotations

import pytest

from tests.contracts.catalog import ALBUMS, PLAYLISTS, SINGLE_TRACKS, CatalogContract
from tests.contracts.clock import ClockContract
from tests.contracts.ingestion_queue import IngestionQueueContract, QueueRig
from tests.contracts.library import LibraryContract, LibraryRig
from tests.contracts.track_index import TrackIndexContract
from tests.unit.fakes import (
    FakeCatalog,
    FakeClock,
    FakeIndex,
    FakeLibraryAdditions,
    FakeQueue,
    FakeStore,
    FakeUnitOfWorkFactory,
)


class TestFakeClockContract(ClockContract):
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()


class TestFakeCatalogContract(CatalogContract):
    @pytest.fixture
    def catalog(self) -> FakeCatalog:
        return FakeCatalog(ALBUMS, SINGLE_TRACKS, playlists=PLAYLISTS)

    @pytest.fixture
    def unavailable_catalog(self) -> FakeCatalog:
        catalog = FakeCatalog(ALBUMS, SINGLE_TRACKS, playlists=PLAYLISTS)
        catalog.up = False
        return catalog


class TestFakeIndexContract(TrackIndexContract):
    @pytest.fixture
    def index(self) -> FakeIndex:
        return FakeIndex()

    @pytest.fixture
    def unavailable_index(self) -> FakeIndex:
        index = FakeIndex()
        index.up = False
        return index


class TestFakeQueueContract(IngestionQueueContract):
    @pytest.fixture
    def rig(self) -> QueueRig:
        queue = FakeQueue()

        def switch(up: bool) -> None:
            queue.up = up

        return QueueRig(
            queue=queue,
            delivered=lambda: [request.idempotency_key for request in queue.accepted],
            take_down=lambda: switch(False),
            bring_up=lambda: switch(True),
        )


class TestFakeLibraryContract(LibraryContract):
    @pytest.fixture
    def library(self) -> LibraryRig:
        store = FakeStore()
        return LibraryRig(FakeLibraryAdditions(store), FakeUnitOfWorkFactory(store))

    @pytest.fixture
    def unavailable_library(self) -> LibraryRig:
        store = FakeStore()
        store.up = False
        return LibraryRig(FakeLibraryAdditions(store), FakeUnitOfWorkFactory(store))

"""Fixtures of the fault suite: loopback dependencies, a scratch database, the processes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.faults.harness import (
    REPO,
    AddDriver,
    Catalogue,
    Loopbacks,
    Services,
    create_database,
    drop_database,
)
from tests.support.loopback_inngest import LoopbackInngest
from tests.support.loopback_qdrant import LoopbackQdrant
from tests.support.loopback_tidal import LoopbackTidal


@pytest.fixture
def loopbacks() -> Iterator[Loopbacks]:
    with LoopbackTidal() as tidal, LoopbackInngest() as inngest, LoopbackQdrant() as qdrant:
        yield Loopbacks(tidal=tidal, inngest=inngest, qdrant=qdrant)


@pytest.fixture
def catalogue(loopbacks: Loopbacks) -> Catalogue:
    return Catalogue(loopbacks.tidal)


@pytest.fixture
async def fault_database(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh `libingest_fault_<rand>` database on the test server, dropped afterwards."""
    name, url = await create_database(postgres_server_url)
    yield url
    await drop_database(postgres_server_url, name)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """The services' data directories. Not pytest's tmp_path: another pytest session on this
    machine prunes old basetemp directories and resets their permissions while we run."""
    directory = Path(tempfile.mkdtemp(prefix="libingest-fault-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def services(request: pytest.FixtureRequest) -> Iterator[Services]:
    """The service processes of a test, killed at teardown; their logs stay in
    .data/fault-logs/<test>/ for a look after a failure."""
    logs = REPO / ".data" / "fault-logs" / request.node.name
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    launched = Services(logs)
    try:
        yield launched
    finally:
        launched.kill_all()


@pytest.fixture
async def driver() -> AsyncIterator[AddDriver]:
    adds = AddDriver()
    yield adds
    await adds.aclose()

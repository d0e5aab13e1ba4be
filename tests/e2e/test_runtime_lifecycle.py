"""`libingest serve` and `libingest relay` as the processes an operator runs, on a scratch
database with the search index in local mode: each starts and stops cleanly, a relay beside a
running serve on the same data directory refuses with one sentence saying what to set, and a
command that cannot reach the database exits 69 (EX_UNAVAILABLE) with one line, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import ServiceProcess, libingest_command
from tests.support.scratch_database import create_scratch_database, drop_scratch_database

REPO = Path(__file__).resolve().parents[2]
NOWHERE = "postgresql://postgres@127.0.0.1:1/nowhere"  # a closed port
RELAY_RUNNING = "libingest relay: running"


def local_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """Only what we give it: the offline catalogue, the local queue, Qdrant local mode."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INNGEST_", "QDRANT_", "TIDAL_", "LIBINGEST_", "RELAY_", "AUTH_"))
        and key not in {"DATABASE_URL", "TEST_DATABASE_URL"}
    }
    return env | {
        "DATABASE_URL": database_url,
        "LIBINGEST_DATA_DIR": str(data_dir),
        "LIBINGEST_LOG_FORMAT": "json",
        "LIBINGEST_LOG_LEVEL": "INFO",
        "AUTH_JWT_SECRET": "lifecycle-test-secret-that-is-long-enough-0123",
    }


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*libingest_command(), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
async def scratch_database_url(postgres_server_url: str) -> AsyncIterator[str]:
    name, url = await create_scratch_database(postgres_server_url, "libingest_lifecycle")
    yield url
    await drop_scratch_database(postgres_server_url, name)


@pytest.mark.parametrize("command", ["migrate", "relay"])
def test_a_command_that_cannot_reach_the_database_exits_69_with_one_line(
    command: str, tmp_path: Path
) -> None:
    done = run_cli([command], local_env(NOWHERE, tmp_path))

    assert done.returncode == 69, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("libingest: the database is unreachable")


async def test_a_relay_beside_serve_on_local_mode_refuses_saying_what_to_set(
    scratch_database_url: str, tmp_path: Path
) -> None:
    env = local_env(scratch_database_url, tmp_path / "data")
    serve = ServiceProcess(env, tmp_path / "serve.log")
    serve.start()
    try:
        await serve.wait_ready(within=30)

        relay = run_cli(["relay"], env)

        assert relay.returncode == 69, relay.stderr
        output = relay.stderr + relay.stdout
        assert "Traceback" not in output and "NameError" not in output
        [refusal] = [line for line in relay.stderr.splitlines() if line.startswith("libingest:")]
        assert "held by another process" in refusal
        assert "set QDRANT_URL" in refusal
        # The refusal touched nothing of the running service.
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(f"{serve.url}/readyz")).status_code == 200
    finally:
        serve.stop()
    # uvicorn shuts down gracefully, then raises the SIGTERM it caught again (as its docs say).
    assert serve.process is not None and serve.process.returncode == -signal.SIGTERM
    serve_log = serve.log_path.read_text()
    assert "Application shutdown complete" in serve_log, serve.log_tail()
    assert "Traceback" not in serve_log


def test_the_relay_alone_starts_and_stops_cleanly(
    scratch_database_url: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "relay.log"
    with log_path.open("wb") as log:
        relay = subprocess.Popen(
            [*libingest_command(), "relay"],
            env=local_env(scratch_database_url, tmp_path / "data"),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while RELAY_RUNNING not in log_path.read_text():
            assert relay.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)

        relay.send_signal(signal.SIGTERM)

        assert relay.wait(timeout=15) == 0, log_path.read_text()
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    assert "Traceback" not in log_path.read_text()

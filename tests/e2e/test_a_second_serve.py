"""`libingest serve` where a server already listens (a second `make run`): one line saying so,
exit 2, no traceback, and nothing of the first one disturbed."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

LIBINGEST = str(Path(sys.executable).parent / "libingest")


def _serve(port: int, database_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {"DATABASE_URL": database_url, "LIBINGEST_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [LIBINGEST, "serve", "--port", str(port)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_serving_where_libingest_runs_says_it_is_already_running(
    live_server: str, database_url: str, tmp_path: Path
) -> None:
    port = urlsplit(live_server).port
    assert port is not None

    # In a thread: the first server answers on this test's event loop meanwhile.
    second = await asyncio.to_thread(_serve, port, database_url, tmp_path)

    assert second.returncode == 2
    assert f"already running on port {port}" in second.stderr
    assert "Traceback" not in second.stderr
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{live_server}/healthz")).status_code == 200


def test_serving_where_another_program_listens_names_the_port(
    database_url: str, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]

        second = _serve(port, database_url, tmp_path)

    assert second.returncode == 2
    assert f"port {port} on 127.0.0.1 is taken by another program" in second.stderr
    assert "Traceback" not in second.stderr

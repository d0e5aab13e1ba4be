"""What `libingest` writes where a person or a program reads it: JSON lines when its output goes
to a pipe or a file, readable coloured lines at a terminal; no Alembic preamble either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.scratch_database import create_scratch_database, drop_scratch_database
from tests.support.terminal import run_at_a_terminal

LIBINGEST = str(Path(sys.executable).parent / "libingest")


@pytest.fixture
async def empty_database(postgres_server_url: str) -> AsyncIterator[str]:
    """A database with no schema yet, so that `migrate` has upgrades to log."""
    name, url = await create_scratch_database(postgres_server_url, "libingest_logs")
    yield url
    await drop_scratch_database(postgres_server_url, name)


def _environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LIBINGEST_LOG")}
    return environment | {"DATABASE_URL": database_url, "LIBINGEST_DATA_DIR": str(tmp_path)}


def test_piped_output_logs_json_lines_without_alembic_preamble(
    empty_database: str, tmp_path: Path
) -> None:
    migrate = subprocess.run(
        [LIBINGEST, "migrate"],
        env=_environment(empty_database, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert migrate.returncode == 0, migrate.stderr
    records = [json.loads(line) for line in migrate.stderr.splitlines() if line.strip()]
    events = [record["event"] for record in records]
    assert any(event.startswith("Running upgrade") for event in events)
    assert [
        e for e in events if e.startswith(("setup plugin", "Context impl", "Will assume"))
    ] == []
    assert "database at revision" in migrate.stdout


def test_a_terminal_gets_readable_coloured_lines(empty_database: str, tmp_path: Path) -> None:
    code, text = run_at_a_terminal([LIBINGEST, "migrate"], _environment(empty_database, tmp_path))

    assert code == 0
    upgrade_lines = [line for line in text.splitlines() if "Running upgrade" in line]
    assert upgrade_lines
    assert not upgrade_lines[0].lstrip().startswith("{")  # not JSON
    assert "\x1b[" in text  # ANSI colours
    assert "setup plugin" not in text

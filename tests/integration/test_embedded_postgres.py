"""The embedded PostgreSQL of the default configuration, shared by two processes as `make run`'s
`libingest migrate` shares it with a running `libingest serve`: the one that did not start it
leaves it running and says so, rather than claiming to have stopped it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from adapters.postgres import database
from adapters.postgres.database import EmbeddedPostgres
from tests.support.logs import logs_of

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from adapters.postgres.database import EmbeddedPostgres

    server = EmbeddedPostgres(Path(sys.argv[1]))
    server.start()
    print("up", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    server.stop()
    """
)


def test_a_process_that_attached_to_a_running_server_leaves_it_running(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        # The wheel's own log lines may come first.
        assert "up" in iter(lambda: holder.stdout.readline().strip(), "")
        attached = EmbeddedPostgres(tmp_path)
        attached.start()

        with logs_of(database) as logs:
            attached.stop()

        assert [entry["event"] for entry in logs] == ["postgres.embedded.left_running"]
        assert attached.is_running()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    assert not EmbeddedPostgres(tmp_path).is_running()


def test_the_process_that_started_the_server_alone_stops_it(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    server.start()

    with logs_of(database) as logs:
        server.stop()

    assert [entry["event"] for entry in logs] == ["postgres.embedded.stopped"]
    assert not server.is_running()

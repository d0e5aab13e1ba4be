"""Running a command as a person runs it: its stdout and stderr a terminal (a pseudo-terminal),
so that what it does only for people (colours, live progress bars) shows."""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Mapping, Sequence


def run_at_a_terminal(
    command: Sequence[str], environment: Mapping[str, str], *, timeout: float = 120
) -> tuple[int, str]:
    """The command's exit code and everything it wrote to the terminal."""
    controller, terminal = pty.openpty()
    try:
        finished = subprocess.run(
            list(command), env=dict(environment), stdout=terminal, stderr=terminal, timeout=timeout
        )
        os.close(terminal)
        written = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the other end is closed and everything has been read
                break
            if not chunk:
                break
            written += chunk
    finally:
        os.close(controller)
    return finished.returncode, written.decode(errors="replace")

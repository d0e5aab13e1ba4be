"""The fairness section of the benchmarks (bench/fairness.py, ADR 0028) still runs, in its tiny
configuration. No timing is asserted: `make bench` measures the slots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_fairness_section_runs_in_its_quick_configuration() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "fairness", "--quick"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        # Not a measure: a guard against a hang. A loaded machine takes a minute to start
        # the service and the loopback peers.
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    # Correctness, not speed: nothing lost or sent twice, and TIDAL's meter never refused.
    assert "events: 0 lost, 0 sent twice" in completed.stderr, completed.stderr[-2000:]
    assert ", 0 answered 429" in completed.stderr, completed.stderr[-2000:]

"""The benchmark suite still runs, end to end, in its tiny configuration. No timing is asserted:
timing stays out of `make test`; `make bench` measures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_bench_suite_runs_in_its_quick_configuration() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-write"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        # A guard against a hang, not a timing: about 35 s alone on the 2-core machine, and
        # several times that while others run tests on it.
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = completed.stdout
    assert "## Add latency and throughput" in report
    assert "## Scheduling latency" in report
    assert "sustained run loses and duplicates nothing | " in report
    assert "## Search quality" in report
    # Correctness, not speed: the quick run's sustained phase lost and duplicated nothing.
    line = next(x for x in report.splitlines() if x.startswith("| sustained run loses"))
    assert line.endswith("| met |"), line

"""The whole suite as `make bench` runs it: every section on one rig, then the report
(docs/benchmarks.md and docs/benchmarks-scheduling.png, or printed with write=False)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from bench import adds, fairness, harness, scheduling, search_quality, sustained
from bench.report import Report, write_report
from bench.rig import Config, open_rig


def run(config: Config, *, write: bool) -> Report:
    started_at = datetime.now(UTC)
    machine = harness.machine()
    with open_rig(config) as rig:
        print(f"load generator: {'wrk' if rig.use_wrk else 'python-httpx'}", file=sys.stderr)
        postgres_version = harness.server_version(rig.database_url)
        if config.quick:
            # One service for every section: starting one costs seconds of imports.
            with (
                harness.service(rig.unpaced, rig.data_dir / "q") as svc,
                harness.floor(rig.database_url) as floor_process,
            ):
                add_rows, readd = adds.measure(config, svc.url, floor_process.url, rig.use_wrk)
                schedules = scheduling.measure(rig, svc.url)
                load = sustained.measure(rig, svc)
        else:
            print("adds ...", file=sys.stderr)
            add_rows, readd = adds.run(rig)
            harness.empty_library(rig.database_url)
            print("scheduling ...", file=sys.stderr)
            schedules = scheduling.run(rig)
            print("sustained ...", file=sys.stderr)
            load = sustained.run(rig)
        # Minutes at the real meter's shape, so only in the full run; `--only fairness --quick`
        # is its smoke test.
        fair = None
        if not config.quick:
            print("fairness ...", file=sys.stderr)
            fair = fairness.run(rig)
        print("search quality ...", file=sys.stderr)
        search = search_quality.measure(config)
        database_where = rig.database_where
        tool = "wrk" if rig.use_wrk else "python-httpx (wrk not available)"
    report = Report(
        started_at=started_at,
        finished_at=datetime.now(UTC),
        machine=machine,
        load_after=harness.machine()["load"],
        command=" ".join(["python -m bench", *sys.argv[1:]]),
        database=f"{database_where}, PostgreSQL {postgres_version}",
        tool=tool,
        config=config,
        adds=add_rows,
        readd=readd,
        scheduling=schedules,
        sustained=load,
        search=search,
        fairness=fair,
    )
    write_report(report, write=write)
    return report

"""Section `adds`: add latency and throughput, the service against the floor (a bare
FastAPI app doing the add's minimum of SQL), closed loop at each concurrency."""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field
from typing import Any

from bench import harness, load
from bench.rig import CatalogueIds, Config, Rig, token


@dataclass
class AddRow:
    target: str  # "addTrackToLibrary", "floor: item + job + notify", ...
    connections: int
    runs: list[load.LoadResult] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        values = [
            run.per_second if attribute == "per_second" else float(getattr(run, attribute))
            for run in self.runs
        ]
        return statistics.median(values)


def measure(
    config: Config, service_url: str, floor_url: str, use_wrk: bool
) -> tuple[list[AddRow], AddRow]:
    """Every target at every concurrency, repeats interleaved; then re-adds at 16."""
    adder = token("bench-adder")
    ids = CatalogueIds()
    targets = [
        ("addTrackToLibrary", f"{service_url}/graphql", "track"),
        ("addAlbumToLibrary", f"{service_url}/graphql", "album"),
        ("floor: item + job + notify", f"{floor_url}/add", "track"),
        ("floor: bare INSERT + COMMIT", f"{floor_url}/insert", "track"),
    ]
    rows = {
        (name, connections): AddRow(name, connections)
        for name, _, _ in targets
        for connections in config.connections
    }

    def run(url: str, kind: str, connections: int, seconds: float, fixed: int = 0) -> Any:
        return load.run_closed_loop(
            url,
            token=adder,
            kind=kind,
            connections=connections,
            seconds=seconds,
            base=ids.next_base(),
            fixed=fixed,
            use_wrk=use_wrk,
        )

    for _, url, kind in [] if config.quick else targets:  # warm up: connections, caches
        run(url, kind, 16, 2)
    # Repeats interleave the targets, so drifting background load hits them all alike.
    for repeat in range(config.repeats):
        for connections in config.connections:
            for name, url, kind in targets:
                result = run(url, kind, connections, config.add_seconds)
                rows[(name, connections)].runs.append(result)
                print(
                    f"  [{repeat + 1}/{config.repeats}] {name:<28} c={connections:<3} "
                    f"{result.per_second:7.0f}/s p50 {result.p50_ms:6.2f} "
                    f"p99 {result.p99_ms:6.2f} ms failed {result.failed}",
                    file=sys.stderr,
                )
    readd = AddRow("addTrackToLibrary, re-add", 16)
    for _ in range(config.repeats):
        # 1,000 ids cycled: the first 1,000 requests add, every later one is a re-add.
        readd.runs.append(
            run(f"{service_url}/graphql", "track", 16, config.add_seconds, fixed=1000)
        )
    return list(rows.values()), readd


def run(rig: Rig) -> tuple[list[AddRow], AddRow]:
    """The section on services of its own. The request path alone: with the relay on, the
    service would spend the same 2 cores scheduling every add (the sustained run measures
    that); the floor has no relay."""
    with (
        harness.service({**rig.common, "RELAY_ENABLED": "false"}, rig.data_dir / "a") as svc,
        harness.floor(rig.database_url) as floor_process,
    ):
        return measure(rig.config, svc.url, floor_process.url, rig.use_wrk)


def run_alone(rig: Rig) -> None:
    run(rig)  # each measurement is printed as it is taken

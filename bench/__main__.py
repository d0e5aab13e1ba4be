"""The benchmark suite (issue 7): `make bench`, or

    .venv/bin/python -m bench [--quick] [--no-write] [--repeats 3] [--add-seconds 5]
                              [--sustained-seconds 60] [--users 200] [--only SECTION]

Starts the service as users run it (`libingest serve` in a process of its own, on a fresh
database), a loopback TIDAL (latency, token bucket), a loopback Inngest Event API and a loopback
Qdrant in this process, and the floor (bench/floor_app.py) under uvicorn; drives them with wrk
(or, without it, a Python load generator in a process of its own); and rewrites
docs/benchmarks.md and docs/benchmarks-scheduling.png. `--no-write` prints the report instead.

Each section is a module (bench/adds.py, bench/scheduling.py, bench/sustained.py; the rig they
share is bench/rig.py, the whole run bench/suite.py). `--only SECTION` runs one and prints
what it measures; a new section is one entry in SECTIONS.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bench import (
    add_profile,
    adds,
    data_volume,
    fairness,
    processes,
    scheduling,
    search_quality,
    suite,
    sustained,
)
from bench.rig import QUICK, Config, Rig, open_rig


@dataclass(frozen=True)
class Section:
    """One part of the suite, run alone by `--only NAME`, printing what it measures."""

    help: str
    run_alone: Callable[[Config], None]


def on_the_rig(run_alone: Callable[[Rig], None]) -> Callable[[Config], None]:
    """A section that needs the database and the loopback peers."""

    def run(config: Config) -> None:
        with open_rig(config) as rig:
            run_alone(rig)

    return run


def validation_cost(config: Config) -> None:
    # In process, no rig. Imported here: it builds the GraphQL schema, which no other
    # section needs.
    from bench import validation_cost as validation

    print(validation.measure(config.validation_repeats))


SECTIONS = {
    "adds": Section("add latency and throughput, against the floor", on_the_rig(adds.run_alone)),
    "scheduling": Section(
        "from an add's commit to its album's events", on_the_rig(scheduling.run_alone)
    ),
    "sustained": Section(
        "users adding for a while, then draining", on_the_rig(sustained.run_alone)
    ),
    "validation": Section("what GraphQL documents cost to check, in process", validation_cost),
    "fairness": Section(
        "one user's flood and others' adds under TIDAL's meter", on_the_rig(fairness.run_alone)
    ),
    "search": Section(
        "search quality per query kind: hashing vs model vs hybrid, in process",
        search_quality.run_alone,
    ),
    "profile": Section(
        "where a sequential add's CPU goes, service against floor (py-spy)",
        on_the_rig(add_profile.run_alone),
    ),
    "processes": Section(
        "adds with 1, 2, 4 API processes; drain with 1, 2, 4 relays (writes"
        " docs/benchmarks-processes.md)",
        on_the_rig(processes.run_alone),
    ),
    "volume": Section(
        "requests and relay statements at 10^4..10^6 rows (writes docs/benchmarks-volume.md)",
        on_the_rig(data_volume.run_alone),
    ),
}


def config_from(arguments: argparse.Namespace) -> Config:
    config = QUICK if arguments.quick else Config()
    overrides: dict[str, Any] = {
        name: value
        for name in (
            "repeats",
            "add_seconds",
            "sustained_seconds",
            "users",
            "scheduling_runs",
            "fairness_flood",
        )
        if (value := getattr(arguments, name)) is not None
    }
    if arguments.connections:
        overrides["connections"] = tuple(int(n) for n in arguments.connections.split(","))
    if arguments.no_write:
        overrides["write"] = False
    return replace(config, **overrides)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny configuration (smoke test)")
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="print the report instead of writing docs/benchmarks*.md (the volume and"
        " processes sections write their page unless told this)",
    )
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--add-seconds", type=float)
    parser.add_argument("--sustained-seconds", type=float)
    parser.add_argument("--users", type=int)
    parser.add_argument("--scheduling-runs", type=int)
    parser.add_argument("--fairness-flood", type=int, help="albums user A floods (200)")
    parser.add_argument(
        "--only",
        choices=tuple(SECTIONS),
        help="run one section and print it (docs/benchmarks.md is not written): "
        + "; ".join(f"{name}: {section.help}" for name, section in SECTIONS.items()),
    )
    parser.add_argument("--connections", help="comma-separated, e.g. 1,16")
    arguments = parser.parse_args()
    config = config_from(arguments)
    if arguments.only:
        SECTIONS[arguments.only].run_alone(config)
        return
    suite.run(config, write=not arguments.no_write)


if __name__ == "__main__":
    main()

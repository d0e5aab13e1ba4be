"""Section `profile`: where a sequential add's CPU goes, in the service and in the floor
(issue 15, part 3). `python -m bench --only profile` prints the table (docs/benchmarks.md's
notes carry the last one, with what it says).

One connection adds back to back (wrk, a new track each time), against the service
(`libingest serve`, RELAY_ENABLED=false) and then against the floor (bench/floor_app.py: the
same transaction in FastAPI + asyncpg, no GraphQL, no auth). py-spy samples the server process
from outside meanwhile (no change to the product, `--nonblocking`: it never stops the process);
psutil reads the process's CPU time before and after. Each sample is put in the part of the
request its innermost recognised frame belongs to (PARTS, first match from the leaf up), and a
part's CPU per add is its share of the samples times the process's CPU per add."""

from __future__ import annotations

import collections
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import harness, load
from bench.rig import CatalogueIds, Rig, token

RATE = 400  # samples per second

# (part, where its code lives). A sample counts for the first part, from the innermost frame
# outwards, whose file path starts with (or holds, after a "/") one of the fragments. py-spy
# gives site-packages and project paths relative ("uvicorn/protocols/...", "domain/values.py").
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("JSON decode/encode", ("json/", "orjson")),
    ("auth: bearer token (JWT, remembered)", ("jwt/", "adapters/auth/")),
    (
        "GraphQL document: parse + validate, or the cache's hit",
        (
            "graphql/language/",
            "graphql/validation/",
            "entrypoints/graphql/documents.py",
            "entrypoints/graphql/document_cost.py",
        ),
    ),
    ("SQL: asyncpg, the add's statement", ("asyncpg/", "adapters/postgres/")),
    ("use case + domain", ("application/", "domain/")),
    ("logging (structlog)", ("structlog/", "logging/", "entrypoints/logging.py")),
    (
        "GraphQL execution: Strawberry, graphql-core, resolvers, result",
        ("strawberry/", "graphql/", "entrypoints/graphql/"),
    ),
    (
        "ASGI: middleware, framework, request and response objects",
        ("entrypoints/middleware.py", "entrypoints/app.py", "starlette/", "fastapi/", "pydantic"),
    ),
    # Kept as one part: with uvloop the loop's own work (socket reads and writes, callbacks)
    # is C, and py-spy puts it on whichever Python line called into it.
    (
        "HTTP server and event loop: uvicorn, httptools, asyncio/uvloop, socket calls",
        ("uvicorn/", "httptools", "entrypoints/server.py", "asyncio/", "uvloop"),
    ),
)
OTHER = "other (interpreter, libraries not listed)"


@dataclass
class Profile:
    target: str
    adds: int
    seconds: float
    cpu_seconds: float
    samples: collections.Counter[str]
    functions: collections.Counter[str]
    p50_ms: float

    @property
    def cpu_us_per_add(self) -> float:
        return self.cpu_seconds / max(self.adds, 1) * 1e6

    def part_us(self, part: str) -> float:
        total = sum(self.samples.values())
        return self.samples[part] / max(total, 1) * self.cpu_us_per_add


def _path(frame: str) -> str:
    """`function (path:line)` -> path."""
    opening = frame.rfind(" (")
    return frame[opening + 2 :].rsplit(":", 1)[0] if opening >= 0 else frame


def part_of(frames: list[str]) -> str:
    """The part a sample belongs to; `frames` from the outermost to the innermost."""
    for frame in reversed(frames):
        path = _path(frame)
        for part, fragments in PARTS:
            if any(path.startswith(f) or f"/{f}" in path for f in fragments):
                return part
    return OTHER


def read_raw(path: Path) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """py-spy's raw output (collapsed stacks, `frame;frame;... count`): samples by part, and
    by innermost frame."""
    parts: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")[1:]  # the first is the thread
        parts[part_of(frames)] += int(count)
        if frames:
            functions[frames[-1]] += int(count)
    return parts, functions


def profile(rig: Rig, process: harness.Process, url: str, target: str, seconds: float) -> Profile:
    ids = CatalogueIds()
    adder = token("profile-adder")

    def add_for(duration: float) -> load.LoadResult:
        return load.run_closed_loop(
            url,
            token=adder,
            kind="track",
            connections=1,
            seconds=duration,
            base=ids.next_base(),
            use_wrk=rig.use_wrk,
        )

    add_for(3)  # warm-up
    with tempfile.TemporaryDirectory(prefix="libingest-profile-") as directory:
        raw = Path(directory) / f"{target}.txt"
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(process.pid),
                "--rate",
                str(RATE),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(raw),
                "--duration",
                str(round(seconds) + 2),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # attached
        server = psutil.Process(process.pid)
        before = server.cpu_times()
        result = add_for(seconds)
        after = server.cpu_times()
        spy.wait(timeout=seconds + 60)
        parts, functions = read_raw(raw)
    cpu = (after.user - before.user) + (after.system - before.system)
    return Profile(target, result.requests, result.seconds, cpu, parts, functions, result.p50_ms)


def run(rig: Rig) -> tuple[Profile, Profile]:
    seconds = 5.0 if rig.config.quick else 20.0
    with (
        harness.service({**rig.common, "RELAY_ENABLED": "false"}, rig.data_dir / "p") as svc,
        harness.floor(rig.database_url) as floor_process,
    ):
        service = profile(rig, svc, f"{svc.url}/graphql", "service", seconds)
        floor = profile(rig, floor_process, f"{floor_process.url}/add", "floor", seconds)
    return service, floor


def render(service: Profile, floor: Profile) -> str:
    load_now = ", ".join(f"{x:.2f}" for x in harness.machine()["load"])
    lines = [
        f"Sequential adds (one connection, wrk), py-spy at {RATE} Hz on the server process;"
        f" load average after: {load_now}.",
        "",
        "| | service | floor |",
        "|---|---:|---:|",
        f"| adds profiled | {service.adds} | {floor.adds} |",
        f"| median latency (wrk) | {service.p50_ms:.2f} ms | {floor.p50_ms:.2f} ms |",
        f"| server CPU per add | {service.cpu_us_per_add:.0f} us | {floor.cpu_us_per_add:.0f} us |",
        f"| samples | {sum(service.samples.values())} | {sum(floor.samples.values())} |",
        "",
        "| part of the request (CPU per add) | service | floor | service - floor |",
        "|---|---:|---:|---:|",
    ]
    for part in [name for name, _ in PARTS] + [OTHER]:
        s, f = service.part_us(part), floor.part_us(part)
        lines.append(f"| {part} | {s:.0f} us | {f:.0f} us | {s - f:+.0f} us |")
    for profiled in (service, floor):
        lines += [
            "",
            f"The {profiled.target}'s innermost frames with the most samples:",
            "",
            "| frame | share of its samples |",
            "|---|---:|",
        ]
        total = sum(profiled.functions.values())
        for frame, count in profiled.functions.most_common(12):
            lines.append(f"| `{frame}` | {count / max(total, 1):.1%} |")
    return "\n".join(lines) + "\n"


def run_alone(rig: Rig) -> None:
    print(render(*run(rig)))

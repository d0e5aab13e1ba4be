"""Load generators that run outside the service's interpreter.

- `run_closed_loop`: N connections POSTing the add mutation back to back for a while, with wrk
  (Debian's package) and a Lua script, or, without wrk, this module run as its own process
  (`python -m bench.load closed ...`, httpx). Every request carries a catalogue id of its own
  (a per-thread counter), so each add is new; `fixed` > 0 cycles over that many ids instead
  (re-adds).
- `python -m bench.load users ...`: the sustained run's simulated users (one process, asyncio),
  each adding a random track or album of the catalogue it is given, then thinking a while.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

MUTATION = {
    "track": (
        "mutation($id: ID!) { addTrackToLibrary(trackId: $id) { __typename "
        "... on AddToLibrarySuccess { alreadyInLibrary item { id } } } }"
    ),
    "album": (
        "mutation($id: ID!) { addAlbumToLibrary(albumId: $id) { __typename "
        "... on AddToLibrarySuccess { alreadyInLibrary item { id } } } }"
    ),
}
SUCCESS = "AddToLibrarySuccess"

# wrk's Lua, shared by both scripts: each thread numbered and kept, a response counted as failed
# unless it is a 200 whose body names the success type, and `totals` for `done`.
_LUA_THREADS = r"""
local threads = {}
local next_tid = 0
function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end
failed = 0
function response(status, hdrs, body)
  if status ~= 200 or not string.find(body, "AddToLibrarySuccess", 1, true) then
    failed = failed + 1
  end
end
function totals(summary)
  local f = 0
  for _, t in ipairs(threads) do f = f + (t:get("failed") or 0) end
  local e = summary.errors
  return f, e.connect + e.read + e.write + e.timeout
end
"""

# wrk's Lua: one counter per thread, ids spaced 10^8 apart per thread; a response counts as
# failed unless it is a 200 whose body names the success type. `done` prints one JSON line.
_LUA = (
    _LUA_THREADS
    + r"""
local counter = 0
function init(args)
  token = args[1]
  query = args[2]
  base = tonumber(args[3])
  fixed = tonumber(args[4])
  headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. token
end
function request()
  counter = counter + 1
  local id
  if fixed > 0 then
    id = base + (counter % fixed)
  else
    id = base + tid * 100000000 + counter
  end
  local body = '{"query":"' .. query .. '","variables":{"id":"' .. string.format("%d", id) .. '"}}'
  return wrk.format("POST", nil, headers, body)
end
function done(summary, latency, requests)
  local f, errors = totals(summary)
  io.write(string.format(
    'BENCH {"requests":%d,"seconds":%.6f,"p50_ms":%.3f,"p95_ms":%.3f,"p99_ms":%.3f,' ..
    '"failed":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, f,
    errors))
end
"""
)


# wrk's Lua for the sustained run's users: each connection is a user who adds a random album
# (probability `album_share`) or track with one of the users' tokens, then thinks a uniform
# 0 to 2 x `think` seconds (wrk's `delay`, not counted in the latency). The catalogue comes
# from a file of lines "think <s>", "albums <share>", "A <id>", "T <id>", "K <token>".
_USERS_LUA = (
    _LUA_THREADS
    + r"""
function init(args)
  math.randomseed(os.time() * 100 + tid)
  albums, tracks, tokens = {}, {}, {}
  think, album_share = 1.0, 0.3
  for line in io.lines(args[1]) do
    local kind, value = line:match("^(%S+) (%S+)$")
    if kind == "A" then table.insert(albums, value)
    elseif kind == "T" then table.insert(tracks, value)
    elseif kind == "K" then table.insert(tokens, value)
    elseif kind == "think" then think = tonumber(value)
    elseif kind == "albums" then album_share = tonumber(value) end
  end
  album_query = args[2]
  track_query = args[3]
end
function request()
  local query, id
  if math.random() < album_share then
    query, id = album_query, albums[math.random(#albums)]
  else
    query, id = track_query, tracks[math.random(#tracks)]
  end
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  local body = '{"query":"' .. query .. '","variables":{"id":"' .. id .. '"}}'
  return wrk.format("POST", nil, headers, body)
end
function delay()
  return math.random() * 2 * think * 1000
end
function done(summary, latency, requests)
  local f, errors = totals(summary)
  io.write(string.format(
    'BENCH {"adds":%d,"seconds":%.6f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"failed":%d,"errors":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, f,
    errors))
end
"""
)


def run_users_with_wrk(
    url: str, *, catalog: dict[str, list[str]], seconds: float, think: float, album_share: float
) -> dict[str, Any]:
    """The sustained run's users, driven by wrk: one connection per user token."""
    lines = [f"think {think:g}", f"albums {album_share:g}"]
    lines += [f"A {album}" for album in catalog["albums"]]
    lines += [f"T {track}" for track in catalog["tracks"]]
    lines += [f"K {token}" for token in catalog["tokens"]]
    with (
        tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script,
        tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as data,
    ):
        script.write(_USERS_LUA)
        data.write("\n".join(lines) + "\n")
    try:
        completed = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{len(catalog['tokens'])}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "-s",
                script.name,
                url,
                "--",
                data.name,
                MUTATION["album"].replace('"', '\\"'),
                MUTATION["track"].replace('"', '\\"'),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 120,
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
        Path(data.name).unlink(missing_ok=True)
    line = next(x for x in completed.stdout.splitlines() if x.startswith("BENCH "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    return result


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failed: int
    socket_errors: int
    tool: str

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def ensure_wrk() -> bool:
    """wrk from Debian's packages, installed if missing and we may (root with apt-get); else
    the Python load generator stands in."""
    if wrk_available():
        return True
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=300,
        )
    return wrk_available()


def run_closed_loop(
    url: str,
    *,
    token: str,
    kind: str,
    connections: int,
    seconds: float,
    base: int,
    fixed: int = 0,
    use_wrk: bool = True,
) -> LoadResult:
    """`connections` clients sending adds back to back to `url` for `seconds`."""
    query = MUTATION[kind].replace('"', '\\"')
    if use_wrk:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(_LUA)
        try:
            threads = max(1, min(2, connections))
            completed = subprocess.run(
                [
                    "wrk",
                    f"-t{threads}",
                    f"-c{connections}",
                    f"-d{max(1, round(seconds))}s",
                    "--timeout",
                    "10s",
                    "-s",
                    script.name,
                    url,
                    "--",
                    token,
                    query,
                    str(base),
                    str(fixed),
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=seconds + 60,
            )
        finally:
            Path(script.name).unlink(missing_ok=True)
        line = next(x for x in completed.stdout.splitlines() if x.startswith("BENCH "))
        return LoadResult(**json.loads(line.removeprefix("BENCH ")), tool="wrk")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "closed",
            url,
            "--token",
            token,
            "--kind",
            kind,
            "--connections",
            str(connections),
            "--seconds",
            str(seconds),
            "--base",
            str(base),
            "--fixed",
            str(fixed),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    return LoadResult(**json.loads(completed.stdout.splitlines()[-1]))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def _closed(arguments: argparse.Namespace) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {arguments.token}"}
    latencies: list[float] = []
    failed = errors = 0
    deadline = time.perf_counter() + arguments.seconds
    limits = httpx.Limits(max_connections=arguments.connections)

    async def client_loop(tid: int, client: httpx.AsyncClient) -> None:
        nonlocal failed, errors
        counter = 0
        while time.perf_counter() < deadline:
            counter += 1
            if arguments.fixed > 0:
                item = arguments.base + counter % arguments.fixed
            else:
                item = arguments.base + tid * 100_000_000 + counter
            body = {"query": MUTATION[arguments.kind], "variables": {"id": str(item)}}
            started = time.perf_counter()
            try:
                response = await client.post(arguments.url, json=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200 or SUCCESS not in response.text:
                failed += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        await asyncio.gather(
            *(client_loop(tid + 1, client) for tid in range(arguments.connections))
        )
    result = LoadResult(
        requests=len(latencies),
        seconds=time.perf_counter() - started,
        p50_ms=_percentile(latencies, 50),
        p95_ms=_percentile(latencies, 95),
        p99_ms=_percentile(latencies, 99),
        failed=failed,
        socket_errors=errors,
        tool="python-httpx",
    )
    return asdict(result)


async def _users(arguments: argparse.Namespace) -> dict[str, Any]:
    """Simulated users: add a random album (probability `album_share`) or track, think, repeat."""
    with open(arguments.catalog) as file:  # noqa: ASYNC230 - once, before any load
        catalog = json.load(file)
    albums: list[str] = catalog["albums"]
    tracks: list[str] = catalog["tracks"]
    tokens: list[str] = catalog["tokens"]
    rng = random.Random(arguments.seed)
    latencies: list[float] = []
    per_second: dict[int, int] = {}
    failed = errors = 0
    started = time.perf_counter()
    deadline = started + arguments.seconds
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))

    async def user(token: str, client: httpx.AsyncClient) -> None:
        nonlocal failed, errors
        headers = {"authorization": f"Bearer {token}"}
        await asyncio.sleep(rng.uniform(0, arguments.think))  # users do not start in step
        while time.perf_counter() < deadline:
            if rng.random() < arguments.album_share:
                body = {"query": MUTATION["album"], "variables": {"id": rng.choice(albums)}}
            else:
                body = {"query": MUTATION["track"], "variables": {"id": rng.choice(tracks)}}
            sent = time.perf_counter()
            try:
                response = await client.post(arguments.url, json=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
            else:
                latencies.append((time.perf_counter() - sent) * 1000)
                second = int(sent - started)
                per_second[second] = per_second.get(second, 0) + 1
                if response.status_code != 200 or SUCCESS not in response.text:
                    failed += 1
            await asyncio.sleep(rng.uniform(0, 2 * arguments.think))

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(user(token, client) for token in tokens))
    elapsed = time.perf_counter() - started
    return {
        "adds": len(latencies),
        "seconds": elapsed,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
        "max_ms": max(latencies, default=0.0),
        "failed": failed,
        "errors": errors,
        "median_adds_per_second": statistics.median(per_second.values()) if per_second else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="bench load generators (a process of their own)")
    modes = parser.add_subparsers(dest="mode", required=True)
    closed = modes.add_parser("closed")
    closed.add_argument("url")
    closed.add_argument("--token", required=True)
    closed.add_argument("--kind", choices=sorted(MUTATION), default="track")
    closed.add_argument("--connections", type=int, default=1)
    closed.add_argument("--seconds", type=float, default=5.0)
    closed.add_argument("--base", type=int, default=1)
    closed.add_argument("--fixed", type=int, default=0)
    users = modes.add_parser("users")
    users.add_argument("url")
    users.add_argument("--catalog", required=True, help="JSON: albums, tracks, tokens")
    users.add_argument("--seconds", type=float, default=60.0)
    users.add_argument("--think", type=float, default=1.0, help="mean seconds between adds")
    users.add_argument("--album-share", type=float, default=0.3)
    users.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    run = _closed if arguments.mode == "closed" else _users
    print(json.dumps(asyncio.run(run(arguments))))


if __name__ == "__main__":
    main()

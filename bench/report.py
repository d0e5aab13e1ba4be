"""docs/benchmarks.md and docs/benchmarks-scheduling.png from one run of the suite."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bench.harness import ROOT

if TYPE_CHECKING:
    from bench.adds import AddRow
    from bench.fairness import Fairness
    from bench.rig import Config
    from bench.scheduling import SchedulingRow
    from bench.search_quality import SearchQuality
    from bench.sustained import Sustained

DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks-scheduling.png"


@dataclass
class Report:
    started_at: datetime
    finished_at: datetime
    machine: dict[str, Any]
    load_after: tuple[float, float, float]
    command: str
    database: str
    tool: str
    config: Config
    adds: list[AddRow]
    readd: AddRow
    scheduling: list[SchedulingRow]
    sustained: Sustained
    search: SearchQuality | None = None
    fairness: Fairness | None = None

    def add(self, target: str, connections: int) -> AddRow | None:
        return next(
            (r for r in self.adds if r.target == target and r.connections == connections), None
        )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _goal(ok: bool) -> str:
    return "met" if ok else "**not met**"


def goals(report: Report) -> list[tuple[str, str, str]]:
    """(goal, measured, verdict) for every goal of issue 7 this run can judge."""
    rows: list[tuple[str, str, str]] = []
    concurrency = 16 if 16 in report.config.connections else max(report.config.connections)
    track = report.add("addTrackToLibrary", concurrency)
    album = report.add("addAlbumToLibrary", concurrency)
    floor = report.add("floor: item + job + notify", concurrency)
    if track and album and floor:
        for row in (track, album):
            share = row.median("per_second") / floor.median("per_second")
            rows.append(
                (
                    f"{row.target} throughput at {concurrency} connections >= 50% of the floor",
                    f"{row.median('per_second'):.0f}/s vs floor "
                    f"{floor.median('per_second'):.0f}/s = {share:.0%}",
                    _goal(share >= 0.5),
                )
            )
            ratio = row.median("p99_ms") / floor.median("p99_ms")
            rows.append(
                (
                    f"{row.target} p99 at {concurrency} connections <= 2x the floor's",
                    f"{row.median('p99_ms'):.1f} ms vs floor {floor.median('p99_ms'):.1f} ms"
                    f" = {ratio:.1f}x",
                    _goal(ratio <= 2.0),
                )
            )
    for target in ("addTrackToLibrary", "addAlbumToLibrary"):
        sequential = report.add(target, 1)
        if sequential:
            median = sequential.median("p50_ms")
            rows.append(
                (f"sequential {target} median < 3 ms", f"{median:.2f} ms", _goal(median < 3.0))
            )
    for row in report.scheduling:
        if row.cached:
            continue
        last = row.median("last_ms")
        first = row.median("first_ms")
        if row.size == 120 and last is not None:
            limit = 1.2 * row.lower_bound_ms + 100
            rows.append(
                (
                    "uncached 120-track album: last event <= 1.2x lower bound + 100 ms",
                    f"{last:.0f} ms (limit {limit:.0f} ms)",
                    _goal(last <= limit),
                )
            )
        if first is not None:
            limit = report.config.tidal_latency * 1000 + 100
            rows.append(
                (
                    f"first event of a {row.size}-track album <= one TIDAL response + 100 ms",
                    f"{first:.0f} ms (limit {limit:.0f} ms)",
                    _goal(first <= limit),
                )
            )
    for row in report.scheduling:
        calls = row.samples[-1]
        expected = 0 if row.cached else math.ceil(row.size / 20)
        tidal_api = calls.tidal
        rows.append(
            (
                f"TIDAL calls, {row.size}-track album {'cached' if row.cached else 'uncached'}"
                f" = {expected}",
                f"{tidal_api}",
                _goal(tidal_api == expected),
            )
        )
        if not row.cached:
            qdrant_limit = math.ceil(row.size / 1000)
            rows.append(
                (
                    f"Qdrant calls, {row.size}-track album <= one per 1,000 ISRCs",
                    f"{calls.qdrant}",
                    _goal(calls.qdrant <= qdrant_limit),
                )
            )
            inngest_limit = math.ceil(calls.events / 500) if calls.events else 0
            rows.append(
                (
                    f"Inngest requests, {row.size}-track album <= one per 500 events",
                    f"{calls.inngest} for {calls.events} events",
                    _goal(calls.inngest <= max(inngest_limit, 1)),
                )
            )
    sustained = report.sustained
    lost = sum(n for status, n in sustained.jobs.items() if status != "done")
    ok = (
        lost == 0
        and sustained.missing_from_ledger == 0
        and sustained.ledger_not_dispatched == 0
        and sustained.duplicates == 0
        and sustained.failed == 0
        and sustained.errors == 0
    )
    rows.append(
        (
            "sustained run loses and duplicates nothing",
            f"jobs {sustained.jobs}; ISRCs missing from the ledger "
            f"{sustained.missing_from_ledger}; not dispatched {sustained.ledger_not_dispatched}"
            f"; duplicate event ids {sustained.duplicates}; failed adds "
            f"{sustained.failed + sustained.errors}",
            _goal(ok),
        )
    )
    if report.fairness is not None:
        from bench import fairness

        rows += fairness.goals(report.fairness)
    return rows


def _users_tool(tool: str, users: int) -> str:
    if tool == "wrk":
        return f"wrk, a connection per user, one of the {users} users' tokens per request"
    return "one Python load-generator process, httpx"


def _plot(report: Report) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fresh = [row for row in report.scheduling if not row.cached]
    sizes = [row.size for row in fresh]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    axes.plot(sizes, [row.median("last_ms") or 0 for row in fresh], "o-", label="last event")
    axes.plot(sizes, [row.median("first_ms") or 0 for row in fresh], "s-", label="first event")
    axes.plot(sizes, [row.lower_bound_ms for row in fresh], "k--", label="ceil(N/20) x 50 ms")
    axes.plot(
        sizes,
        [1.2 * row.lower_bound_ms + 100 for row in fresh],
        ":",
        color="grey",
        label="goal: 1.2 x bound + 100 ms",
    )
    axes.set_xscale("log")
    axes.set_xticks(sizes, [str(s) for s in sizes])
    axes.set_xlabel("album size (tracks), uncached")
    axes.set_ylabel("ms after the add's commit (median)")
    axes.set_title(
        f"Scheduling latency, loopback TIDAL at {report.config.tidal_latency * 1000:.0f} ms"
    )
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(PLOT)
    plt.close(figure)


def render(report: Report) -> str:
    machine = report.machine
    config = report.config
    load_before = ", ".join(f"{x:.2f}" for x in machine["load"])
    load_after = ", ".join(f"{x:.2f}" for x in report.load_after)
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench`); every figure below comes from one"
        " run of the suite. Regenerate rather than edit.",
        "",
        f"- **Date**: {report.started_at:%Y-%m-%d %H:%M} UTC"
        f" ({(report.finished_at - report.started_at).total_seconds() / 60:.1f} min)",
        f"- **Command**: `{report.command}`",
        f"- **Machine**: {machine['nproc']} CPUs ({machine['cpu']}), "
        f"{machine['memory_gib']} GiB memory, Python {machine['python']}",
        f"- **Load average** (1, 5, 15 min) before: {load_before}; after: {load_after}. The"
        " machine is shared (other engineers run tests on it): figures are medians of"
        f" {config.repeats} interleaved repeats.",
        f"- **Database**: {report.database}; a fresh database for the run, dropped after.",
        f"- **Load generator**: {report.tool}, a process of its own; wrk's 2 threads share the"
        " 2 cores with the server under test.",
        "- **Service**: `libingest serve --port <free>` in a process of its own (uvicorn, one"
        " worker), `LIBINGEST_LOG_LEVEL=WARNING`, loopback TIDAL, Inngest Event API"
        " (`INNGEST_DEV=1`) and Qdrant (`QDRANT_URL`) served by the bench process.",
        "",
        "## Goals (issue 7)",
        "",
        "| goal | measured | verdict |",
        "|---|---|---|",
    ]
    lines += [f"| {goal} | {measured} | {verdict} |" for goal, measured, verdict in goals(report)]
    lines += [
        "",
        "## Add latency and throughput",
        "",
        f"Closed loop, {config.add_seconds:g} s per point, each request a new catalogue id (a"
        " per-connection counter in the wrk Lua script), Bearer token on every request. "
        + (
            "Quick configuration: one service for every phase, relay on."
            if config.quick
            else "The service runs with `RELAY_ENABLED=false` here so that only the request"
            " path is measured (the floor has no relay either); the sustained run below has"
            " it on."
        )
        + " Latencies in ms.",
        "",
        "| endpoint | connections | adds/s | median | p95 | p99 | failed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(report.adds, key=lambda r: (r.connections, r.target)):
        failed = sum(run.failed + run.socket_errors for run in row.runs)
        lines.append(
            f"| {row.target} | {row.connections} | {row.median('per_second'):.0f} | "
            f"{row.median('p50_ms'):.2f} | {row.median('p95_ms'):.2f} | "
            f"{row.median('p99_ms'):.2f} | {failed} |"
        )
    readd = report.readd
    lines += [
        f"| {readd.target} (1,000 ids cycled) | {readd.connections} | "
        f"{readd.median('per_second'):.0f} | {readd.median('p50_ms'):.2f} | "
        f"{readd.median('p95_ms'):.2f} | {readd.median('p99_ms'):.2f} | "
        f"{sum(r.failed + r.socket_errors for r in readd.runs)} |",
        "",
        "The floor (`bench/floor_app.py`, not in the product) is FastAPI + asyncpg under uvicorn:"
        " `/add` runs the add's transaction and nothing else (insert item ON CONFLICT DO NOTHING"
        " RETURNING, insert job, pg_notify, commit), `/insert` a bare INSERT + COMMIT.",
        "",
        "## Scheduling latency",
        "",
        f"Loopback TIDAL answering every request after {config.tidal_latency * 1000:.0f} ms, no"
        " rate limit (service pace off); Qdrant holds none of the ISRCs. Times are from the"
        " add's commit (the job row's `created_at`, stamped just before the commit, so slightly"
        " early) to the loopback Inngest accepting the first and the last event, and to the"
        f" job row marked done; medians of {config.scheduling_runs} fresh albums. Cached = a"
        " second user adds the same album (catalogue cache and ISRC ledger answer: no events,"
        " no calls).",
        "",
        "| album | lower bound | first event | last event | job done | TIDAL calls |"
        " Qdrant calls | Inngest requests | events |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report.scheduling:
        calls = row.samples[-1]
        label = f"{row.size} tracks{', cached' if row.cached else ''}"
        lines.append(
            f"| {label} | {_ms(row.lower_bound_ms)} | {_ms(row.median('first_ms'))} | "
            f"{_ms(row.median('last_ms'))} | {_ms(row.median('done_ms'))} | {calls.tidal} | "
            f"{calls.qdrant} | {calls.inngest} | {calls.events} |"
        )
    lines += [
        "",
        "TIDAL calls include the OAuth token request when one was made (the warm-up album takes"
        " the first token). Qdrant calls are the retrieve requests the loopback Qdrant received;"
        " Inngest requests are the `POST /e/...` the loopback Event API received.",
        "",
        "![scheduling latency against album size](benchmarks-scheduling.png)",
        "",
        "## Sustained load",
        "",
    ]
    s = report.sustained
    lines += [
        f"{s.users} simulated users ({_users_tool(s.tool, s.users)}), each adding a random"
        f" album (30%) or track (70%) from {config.albums} albums of 1-120 tracks, then waiting"
        f" a uniform 0-{2 * s.think:g} s; {s.seconds:.0f} s. Loopback TIDAL at"
        f" {config.tidal_latency * 1000:.0f} ms with a token bucket of {config.tidal_rate:g}/s,"
        f" burst {config.tidal_burst} (429 + Retry-After + `x-ratelimit-*` when empty), service"
        " pace set to the same. Relay on, as users run it.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| adds | {s.adds} |",
        f"| adds/s | {s.adds_per_second:.0f} |",
        f"| add latency median / p99 | {s.p50_ms:.1f} / {s.p99_ms:.1f} ms |",
        f"| events accepted (unique ISRCs) | {s.events} |",
        f"| events/s (load start to last event) | {s.events_per_second:.0f} |",
        f"| last event after the load stopped | {s.drain_seconds:.1f} s |",
        f"| TIDAL calls (429 answered) | {s.tidal_calls} ({s.tidal_429}) |",
        f"| Qdrant lookups (ISRCs per lookup) | {s.qdrant_calls}"
        f" ({s.qdrant_ids / max(s.qdrant_calls, 1):.1f}) |",
        f"| Inngest requests (events per request) | {s.inngest_requests}"
        f" ({s.events / max(s.inngest_requests, 1):.1f}) |",
        f"| jobs by status at the end | {s.jobs} |",
        f"| linked ISRCs missing from the ledger | {s.missing_from_ledger} |",
        f"| ledger rows not dispatched | {s.ledger_not_dispatched} |",
        f"| duplicate event ids at the Event API | {s.duplicates} |",
        f"| failed adds: error answer / no answer (timeout, connection) | {s.failed} /"
        f" {s.errors} |",
        f"| service RSS at start / peak | {s.start_rss_mib:.0f} / {s.peak_rss_mib:.0f} MiB |",
        "",
    ]
    if report.search is not None:
        from bench import search_quality  # loads the model's package only when it ran

        lines += search_quality.render(report.search)
    if report.fairness is not None:
        from bench import fairness

        lines += fairness.render(report.fairness)
    return "\n".join(lines) + "\n"


NOTES_MARKER = "<!-- notes: kept across runs -->"


def write_report(report: Report, *, write: bool) -> None:
    text = render(report)
    if not write:
        print(text)
        return
    notes = ""
    if DOC.exists():
        previous = DOC.read_text()
        if NOTES_MARKER in previous:
            notes = previous[previous.index(NOTES_MARKER) :]
    DOC.write_text(text + "\n" + (notes or NOTES_MARKER + "\n"))
    _plot(report)

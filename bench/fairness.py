"""Section `fairness` (issue 13, ADR 0028): one user floods the service while others add now and
then, under a loopback TIDAL metered as the real one is.

The meter is TIDAL's shape (burst 2, one request per pace slot), with the slot scaled down
(0.5 s, not 5 s) to keep the run short, and `x-ratelimit-*` headers on every answer in TIDAL's
own units (a request costs 5 tokens). User A adds `fairness_flood` albums of 5-40 tracks at
once; `fairness_others` other users each add an album or a track at a random moment while A's
flood runs. Everything is measured in pace slots or counts where it can be, since the machine
is shared: each other user's first event after their add, A's throughput, the share of what
the meter allowed that was used, 429s, and events lost or sent twice.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import httpx

from bench import harness, load
from bench.rig import Rig, token
from tests.support.loopback_server import LoopbackRequest, LoopbackResponse
from tests.support.loopback_tidal import LoopbackTrack, generated_album

# TIDAL's units, as its headers state them: a request costs 5 tokens (tidal-api.md §4.3).
TOKENS_PER_REQUEST = 5
BURST = 2
FLOOD_USER = "flood-a"
# What a first event may take beyond the slots: the add, the claim, TIDAL's answer, the write
# and the send (the goal: p95 <= 2 slots + 100 ms).
FIRST_EVENT_GOAL_SLOTS = 2
FIRST_EVENT_GOAL_EXTRA_S = 0.1


class MeteredTidal(harness.RateLimitedTidal):
    """The loopback TIDAL behind a token bucket of TIDAL's shape, stating it in `x-ratelimit-*`
    on every API answer (not only on 429s), and noting when each request was admitted and for
    which album."""

    def __init__(self, slot: float) -> None:
        super().__init__()
        self.slot = slot
        self.bucket = harness.TokenBucket(1 / slot, BURST)
        self.admitted: list[tuple[float, str]] = []  # (monotonic time, path)
        self._left = threading.local()
        self._noted = threading.Lock()

    def admit(self, request: LoopbackRequest) -> LoopbackResponse | None:
        refused = super().admit(request)
        if refused is None and self.faults_apply_to(request):
            with self._noted:
                self.admitted.append((time.monotonic(), request.route))
            assert self.bucket is not None
            self._left.tokens = self.bucket.tokens
        return refused

    def answer(self, request: LoopbackRequest) -> LoopbackResponse:
        response = super().answer(request)
        left = getattr(self._left, "tokens", None)
        if left is None or not self.faults_apply_to(request):
            return response
        self._left.tokens = None
        assert self.bucket is not None
        headers = {
            **response.headers,
            "x-ratelimit-remaining": str(int(left * TOKENS_PER_REQUEST)),
            "x-ratelimit-requested-tokens": str(TOKENS_PER_REQUEST),
            "x-ratelimit-burst-capacity": str(BURST * TOKENS_PER_REQUEST),
            "x-ratelimit-replenish-rate": f"{self.bucket.rate * TOKENS_PER_REQUEST:g}",
        }
        return replace(response, headers=headers)


@dataclass
class Added:
    user: str
    kind: str
    catalog_id: str
    isrcs: list[str]
    item_id: str = ""
    committed_at: float = 0.0  # the job's created_at, epoch seconds


@dataclass
class Fairness:
    slot_s: float
    flood_albums: int
    flood_tracks: int
    others: int
    first_event_slots: list[float]  # each other user's, in slots
    flood_seconds: float  # A's first add to A's last event
    flood_requests: int
    requests: int
    allowed: float  # what the meter allowed from the first admitted request to the last
    refused_429: int
    lost: int
    duplicated: int
    load: tuple[float, float, float]
    others_kinds: dict[str, int] = field(default_factory=dict)

    def quantile(self, q: float) -> float:
        values = sorted(self.first_event_slots)
        if not values:
            return math.nan
        return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]

    @property
    def utilisation(self) -> float:
        return self.requests / self.allowed if self.allowed else math.nan

    @property
    def goal_slots(self) -> float:
        return FIRST_EVENT_GOAL_SLOTS + FIRST_EVENT_GOAL_EXTRA_S / self.slot_s

    def lines(self) -> list[str]:
        p50 = statistics.median(self.first_event_slots) if self.first_event_slots else math.nan
        return [
            f"pace slot {self.slot_s:g} s, burst {BURST}; load average before "
            + ", ".join(f"{n:.2f}" for n in self.load),
            f"user A: {self.flood_albums} albums, {self.flood_tracks} tracks,"
            f" {self.flood_requests} TIDAL requests in {self.flood_seconds:.1f} s"
            f" ({self.flood_requests / self.flood_seconds * 60:.1f} requests/min,"
            f" {self.flood_tracks / self.flood_seconds:.1f} tracks/s)",
            f"{self.others} other users ({self.others_kinds}): first event after the add,"
            f" in slots: p50 {p50:.2f}, p95 {self.quantile(0.95):.2f},"
            f" max {max(self.first_event_slots, default=math.nan):.2f}"
            f" (goal p95 <= {self.goal_slots:.2f})",
            f"meter: {self.requests} requests admitted of {self.allowed:.1f} allowed"
            f" ({self.utilisation:.1%}; goal >= 95%), {self.refused_429} answered 429",
            f"events: {self.lost} lost, {self.duplicated} sent twice",
        ]


def goals(result: Fairness) -> list[tuple[str, str, str]]:
    """(goal, measured, verdict) for issue 13's goals."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    return [
        (
            "fairness: others' first event p95 <= 2 pace slots + 100 ms",
            f"{result.quantile(0.95):.2f} slots (goal {result.goal_slots:.2f})",
            verdict(result.quantile(0.95) <= result.goal_slots),
        ),
        (
            "fairness: the flood uses >= 95% of what TIDAL's meter allows, 0 answered 429",
            f"{result.utilisation:.1%}, {result.refused_429} answered 429",
            verdict(result.utilisation >= 0.95 and result.refused_429 == 0),
        ),
        (
            "fairness: nothing lost or sent twice",
            f"{result.lost} lost, {result.duplicated} sent twice",
            verdict(result.lost == 0 and result.duplicated == 0),
        ),
    ]


def render(result: Fairness) -> list[str]:
    """The section of docs/benchmarks.md."""
    return [
        "## Fair share under TIDAL's meter",
        "",
        f"`python -m bench --only fairness` (ADR 0028): a loopback TIDAL metered as the real one"
        f" (burst {BURST}, one request per pace slot, the slot scaled from 5 s to"
        f" {result.slot_s:g} s; `x-ratelimit-*` on every answer), the service paced by those"
        f" headers. User A adds {result.flood_albums} albums of 5-40 tracks at once;"
        f" {result.others} other users each add an album or a track at a random moment of the"
        " flood.",
        "",
        "```",
        *result.lines(),
        "```",
        "",
    ]


def _catalogue(
    tidal: MeteredTidal, flood: int, others: int, seed: int
) -> tuple[list[Added], list[Added]]:
    chooser = random.Random(seed)

    def album(user: str, base: int, prefix: str) -> Added:
        added = tidal.add_album(
            generated_album(str(base), chooser.randint(5, 40), isrc_prefix=prefix)
        )
        return Added(user, "album", added.id, [t.isrc for t in added.items if t.isrc])

    flood_items = [
        album(FLOOD_USER, 7_000_000_000 + number * 1_000, f"QZF{number:04d}")
        for number in range(flood)
    ]
    other_items = []
    for number in range(others):
        user = f"other-{number}"
        if chooser.random() < 0.5:
            other_items.append(album(user, 8_000_000_000 + number * 1_000, f"QZO{number:04d}"))
        else:
            track_id = str(9_000_000_000 + number)
            isrc = f"QZT{number:04d}00001"
            tidal.add_track(LoopbackTrack(id=track_id, title=f"Single {number}", isrc=isrc))
            other_items.append(Added(user, "track", track_id, [isrc]))
    return flood_items, other_items


async def _add(client: httpx.AsyncClient, added: Added) -> None:
    response = await client.post(
        "/graphql",
        json={"query": load.MUTATION[added.kind], "variables": {"id": added.catalog_id}},
        headers={"authorization": f"Bearer {token(added.user)}"},
    )
    result = response.json()["data"][f"add{added.kind.capitalize()}ToLibrary"]
    added.item_id = str(result["item"]["id"])


async def _committed_at(pool: asyncpg.Pool, items: list[Added]) -> None:
    rows = await pool.fetch(
        "SELECT library_item_id::text AS id, created_at FROM scheduling_jobs"
        " WHERE library_item_id = ANY($1::uuid[])",
        [item.item_id for item in items],
    )
    created = {row["id"]: row["created_at"].timestamp() for row in rows}
    for item in items:
        item.committed_at = created[item.item_id]


async def _measure(rig: Rig, tidal: MeteredTidal, service_url: str, seed: int) -> Fairness:
    config = rig.config
    flood, others = _catalogue(tidal, config.fairness_flood, config.fairness_others, seed)
    every = flood + others
    expected = {f"track-ingestion-requested:{isrc}" for item in every for isrc in item.isrcs}
    pages = sum(math.ceil(len(item.isrcs) / 20) for item in flood)
    # When the others add: spread over most of the flood's expected length, at random.
    expected_seconds = pages * tidal.slot
    chooser = random.Random(seed + 1)
    moments = sorted(chooser.uniform(1.0, 0.8 * expected_seconds) for _ in others)
    load_before = harness.machine()["load"]
    pool = await asyncpg.create_pool(rig.database_url, min_size=1, max_size=2)
    inngest = rig.inngest
    try:
        async with httpx.AsyncClient(base_url=service_url, timeout=30) as client:
            started = time.monotonic()
            for item in flood:
                await _add(client, item)

            async def add_later(item: Added, at: float) -> None:
                await asyncio.sleep(max(0.0, started + at - time.monotonic()))
                await _add(client, item)

            await asyncio.gather(*(add_later(i, at) for i, at in zip(others, moments, strict=True)))
            deadline = time.monotonic() + expected_seconds * 3 + 60
            while not expected.issubset(inngest.accepted_at):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # anything sent twice would arrive by now
        await _committed_at(pool, every)
    finally:
        await pool.close()

    def first_event(item: Added) -> float:
        times = [inngest.accepted_at.get(f"track-ingestion-requested:{i}") for i in item.isrcs]
        arrived = [t for t in times if t is not None]
        return min(arrived) - item.committed_at if arrived else math.inf

    def last_event(item: Added) -> float:
        times = [inngest.accepted_at.get(f"track-ingestion-requested:{i}") for i in item.isrcs]
        return max((t for t in times if t is not None), default=math.inf)

    flood_ids = {item.catalog_id for item in flood}
    admitted = list(tidal.admitted)
    flood_requests = sum(1 for _, route in admitted if _album_of(route) in flood_ids)
    window = admitted[-1][0] - admitted[0][0] if admitted else 0.0
    first_add = min(item.committed_at for item in flood)
    received = [event.id for event in inngest.events]
    return Fairness(
        slot_s=tidal.slot,
        flood_albums=len(flood),
        flood_tracks=sum(len(item.isrcs) for item in flood),
        others=len(others),
        first_event_slots=[first_event(item) / tidal.slot for item in others],
        flood_seconds=max(last_event(item) for item in flood) - first_add,
        flood_requests=flood_requests,
        requests=len(admitted),
        allowed=BURST + window / tidal.slot,
        refused_429=tidal.refused,
        lost=len(expected - set(received)),
        duplicated=len(received) - len(set(received)),
        load=tuple(load_before),  # type: ignore[arg-type]
        others_kinds={
            kind: sum(1 for item in others if item.kind == kind) for kind in ("album", "track")
        },
    )


def _album_of(route: str) -> str | None:
    parts = route.split("/")
    return parts[3] if len(parts) > 3 and parts[2] == "albums" else None


def run(rig: Rig, *, seed: int = 13) -> Fairness:
    """The section on a service of its own, paced by the metered loopback TIDAL."""
    config = rig.config
    with MeteredTidal(config.fairness_slot) as tidal:
        tidal.switches.latency = config.fairness_latency
        env: dict[str, Any] = {
            **rig.common,
            "TIDAL_API_BASE_URL": tidal.base_url,
            "TIDAL_AUTH_URL": tidal.auth_url,
            "TIDAL_CLIENT_ID": tidal.client_id,
            "TIDAL_CLIENT_SECRET": tidal.client_secret,
            # As an operator sets it for the real meter; TIDAL's headers then confirm it.
            "TIDAL_REQUESTS_PER_SECOND": f"{1 / config.fairness_slot:g}",
            "TIDAL_BURST": str(BURST),
            # What is measured is the meter's share, not the index: the light embedder keeps
            # the service's start short (ADR 0011).
            "EMBEDDER": "hashing",
        }
        with harness.service(env, rig.data_dir / "fairness") as svc:
            return asyncio.run(_measure(rig, tidal, svc.url, seed))


def run_alone(rig: Rig) -> None:
    for line in run(rig).lines():
        print(line, file=sys.stderr)

"""The Inngest endpoint under attack, on the real server over HTTP (uvicorn, `live_server`).

In cloud mode only requests signed with the signing key (or the fallback key) within the last
five minutes reach the SDK; a sync registers INNGEST_SERVE_ORIGIN, never the URL a forged `Host`
header names, and is refused while no serve origin is configured. The loopback Inngest API
records every registration (`POST /fn/register`) the service makes. Dev mode stays unsigned."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from inngest._internal import net
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.inngest_endpoint import SignedRequestsOnly
from tests.e2e.test_inngest_worker import (
    DEV_MODE,
    FN_ID,
    PRODUCTION_MODE,
    SAMPLE_TRACK,
    SIGNING_KEY,
    InngestExecutor,
    event_of,
    execution_body,
    ledger_rows,
    record_dispatched,
    requested,
)
from tests.support.loopback_inngest import LoopbackInngest

SERVE_ORIGIN = "https://libingest.example.com"
REGISTERED_URL = f"{SERVE_ORIGIN}/api/inngest"
FORGED_HOST = "attacker.example"
FALLBACK_KEY = "signkey-test-" + "00112233445566778899aabbccddeeff" * 2
OTHER_KEY = "signkey-test-" + "fedcba9876543210" * 4
TEN_MINUTES_S = 600

CLOUD = "cloud"
CLOUD_WITHOUT_SERVE_ORIGIN = "cloud-without-serve-origin"
CLOUD_WITH_FALLBACK_KEY = "cloud-with-fallback-key"
DEV = "dev"


def in_mode(mode: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings_overrides", [mode], indirect=True)


@pytest.fixture
def inngest_api() -> Iterator[LoopbackInngest]:
    with LoopbackInngest() as api:
        yield api


@pytest.fixture
def settings_overrides(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, inngest_api: LoopbackInngest
) -> dict[str, Any]:
    """Cloud mode against the loopback Inngest API, unless a test names another mode."""
    for name in [name for name in os.environ if name.startswith("INNGEST_")]:
        monkeypatch.delenv(name)
    mode = getattr(request, "param", CLOUD)
    api = inngest_api.url.rstrip("/")
    if mode == DEV:
        return DEV_MODE | {"inngest_dev": api, "inngest_serve_origin": SERVE_ORIGIN}
    if mode == CLOUD_WITH_FALLBACK_KEY:
        # The SDK reads the fallback key from the environment only.
        monkeypatch.setenv("INNGEST_SIGNING_KEY_FALLBACK", FALLBACK_KEY)
    origin = None if mode == CLOUD_WITHOUT_SERVE_ORIGIN else SERVE_ORIGIN
    return PRODUCTION_MODE | {"inngest_base_url": api, "inngest_serve_origin": origin}


@pytest.fixture
async def http(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


def signed(body: bytes, key: str = SIGNING_KEY, *, age_s: int = 0) -> dict[str, str]:
    """The signature header Inngest would have sent `age_s` seconds ago."""
    stamped = net.sign_request(body, key, round(time.time()) - age_s)
    if isinstance(stamped, Exception):
        raise stamped
    return {"x-inngest-signature": stamped}


async def sync(
    http: httpx.AsyncClient, headers: dict[str, str] | None = None, body: bytes = b""
) -> httpx.Response:
    return await http.put(
        "/api/inngest", content=body, headers={"host": FORGED_HOST, **(headers or {})}
    )


def bearer_of(signing_key: str) -> str:
    """How the SDK authenticates to Inngest's API: the SHA-256 of the key's hex bytes."""
    return "Bearer " + hashlib.sha256(bytes.fromhex(signing_key.rsplit("-", 1)[1])).hexdigest()


# -- syncs ---------------------------------------------------------------------------------------


async def test_an_unsigned_sync_with_a_forged_host_registers_nothing(
    http: httpx.AsyncClient, inngest_api: LoopbackInngest
) -> None:
    response = await sync(http)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    assert inngest_api.registrations == []


@pytest.mark.parametrize(
    "headers",
    [
        signed(b"", OTHER_KEY),
        {"x-inngest-signature": "t=1&s=" + "0" * 64},
        {"x-inngest-signature": "garbage"},
        {"x-inngest-signature": ""},
    ],
    ids=["another-key", "made-up", "garbage", "empty"],
)
async def test_a_badly_signed_sync_registers_nothing(
    http: httpx.AsyncClient, inngest_api: LoopbackInngest, headers: dict[str, str]
) -> None:
    response = await sync(http, headers)

    assert response.status_code == 401
    assert inngest_api.registrations == []


async def test_a_signed_sync_registers_the_configured_origin_and_not_the_host_header(
    http: httpx.AsyncClient, inngest_api: LoopbackInngest
) -> None:
    response = await sync(http, signed(b""))

    assert response.status_code == 200, response.text
    [registration] = inngest_api.registrations
    assert registration.url == REGISTERED_URL
    step_urls = [function["steps"]["step"]["runtime"]["url"] for function in registration.functions]
    assert step_urls and all(url.startswith(f"{REGISTERED_URL}?") for url in step_urls)
    assert registration.authorization == bearer_of(SIGNING_KEY)


async def test_a_sync_registers_the_flow_control_decided_in_adr_0019(
    http: httpx.AsyncClient, inngest_api: LoopbackInngest
) -> None:
    await sync(http, signed(b""))

    [registration] = inngest_api.registrations
    [ingest_track] = [f for f in registration.functions if f["id"] == FN_ID]
    assert ingest_track["concurrency"] == [{"limit": 10}, {"key": "event.data.isrc", "limit": 1}]
    assert ingest_track["steps"]["step"]["retries"] == {"attempts": 8}
    assert "throttle" not in ingest_track and "rateLimit" not in ingest_track


async def test_an_in_band_sync_answers_the_configured_origin_and_not_the_url_it_was_sent(
    http: httpx.AsyncClient, inngest_api: LoopbackInngest
) -> None:
    body = json.dumps({"url": f"https://{FORGED_HOST}/api/inngest"}).encode()

    response = await sync(http, signed(body) | {"x-inngest-sync-kind": "in_band"}, body)

    assert response.status_code == 200, response.text
    assert response.json()["url"] == REGISTERED_URL
    assert inngest_api.registrations == []  # in-band: the answer is the registration


async def test_a_signed_sync_replayed_after_five_minutes_registers_nothing(
    http: httpx.AsyncClient, inngest_api: LoopbackInngest
) -> None:
    response = await sync(http, signed(b"", age_s=TEN_MINUTES_S))

    assert response.status_code == 401
    assert inngest_api.registrations == []


@in_mode(CLOUD_WITHOUT_SERVE_ORIGIN)
async def test_without_a_serve_origin_even_a_signed_sync_is_refused(
    http: httpx.AsyncClient, inngest_api: LoopbackInngest
) -> None:
    response = await sync(http, signed(b""))

    assert response.status_code == 500
    assert "INNGEST_SERVE_ORIGIN" in response.json()["message"]
    assert inngest_api.registrations == []


@in_mode(CLOUD_WITHOUT_SERVE_ORIGIN)
async def test_without_a_serve_origin_an_unsigned_sync_is_still_unauthorized(
    http: httpx.AsyncClient, inngest_api: LoopbackInngest
) -> None:
    response = await sync(http)

    assert response.status_code == 401  # nothing about the configuration leaks unsigned
    assert inngest_api.registrations == []


@in_mode(CLOUD_WITH_FALLBACK_KEY)
async def test_a_sync_signed_with_the_fallback_key_registers(
    http: httpx.AsyncClient, inngest_api: LoopbackInngest
) -> None:
    response = await sync(http, signed(b"", FALLBACK_KEY))

    assert response.status_code == 200, response.text
    assert [registration.url for registration in inngest_api.registrations] == [REGISTERED_URL]


@in_mode(DEV)
async def test_in_dev_mode_an_unsigned_sync_still_registers_the_configured_origin(
    http: httpx.AsyncClient, inngest_api: LoopbackInngest
) -> None:
    response = await sync(http)

    assert response.status_code == 200, response.text
    assert [registration.url for registration in inngest_api.registrations] == [REGISTERED_URL]


# -- executions ----------------------------------------------------------------------------------


async def dispatched_execution(engine: AsyncEngine) -> tuple[str, bytes]:
    """A dispatched ledger row and the body of the executor's first request for it."""
    request = requested(*SAMPLE_TRACK[:2])
    await record_dispatched(engine, request)
    body = execution_body(event_of(request), run_id=f"run-{uuid.uuid4().hex}")
    return request.isrc.value, json.dumps(body).encode()


async def execute(http: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await http.post(
        "/api/inngest",
        params={"fnId": FN_ID, "stepId": "step"},
        content=body,
        headers={"content-type": "application/json", **headers},
    )


async def test_a_signed_execution_replayed_ten_minutes_later_is_refused_and_runs_nothing(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    isrc, body = await dispatched_execution(engine)

    replayed = await execute(http, body, signed(body, age_s=TEN_MINUTES_S))
    fresh = await execute(http, body, signed(body))

    assert replayed.status_code == 401
    assert replayed.json() == {"message": "Unauthorized"}
    assert fresh.status_code == 206  # the same request, signed now: its first step ran
    assert await ledger_rows(engine, isrc) == [("dispatched", None)]


async def test_a_signature_with_its_timestamp_moved_forward_is_refused(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    isrc, body = await dispatched_execution(engine)
    old = signed(body, age_s=TEN_MINUTES_S)["x-inngest-signature"]
    _, old_signature = old.split("&s=")
    moved = f"t={round(time.time())}&s={old_signature}"

    response = await execute(http, body, {"x-inngest-signature": moved})

    assert response.status_code == 401
    assert await ledger_rows(engine, isrc) == [("dispatched", None)]


@pytest.mark.parametrize(
    "header",
    [
        lambda body: signed(body, OTHER_KEY)["x-inngest-signature"],
        lambda body: signed(b'{"another": "body"}')["x-inngest-signature"],
        lambda body: signed(body, age_s=-TEN_MINUTES_S)["x-inngest-signature"],
        lambda body: "s=" + signed(body)["x-inngest-signature"].split("&s=")[1],
        # An old signature with a fresh `t` added: the SDK would check the first `t`.
        lambda body: signed(body, age_s=TEN_MINUTES_S)["x-inngest-signature"].replace(
            "&s=", f"&t={round(time.time())}&s="
        ),
    ],
    ids=["another-key", "another-body", "dated-in-the-future", "no-timestamp", "two-timestamps"],
)
async def test_a_wrongly_signed_execution_is_refused_and_runs_nothing(
    http: httpx.AsyncClient, engine: AsyncEngine, header: Any
) -> None:
    isrc, body = await dispatched_execution(engine)

    response = await execute(http, body, {"x-inngest-signature": header(body)})

    assert response.status_code == 401
    assert await ledger_rows(engine, isrc) == [("dispatched", None)]


async def test_an_execution_with_two_signature_headers_is_refused(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    isrc, body = await dispatched_execution(engine)
    twice = [
        ("content-type", "application/json"),
        *signed(body).items(),
        *signed(body, age_s=TEN_MINUTES_S).items(),
    ]

    response = await http.post(
        "/api/inngest", params={"fnId": FN_ID, "stepId": "step"}, content=body, headers=twice
    )

    assert response.status_code == 401
    assert await ledger_rows(engine, isrc) == [("dispatched", None)]


async def test_a_freshly_signed_run_indexes_the_track_over_http(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    request = requested(*SAMPLE_TRACK[:2])
    await record_dispatched(engine, request)

    run = await InngestExecutor(http, signing_key=SIGNING_KEY).run(FN_ID, event_of(request))

    assert run.response.status_code == 200, run.response.text
    assert run.executed == ["fetch", "embed", "upsert", "mark"]
    assert await ledger_rows(engine, request.isrc.value) == [("indexed", None)]


@in_mode(CLOUD_WITH_FALLBACK_KEY)
async def test_an_execution_signed_with_the_fallback_key_runs(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    request = requested(*SAMPLE_TRACK[:2])
    await record_dispatched(engine, request)

    run = await InngestExecutor(http, signing_key=FALLBACK_KEY).run(FN_ID, event_of(request))

    assert run.response.status_code == 200, run.response.text
    assert await ledger_rows(engine, request.isrc.value) == [("indexed", None)]


# -- introspection -------------------------------------------------------------------------------


async def test_introspection_answers_only_a_fresh_signature(http: httpx.AsyncClient) -> None:
    unsigned = await http.get("/api/inngest")
    stale = await http.get("/api/inngest", headers=signed(b"", age_s=TEN_MINUTES_S))
    fresh = await http.get("/api/inngest", headers=signed(b""))

    assert (unsigned.status_code, stale.status_code) == (401, 401)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["authentication_succeeded"] is True
    assert fresh.json()["serve_origin"] == SERVE_ORIGIN


async def test_other_methods_on_the_endpoint_are_not_allowed(http: httpx.AsyncClient) -> None:
    response = await http.delete("/api/inngest", headers=signed(b""))

    assert response.status_code == 405


# -- the guard alone (its own clock, no SDK behind it) -------------------------------------------

NOW = 1_800_000_000


def guard(*keys: str) -> SignedRequestsOnly:
    async def never_reached(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the guard only judges here")

    return SignedRequestsOnly(never_reached, signing_keys=keys, syncs=True, clock=lambda: NOW)


def header_at(body: bytes, t: int, key: str = SIGNING_KEY) -> list[bytes]:
    stamped = net.sign_request(body, key, t)
    assert isinstance(stamped, str)
    return [stamped.encode()]


@pytest.mark.parametrize(
    ("t", "refusal"),
    [
        (NOW - 300, None),
        (NOW - 301, "signature older than five minutes"),
        (NOW + 300, None),
        (NOW + 301, "signature dated in the future"),
    ],
    ids=["five-minutes-old", "a-second-more", "five-minutes-ahead", "a-second-further"],
)
def test_the_guard_admits_a_signature_up_to_five_minutes_either_side_of_its_clock(
    t: int, refusal: str | None
) -> None:
    body = b'{"event": {"data": {"isrc": "XXSMP2400001"}}, "steps": {}}'

    assert guard(SIGNING_KEY).refusal(header_at(body, t), body) == refusal


def test_the_guard_checks_the_signature_itself_with_either_key() -> None:
    body = b'{"b": 1.5, "a": [1, 2]}'
    reordered = b'{"a": [1, 2], "b": 1.5}'  # the same JSON: Inngest signs its canonical form
    checking = guard(SIGNING_KEY, FALLBACK_KEY)

    assert checking.refusal(header_at(body, NOW), reordered) is None
    canonical = b'{"a":[1,2],"b":1.5}'  # checked as sent, without canonicalising again
    assert checking.refusal(header_at(canonical, NOW), canonical) is None
    assert checking.refusal(header_at(body, NOW, FALLBACK_KEY), body) is None
    assert checking.refusal(header_at(body, NOW, OTHER_KEY), body) == "bad signature"
    assert checking.refusal(header_at(body, NOW), b'{"a": [1, 2], "b": 2}') == "bad signature"
    assert checking.refusal(header_at(body, NOW), b"not json") == "body is not JSON"
    assert checking.refusal([], body) == "unsigned"

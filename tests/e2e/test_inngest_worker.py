"""The Inngest function `ingest-track` through the SDK's own execution path: `/api/inngest` on the
real app (ASGI, lifespan, PostgreSQL, Qdrant local mode, the offline sample catalogue) driven with
the requests the Inngest executor sends (reference/inngest.md §3.2), one step per request, each
step's output fed back in `steps` under its hashed id until the function answers for good."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from inngest._internal import net, server_lib
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.inngest.queue import APP_ID, event_for
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from application.use_cases.search_tracks import SearchTracks, SearchTracksCommand
from domain.ingestion import IngestionRequest
from domain.values import CatalogId, Isrc, LibraryItemId
from entrypoints.app import resolved
from entrypoints.inngest_worker import FUNCTION_ID

FN_ID = f"{APP_ID}-{FUNCTION_ID}"
# The SDK names the on_failure function "<fn id>-failure" (inngest/_internal/function.py).
ON_FAILURE_FN_ID = f"{FN_ID}-failure"
SIGNING_KEY = "signkey-test-" + "0123456789abcdef" * 4

# Sample album 396698918 has 46 tracks: track ids are the album id plus the position (1-based).
SAMPLE_ALBUM = "396698918"
SAMPLE_TRACK = ("396698919", "XXSMP2400001", "Sample Track 1")
GONE_TRACK = ("396698999", "XXSMP2499999")

# Environment the SDK or Settings would read: the tests say everything explicitly.
_AMBIENT = (
    "INNGEST_DEV",
    "INNGEST_EVENT_KEY",
    "INNGEST_SIGNING_KEY",
    "INNGEST_SIGNING_KEY_FALLBACK",
    "INNGEST_BASE_URL",
    "INNGEST_API_BASE_URL",
    "INNGEST_EVENT_API_BASE_URL",
    "INNGEST_ENV",
    "INNGEST_STREAMING",
    "INNGEST_SERVE_ORIGIN",
    "INNGEST_SERVE_PATH",
)
_OFFLINE: dict[str, Any] = {
    "tidal_client_id": None,
    "tidal_client_secret": None,
    "qdrant_url": None,
    "relay_enabled": False,
}
DEV_MODE: dict[str, Any] = _OFFLINE | {"inngest_dev": "1", "inngest_event_key": None}
PRODUCTION_MODE: dict[str, Any] = _OFFLINE | {
    "inngest_dev": None,
    "inngest_event_key": "test-key",
    "inngest_signing_key": SIGNING_KEY,
}
in_production_mode = pytest.mark.parametrize("settings_overrides", [PRODUCTION_MODE], indirect=True)


@pytest.fixture
def settings_overrides(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Dev mode unless a test parametrizes it indirectly."""
    for name in _AMBIENT:
        monkeypatch.delenv(name, raising=False)
    return dict(getattr(request, "param", DEV_MODE))


@dataclass
class Run:
    """How one run ended: the last response and the steps executed on the way, in order."""

    response: httpx.Response
    executed: list[str] = field(default_factory=list)

    @property
    def body(self) -> Any:
        return self.response.json()


class InngestExecutor:
    """Plays the Inngest executor against the serve endpoint: POST, and while the SDK answers
    206 with a step op, memoise the step's output under its hashed id and call again. A signing
    key makes every request signed, as Inngest Cloud signs them."""

    def __init__(self, client: httpx.AsyncClient, signing_key: str | None = None) -> None:
        self._client = client
        self._signing_key = signing_key

    async def post(
        self,
        fn_id: str,
        body: Mapping[str, Any],
        *,
        step_id: str = "step",
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        content = json.dumps(body).encode()
        all_headers = {"content-type": "application/json", **(headers or {})}
        if self._signing_key is not None:
            all_headers["x-inngest-signature"] = signature(content, self._signing_key)
        return await self._client.post(
            "/api/inngest",
            params={"fnId": fn_id, "stepId": step_id},
            content=content,
            headers=all_headers,
        )

    async def run(self, fn_id: str, event: Mapping[str, Any], *, max_requests: int = 10) -> Run:
        run_id = f"run-{uuid.uuid4().hex}"
        steps: dict[str, Any] = {}
        stack: list[str] = []
        executed: list[str] = []
        target = "step"
        for _ in range(max_requests):
            body = execution_body(event, run_id=run_id, steps=steps, stack=stack)
            response = await self.post(fn_id, body, step_id=target)
            if response.status_code != 206:
                return Run(response, executed)
            target = "step"
            for op in response.json():
                if op["op"] == "StepRun":
                    steps[op["id"]] = {"data": op.get("data")}
                    stack.append(op["id"])
                    executed.append(op["displayName"])
                elif op["op"] == "StepPlanned":
                    target = op["id"]  # the executor calls back to run exactly this step
                else:
                    raise AssertionError(f"an op this executor does not play: {op}")
        raise AssertionError(f"the run did not finish within {max_requests} requests")


def execution_body(
    event: Mapping[str, Any],
    *,
    run_id: str,
    steps: Mapping[str, Any] | None = None,
    stack: list[str] | None = None,
    attempt: int = 0,
) -> dict[str, Any]:
    return {
        "ctx": {
            "attempt": attempt,
            "disable_immediate_execution": False,
            "run_id": run_id,
            "stack": {"stack": list(stack or [])},
        },
        "event": dict(event),
        "events": [dict(event)],
        "steps": dict(steps or {}),
        "use_api": False,
    }


def signature(body: bytes, signing_key: str) -> str:
    """`t=<unix s>&s=<HMAC-SHA256 over the JCS-canonical body + t, keyed by the signing key
    without its signkey-<env>- prefix>`; the SDK's own helper, so JCS number formatting (the
    embed step's floats) matches the verifier byte for byte."""
    signed = net.sign_request(body, signing_key)
    if isinstance(signed, Exception):
        raise signed
    return signed


def requested(track_id: str, isrc: str) -> IngestionRequest:
    return IngestionRequest(
        isrc=Isrc.parse(isrc),
        track_id=CatalogId.parse(track_id),
        album_id=CatalogId.parse(SAMPLE_ALBUM),
        library_item_id=LibraryItemId(uuid.uuid4()),
    )


def event_of(request: IngestionRequest) -> dict[str, Any]:
    """The event as Inngest delivers it: what the queue sends, stamped with a time."""
    return event_for(request).model_dump(mode="json") | {"ts": round(time.time() * 1000)}


async def record_dispatched(engine: AsyncEngine, request: IngestionRequest) -> None:
    now = datetime.now(UTC)
    async with PostgresUnitOfWorkFactory(engine)() as uow:
        await uow.ledger.record_requests([request], now=now)
        await uow.ledger.mark_dispatched([request.isrc], now=now)
        await uow.commit()


async def ledger_rows(engine: AsyncEngine, isrc: str) -> list[tuple[str, str | None]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT state, last_error FROM isrc_ledger WHERE isrc = :isrc"), {"isrc": isrc}
        )
        return [(state, last_error) for state, last_error in rows]


async def points_for(app: FastAPI, isrc: str, title: str) -> int:
    """How many index points carry `isrc` among the nearest hits for its title."""
    search: SearchTracks = await resolved(app.state.container.search_tracks())
    hits = await search(SearchTracksCommand(query=title, limit=100))
    return sum(1 for hit in hits if hit.isrc.value == isrc)


async def is_indexed(app: FastAPI, isrc: str) -> bool:
    index = await resolved(app.state.container.track_index())
    return Isrc(isrc) in await index.indexed([Isrc(isrc)])


# -- dev mode ------------------------------------------------------------------------------------


async def test_an_event_for_a_sample_track_runs_every_step_and_indexes_it(
    app: FastAPI, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    track_id, isrc, title = SAMPLE_TRACK
    request = requested(track_id, isrc)
    await record_dispatched(engine, request)

    run = await InngestExecutor(client).run(FN_ID, event_of(request))

    assert run.response.status_code == 200, run.response.text
    assert run.body == {"isrc": isrc, "state": "indexed"}
    assert run.executed == ["fetch", "embed", "upsert", "mark"]
    assert await is_indexed(app, isrc)
    assert await points_for(app, isrc, title) == 1
    assert await ledger_rows(engine, isrc) == [("indexed", None)]


async def test_the_same_event_run_twice_leaves_one_point_and_one_indexed_row(
    app: FastAPI, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    track_id, isrc, title = SAMPLE_TRACK
    request = requested(track_id, isrc)
    await record_dispatched(engine, request)
    executor = InngestExecutor(client)

    first = await executor.run(FN_ID, event_of(request))
    second = await executor.run(FN_ID, event_of(request))

    assert (first.response.status_code, second.response.status_code) == (200, 200)
    assert second.executed == ["fetch", "embed", "upsert", "mark"]
    assert await points_for(app, isrc, title) == 1
    assert await ledger_rows(engine, isrc) == [("indexed", None)]


async def test_a_track_gone_from_the_catalogue_is_marked_failed_and_not_retried(
    app: FastAPI, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    track_id, isrc = GONE_TRACK
    request = requested(track_id, isrc)
    await record_dispatched(engine, request)

    run = await InngestExecutor(client).run(FN_ID, event_of(request))

    assert run.response.status_code == 500
    assert run.response.headers.get("x-inngest-no-retry") == "true"
    assert run.body["name"] == "NonRetriableError"
    assert run.executed == []
    [(state, reason)] = await ledger_rows(engine, isrc)
    assert state == "failed"
    assert reason and track_id in reason
    assert not await is_indexed(app, isrc)


@pytest.mark.parametrize(
    "data",
    [
        {"isrc": SAMPLE_TRACK[1]},
        {"isrc": "not-an-isrc", "trackId": SAMPLE_TRACK[0]},
        {"isrc": SAMPLE_TRACK[1], "trackId": "abc"},
    ],
    ids=["no-track-id", "malformed-isrc", "malformed-track-id"],
)
async def test_an_event_that_can_never_succeed_is_refused_without_retries(
    client: httpx.AsyncClient, data: dict[str, Any]
) -> None:
    event = event_of(requested(*SAMPLE_TRACK[:2])) | {"data": data}

    run = await InngestExecutor(client).run(FN_ID, event)

    assert run.response.status_code == 500
    assert run.response.headers.get("x-inngest-no-retry") == "true"
    assert run.body["name"] == "NonRetriableError"
    assert run.executed == []


async def test_the_failure_handler_marks_the_ledger_row_failed_with_the_error(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    track_id, isrc, _ = SAMPLE_TRACK
    request = requested(track_id, isrc)
    await record_dispatched(engine, request)
    failed = {
        "name": "inngest/function.failed",
        "id": f"failed-{uuid.uuid4().hex}",
        "ts": round(time.time() * 1000),
        "data": {
            "function_id": FN_ID,
            "run_id": f"run-{uuid.uuid4().hex}",
            "error": {"name": "IndexUnavailable", "message": "qdrant timed out"},
            "event": event_of(request),
        },
    }

    run = await InngestExecutor(client).run(ON_FAILURE_FN_ID, failed)

    assert run.response.status_code == 200, run.response.text
    assert run.executed == ["mark-failed"]
    [(state, reason)] = await ledger_rows(engine, isrc)
    assert state == "failed"
    assert reason and "qdrant timed out" in reason


async def test_the_failure_handler_never_downgrades_an_indexed_track(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    track_id, isrc, _ = SAMPLE_TRACK
    request = requested(track_id, isrc)
    await record_dispatched(engine, request)
    executor = InngestExecutor(client)
    await executor.run(FN_ID, event_of(request))
    failed = {
        "name": "inngest/function.failed",
        "data": {"error": {"message": "a late failure"}, "event": event_of(request)},
    }

    run = await executor.run(ON_FAILURE_FN_ID, failed)

    assert run.response.status_code == 200, run.response.text
    assert await ledger_rows(engine, isrc) == [("indexed", None)]


# -- production mode: every request signed ------------------------------------------------------


@in_production_mode
async def test_in_production_a_request_without_a_signature_is_rejected(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    request = requested(*SAMPLE_TRACK[:2])
    await record_dispatched(engine, request)
    body = execution_body(event_of(request), run_id="run-unsigned")

    response = await InngestExecutor(client).post(FN_ID, body)

    assert response.status_code == 401
    assert await ledger_rows(engine, request.isrc.value) == [("dispatched", None)]


@in_production_mode
async def test_in_production_a_wrongly_signed_request_is_rejected(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    request = requested(*SAMPLE_TRACK[:2])
    await record_dispatched(engine, request)
    body = execution_body(event_of(request), run_id="run-forged")
    other_key = "signkey-test-" + "fedcba9876543210" * 4
    forged = InngestExecutor(client, signing_key=other_key)
    # The right key, but over another body.
    tampered = {"x-inngest-signature": signature(b'{"other": "body"}', SIGNING_KEY)}

    with_other_key = await forged.post(FN_ID, body)
    over_other_body = await InngestExecutor(client).post(FN_ID, body, headers=tampered)

    assert with_other_key.status_code == 401
    assert over_other_body.status_code == 401
    assert await ledger_rows(engine, request.isrc.value) == [("dispatched", None)]


@in_production_mode
async def test_in_production_correctly_signed_requests_run_the_function_and_answer_signed(
    app: FastAPI, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    track_id, isrc, title = SAMPLE_TRACK
    request = requested(track_id, isrc)
    await record_dispatched(engine, request)

    run = await InngestExecutor(client, signing_key=SIGNING_KEY).run(FN_ID, event_of(request))

    assert run.response.status_code == 200, run.response.text
    assert run.executed == ["fetch", "embed", "upsert", "mark"]
    assert await points_for(app, isrc, title) == 1
    assert await ledger_rows(engine, isrc) == [("indexed", None)]
    verified = net.validate_response_sig(
        body=run.response.content,
        headers=dict(run.response.headers),
        mode=server_lib.ServerKind.CLOUD,
        signing_key=SIGNING_KEY,
    )
    assert verified == SIGNING_KEY

"""/metrics as Prometheus scrapes it: GraphQL operations by operation and outcome, the backlog
read from PostgreSQL, the worker's tracks and steps, and the process's own metrics (ADR 0032)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.metrics.prometheus import PrometheusMetrics
from adapters.tidal.pace import MeteredPace, TokenBucketPace
from tests.e2e.conftest import GraphQLClient

ADD = """mutation ($id: ID!) { addAlbumToLibrary(albumId: $id) {
  ... on AddToLibrarySuccess { item { id } } ... on UserError { message } } }"""


async def _scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(scraped: dict[Any, float], name: str, **labels: str) -> float | None:
    return scraped.get((name, frozenset(labels.items())))


@pytest.mark.parametrize("settings_overrides", [{"relay_enabled": False}], indirect=True)
async def test_graphql_operations_and_the_backlog_are_measured(
    client: httpx.AsyncClient, as_user: Callable[[str], GraphQLClient]
) -> None:
    alice = as_user("alice")
    await alice(ADD, {"id": "900000100"})
    # A page too large: a BAD_USER_INPUT error on the field, in an operation that ran.
    await alice('query Mine { library(first: 500) { totalCount } libraryItem(id: "x") { id } }')
    await alice("{ noSuchField }")

    scraped = await _scrape(client)

    ok = {"operation": "addAlbumToLibrary", "type": "mutation", "outcome": "ok"}
    assert _value(scraped, "libingest_graphql_operations_total", **ok) == 1
    failed = {"operation": "library+libraryItem", "type": "query", "outcome": "error"}
    assert _value(scraped, "libingest_graphql_operations_total", **failed) == 1
    invalid = {"operation": "invalid", "type": "unknown", "outcome": "error"}
    assert _value(scraped, "libingest_graphql_operations_total", **invalid) == 1
    latency = {"operation": "addAlbumToLibrary", "type": "mutation"}
    assert _value(scraped, "libingest_graphql_operation_seconds_count", **latency) == 1
    # No relay: the album's job waits, added under a minute ago.
    assert _value(scraped, "libingest_scheduling_jobs", status="pending") == 1
    assert _value(scraped, "libingest_scheduling_jobs_pending", age="0-1m") == 1
    assert _value(scraped, "libingest_scheduling_jobs_pending", age="1h+") == 0
    assert _value(scraped, "libingest_ledger_rows", state="indexed") == 0
    assert (_value(scraped, "process_cpu_seconds_total") or 0) > 0
    assert any(name == "python_info" for name, _ in scraped)


@pytest.mark.parametrize("settings_overrides", [{"relay_enabled": False}], indirect=True)
async def test_pending_jobs_are_counted_by_their_age(
    client: httpx.AsyncClient, as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    alice = as_user("alice")
    for album in ("900000100", "900000300", "900000400"):
        await alice(ADD, {"id": album})
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE scheduling_jobs SET created_at = now() - CAST(:age AS interval)"
                " WHERE library_item_id IN (SELECT id FROM library_items WHERE catalog_id = :id)"
            ),
            [
                {"age": timedelta(minutes=5), "id": "900000300"},
                {"age": timedelta(hours=2), "id": "900000400"},
            ],
        )

    scraped = await _scrape(client)

    ages = {
        age: _value(scraped, "libingest_scheduling_jobs_pending", age=age)
        for age in ("0-1m", "1m-10m", "10m-1h", "1h+")
    }
    assert ages == {"0-1m": 1, "1m-10m": 1, "10m-1h": 0, "1h+": 1}


async def test_the_worker_counts_the_tracks_it_indexes_and_times_its_steps(
    client: httpx.AsyncClient, as_user: Callable[[str], GraphQLClient]
) -> None:
    alice = as_user("alice")
    added: Any = await alice(ADD, {"id": "900000500"})  # a single: one track
    item_id = added["data"]["addAlbumToLibrary"]["item"]["id"]
    query = "query ($id: ID!) { libraryItem(id: $id) { ingestion { state } } }"

    state = None
    for _ in range(2400):  # up to 2 minutes on a busy machine
        answer: Any = await alice(query, {"id": item_id})
        state = answer["data"]["libraryItem"]["ingestion"]["state"]
        if state == "INDEXED":
            break
        await asyncio.sleep(0.05)
    assert state == "INDEXED"
    scraped = await _scrape(client)

    assert _value(scraped, "libingest_worker_tracks_indexed_total") == 1
    assert _value(scraped, "libingest_worker_tracks_embedded_total") == 1
    assert _value(scraped, "libingest_worker_tracks_failed_total") == 0
    for step in ("fetch", "embed", "upsert", "mark"):
        assert _value(scraped, "libingest_worker_step_seconds_count", step=step) == 1, step
    assert _value(scraped, "libingest_ledger_rows", state="indexed") == 1


async def test_an_admission_that_waited_for_the_pace_counts_as_a_wait() -> None:
    metrics = PrometheusMetrics()
    # One slot, refilled after 50 ms: the second admission waits for it.
    pace = MeteredPace(TokenBucketPace(requests_per_second=20, burst=1), metrics)

    await pace.acquire()
    await pace.acquire()

    assert metrics.registry.get_sample_value("libingest_tidal_pace_slots_total") == 2
    assert metrics.registry.get_sample_value("libingest_tidal_pace_waits_total") == 1

"""Retrying what failed (issue 13, ADR 0028), end to end: the real app over ASGI with its relay,
PostgreSQL, a loopback TIDAL and a loopback Inngest. A FAILED item is retried by the user
(`retryIngestion`, or adding it again) and by the operator (`libingest reschedule`); the
mutation answers bad input and other users' items as its union says, changing nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.use_cases.reschedule import RescheduleCommand
from entrypoints.container import Container
from tests.e2e import test_scheduling as scheduling
from tests.e2e.conftest import GraphQLClient
from tests.e2e.test_scheduling import (
    ADD_ALBUM,
    add_album,
    assert_sent_once,
    events_reach,
    isrcs_of,
    job_row,
    progress,
    resolved,
    settled,
)
from tests.support.loopback_inngest import LoopbackInngest
from tests.support.loopback_tidal import LoopbackTidal, generated_album

# The scheduling tests' loopback TIDAL and Inngest, and the settings that point the app at them.
tidal = scheduling.tidal
inngest = scheduling.inngest
settings_overrides = scheduling.settings_overrides

RETRY = """
mutation Retry($id: ID!) { retryIngestion(itemId: $id) {
  __typename
  ... on RetryIngestionSuccess { item { id ingestion { state lastError } } }
  ... on UserError { message }
  ... on LibraryItemNotFound { itemId }
  ... on NothingToRetry { itemId } } }"""


async def _a_day_passes_for_what_tidal_did_not_know(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE catalog_unknown SET noted_at = noted_at - interval '1 day'")
        )


async def _failed_album(user: GraphQLClient, album_id: str) -> str:
    item_id = await add_album(user, album_id)
    failed = await settled(user, item_id)
    assert failed["state"] == "FAILED"
    assert failed["lastError"] == f"album {album_id} is not in the catalogue"
    return item_id


async def test_a_failed_album_retried_once_the_catalogue_has_it_is_scheduled(
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
    engine: AsyncEngine,
) -> None:
    alice = as_user("alice")
    item_id = await _failed_album(alice, "5550000")
    album = tidal.add_album(generated_album("5550000", 3, isrc_prefix="QZRTY26"))
    await _a_day_passes_for_what_tidal_did_not_know(engine)

    answer = await alice(RETRY, {"id": item_id})

    retried = answer["data"]["retryIngestion"]
    assert retried["__typename"] == "RetryIngestionSuccess"
    assert retried["item"]["id"] == item_id
    assert retried["item"]["ingestion"]["state"] in ("PENDING", "SCHEDULED")
    done = await settled(alice, item_id)
    assert (done["state"], done["tracksTotal"], done["lastError"]) == ("SCHEDULED", 3, None)
    await events_reach(inngest, 3)
    assert_sent_once(inngest, isrcs_of(album))


async def test_adding_a_failed_album_again_retries_it(
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
    engine: AsyncEngine,
) -> None:
    alice = as_user("alice")
    item_id = await _failed_album(alice, "5560000")
    tidal.add_album(generated_album("5560000", 2, isrc_prefix="QZRTZ26"))
    await _a_day_passes_for_what_tidal_did_not_know(engine)

    again = await alice(ADD_ALBUM, {"id": "5560000"})

    added = again["data"]["addAlbumToLibrary"]
    assert (added["item"]["id"], added["alreadyInLibrary"]) == (item_id, True)
    done = await settled(alice, item_id)
    assert (done["state"], done["tracksTotal"]) == ("SCHEDULED", 2)
    await events_reach(inngest, 2)


async def test_an_id_tidal_does_not_know_costs_no_call_when_added_again_or_retried(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal
) -> None:
    alice, bob = as_user("alice"), as_user("bob")
    item_id = await _failed_album(alice, "5620000")
    calls = tidal.counts.api

    await alice(ADD_ALBUM, {"id": "5620000"})  # adding it again retries it
    again = await settled(alice, item_id)
    retried = await alice(RETRY, {"id": item_id})
    after_retry = await settled(alice, item_id)
    bobs = await _failed_album(bob, "5620000")

    assert retried["data"]["retryIngestion"]["__typename"] == "RetryIngestionSuccess"
    for failed in (again, after_retry, await progress(bob, bobs)):
        assert (failed["state"], failed["lastError"]) == (
            "FAILED",
            "album 5620000 is not in the catalogue",
        )
    assert tidal.counts.api == calls


async def test_reschedule_puts_failed_items_back_and_they_fail_again_with_the_reason(
    as_user: Callable[[str], GraphQLClient], app: Any, engine: AsyncEngine
) -> None:
    alice = as_user("alice")
    item_id = await _failed_album(alice, "5570000")
    container: Container = app.state.container
    reschedule = await resolved(container.reschedule())

    done = await reschedule(RescheduleCommand())

    assert (done.requests, done.jobs) == (0, 1)
    again = await settled(alice, item_id)
    assert again["lastError"] == "album 5570000 is not in the catalogue"
    assert await job_row(engine, item_id) == ("failed", 1)  # attempts counted afresh


async def test_retrying_what_did_not_fail_answers_nothing_to_retry_and_changes_nothing(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal, engine: AsyncEngine
) -> None:
    alice = as_user("alice")
    tidal.add_album(generated_album("5580000", 2, isrc_prefix="QZRTN26"))
    item_id = await add_album(alice, "5580000")
    before = await settled(alice, item_id)

    answer = await alice(RETRY, {"id": item_id})

    assert answer["data"]["retryIngestion"] == {
        "__typename": "NothingToRetry",
        "message": f"library item {item_id!r} has nothing that failed to retry",
        "itemId": item_id,
    }
    assert await progress(alice, item_id) == before
    assert (await job_row(engine, item_id))[0] == "done"


async def test_another_users_item_and_a_malformed_id_read_as_not_found_and_change_nothing(
    as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    item_id = await _failed_album(as_user("alice"), "5590000")
    mallory = as_user("mallory")

    others = await mallory(RETRY, {"id": item_id})
    malformed = await mallory(RETRY, {"id": "not-an-id"})

    assert others["data"]["retryIngestion"] == {
        "__typename": "LibraryItemNotFound",
        "message": f"no library item with id {item_id!r}",
        "itemId": item_id,
    }
    assert malformed["data"]["retryIngestion"]["__typename"] == "LibraryItemNotFound"
    assert await job_row(engine, item_id) == ("failed", 1)


async def test_retrying_without_a_token_is_refused(
    client: Any, as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    item_id = await _failed_album(as_user("alice"), "5600000")

    answer = await GraphQLClient(client, None)(RETRY, {"id": item_id})

    assert answer["data"] is None
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    async with engine.connect() as connection:
        status = await connection.scalar(
            text("SELECT status FROM scheduling_jobs WHERE library_item_id = CAST(:id AS uuid)"),
            {"id": item_id},
        )
    assert status == "failed"

"""The status page (/status, ADR 0031) in a real headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) against the real server with the whole local loop: a
signed-in user watches an album's progress bar fill over the subscription, an operator sees the
backlog, a refused token says so. Plus what needs no browser: the page and its assets come from
the service alone, and the backlog answers only operators.

The browser is tests/support/browser.py's (the `browser` fixture of tests/e2e/conftest.py).

LIBINGEST_STATUS_SCREENSHOT=docs/status-page.png writes the page's screenshot there."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LOCAL_LOOP, GraphQLClient
from tests.support.browser import wait

ALBUM_ID = "900000100"  # the sample double album: 124 tracks
ALBUM_TRACKS = 124
NO_ISRC_ALBUM_ID = "900000400"  # tracks without ISRC: PARTIAL
TRACK_ID = "900000501"
ADD = """
mutation Add($album: ID!) { addAlbumToLibrary(albumId: $album) {
  ... on AddToLibrarySuccess { item { id } } } }"""
ADD_TRACK = """
mutation Add($track: ID!) { addTrackToLibrary(trackId: $track) {
  ... on AddToLibrarySuccess { item { id } } } }"""


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return LOCAL_LOOP | dict(getattr(request, "param", {}))


def _connection_state(driver: Any) -> str:
    return str(driver.find_element("id", "connection").get_attribute("data-state"))


# Read in one script: the page re-renders its rows on every update, so an element found in
# one call may be gone by the next.
_ROW = """
const row = document.querySelector(`tr[data-item-id="${arguments[0]}"]`);
if (row === null) return null;
const bar = row.querySelector("progress");
return {state: row.dataset.state, indexed: row.dataset.indexed, total: row.dataset.total,
        updates: row.dataset.updates, bar: String(bar.value), barMax: String(bar.max),
        text: row.innerText};
"""
_FIGURE = """
const figure = document.querySelector(`#${arguments[0]} dd[data-name="${arguments[1]}"]`);
return figure === null ? null : figure.textContent;
"""


def _row(driver: Any, item_id: str) -> dict[str, str]:
    return driver.execute_script(_ROW, item_id) or {}  # type: ignore[no-any-return]


def _state(driver: Any, item_id: str) -> str | None:
    return _row(driver, item_id).get("state")


def _backlog_figure(driver: Any, card: str, name: str) -> int:
    return int(driver.execute_script(_FIGURE, card, name) or 0)


async def _added(client: GraphQLClient, mutation: str, variables: dict[str, str]) -> str:
    answer = await client(mutation, variables)
    (result,) = answer["data"].values()
    return str(result["item"]["id"])


async def test_a_user_watches_an_albums_progress_bar_fill_and_an_operator_sees_the_backlog(
    live_server: str,
    browser: Any,
    as_user: Callable[[str], GraphQLClient],
    token_for: Callable[..., str],
) -> None:
    alice = as_user("alice")
    single = await _added(alice, ADD_TRACK, {"track": TRACK_ID})
    await asyncio.to_thread(browser.get, f"{live_server}/status#token={token_for('alice')}")
    await asyncio.to_thread(wait, browser, lambda d: _connection_state(d) == "live")
    # The token left the address at once (it stays in the tab's session storage).
    assert "token" not in await asyncio.to_thread(lambda: browser.current_url)
    # The item added before the page opened is listed from the library query.
    await asyncio.to_thread(wait, browser, lambda d: _state(d, single) == "INDEXED")

    # Added while the page is open: it appears, and its bar fills, over the subscription.
    album = await _added(alice, ADD, {"album": ALBUM_ID})
    partial = await _added(alice, ADD, {"album": NO_ISRC_ALBUM_ID})
    await asyncio.to_thread(wait, browser, lambda d: _state(d, album) == "INDEXED")
    await asyncio.to_thread(wait, browser, lambda d: _state(d, partial) == "PARTIAL")
    row = await asyncio.to_thread(_row, browser, album)
    assert row["indexed"] == row["total"] == str(ALBUM_TRACKS)
    assert row["bar"] == row["barMax"] == str(ALBUM_TRACKS)
    assert f"{ALBUM_TRACKS}/{ALBUM_TRACKS} indexed" in row["text"]
    assert int(row["updates"]) >= 3, row  # pushed along the way, not only at the end

    # The operator's panel (development, no METRICS_TOKEN: open) counts the ledger.
    await asyncio.to_thread(
        wait,
        browser,
        lambda d: _backlog_figure(d, "ledger", "indexed") >= ALBUM_TRACKS,
    )
    screenshot = await asyncio.to_thread(browser.get_screenshot_as_png)
    assert screenshot.startswith(b"\x89PNG\r\n\x1a\n")
    if target := os.environ.get("LIBINGEST_STATUS_SCREENSHOT"):
        await asyncio.to_thread(Path(target).write_bytes, screenshot)


async def test_another_users_page_shows_none_of_alices_items(
    live_server: str,
    browser: Any,
    as_user: Callable[[str], GraphQLClient],
    token_for: Callable[..., str],
) -> None:
    await asyncio.to_thread(browser.get, f"{live_server}/status#token={token_for('bob')}")
    await asyncio.to_thread(wait, browser, lambda d: _connection_state(d) == "live")
    alices = await _added(as_user("alice"), ADD_TRACK, {"track": TRACK_ID})
    bobs = await _added(as_user("bob"), ADD, {"album": NO_ISRC_ALBUM_ID})
    await asyncio.to_thread(wait, browser, lambda d: _state(d, bobs) == "PARTIAL")
    listed = await asyncio.to_thread(
        browser.execute_script,
        "return [...document.querySelectorAll('tr[data-item-id]')].map(r => r.dataset.itemId);",
    )
    assert listed == [bobs]
    assert alices not in listed


async def test_a_refused_token_says_so(live_server: str, browser: Any) -> None:
    await asyncio.to_thread(browser.get, f"{live_server}/status#token=not-a-token")
    await asyncio.to_thread(wait, browser, lambda d: _connection_state(d) == "refused")
    text = await asyncio.to_thread(lambda: browser.find_element("id", "connection").text)
    assert "refused" in text


async def test_the_page_and_its_assets_come_from_the_service_alone(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/status")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    referenced = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert referenced, "the page names no asset"
    for url in referenced:
        assert url.startswith("/status/assets/"), url  # nothing from elsewhere
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content


@pytest.mark.parametrize(
    "settings_overrides", [LOCAL_LOOP | {"metrics_token": "ops"}], indirect=True
)
async def test_the_backlog_answers_operators_only(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/status/backlog")
    wrong = await client.get("/status/backlog", headers={"authorization": "Bearer nope"})
    operator = await client.get("/status/backlog", headers={"authorization": "Bearer ops"})

    assert anonymous.status_code == wrong.status_code == 401
    assert operator.status_code == 200
    assert set(operator.json()) == {
        "jobsByStatus",
        "pendingByAge",
        "oldestPending",
        "ledgerByState",
        "pace",
        "recentFailures",
    }

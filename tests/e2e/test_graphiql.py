"""GraphiQL as the service serves it: a page whose every script and style comes from the
service itself (no CDN: it works offline), which tells how to pass the token (ADR 0032); and, in
a real headless Chromium, a subscription run from it with the Headers tab's token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from entrypoints import graphiql
from tests.e2e.conftest import LOCAL_LOOP, GraphQLClient
from tests.support.browser import wait


class _References(HTMLParser):
    """Every URL the page makes the browser load: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.urls.append(value)


def _references(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    return parser.urls


def _same_origin(url: str) -> bool:
    """A path on the page's own origin, or inline data; never another host."""
    parts = urlsplit(url)
    if parts.scheme == "data":
        return True
    return not parts.scheme and not parts.netloc and url.startswith("/")


async def _page(client: httpx.AsyncClient) -> str:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_the_graphiql_page_loads_nothing_from_another_origin(
    client: httpx.AsyncClient,
) -> None:
    urls = _references(await _page(client))

    assert len(urls) >= 4  # the icon, the style sheet and three scripts at least
    assert [url for url in urls if not _same_origin(url)] == []
    assert "unpkg" not in (await _page(client)) and "jsdelivr" not in (await _page(client))


async def test_the_graphiql_page_says_how_to_pass_the_token(client: httpx.AsyncClient) -> None:
    page = await _page(client)

    assert "libingest token" in page
    assert "Authorization" in page and "Bearer" in page


async def test_the_service_serves_every_asset_the_graphiql_page_names(
    client: httpx.AsyncClient,
) -> None:
    if not (graphiql.assets_directory() / "graphiql.min.js").exists():
        pytest.skip("GraphiQL's assets are not built (make graphiql-assets needs npm)")
    assets = [url for url in _references(await _page(client)) if not url.startswith("data:")]

    responses = {url: await client.get(url) for url in assets}

    assert {url: r.status_code for url, r in responses.items()} == dict.fromkeys(assets, 200)
    scripts = [r for url, r in responses.items() if url.endswith(".js")]
    assert len(scripts) == 4  # React, ReactDOM, GraphiQL, graphql-ws
    assert all("javascript" in r.headers["content-type"] for r in scripts)


def test_the_check_for_other_origins_tells_them_apart() -> None:
    page = (
        '<link href="/graphiql/assets/a.css"><link rel="icon" href="data:,">'
        '<script src="https://unpkg.com/graphiql"></script><script src="//cdn.example/x.js">'
    )

    assert [url for url in _references(page) if not _same_origin(url)] == [
        "https://unpkg.com/graphiql",
        "//cdn.example/x.js",
    ]


@pytest.mark.parametrize("settings_overrides", [{"libingest_env": "production"}], indirect=True)
async def test_in_production_graphiql_assets_are_not_served(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{graphiql.ASSETS_PATH}/graphiql.min.js")

    assert response.status_code == 404


# GraphiQL's editors are CodeMirror 5 instances, each reachable from its DOM element.
_EDITORS_READY = """
return document.querySelector('.graphiql-query-editor .CodeMirror') !== null
    && document.querySelector('.graphiql-editor-tool .CodeMirror') !== null;
"""
_SET_EDITORS = """
document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(arguments[0]);
const tools = [...document.querySelectorAll('.graphiql-editor-tool .graphiql-editor')];
const headers = tools.find(editor => !editor.classList.contains('hidden'));
headers.querySelector('.CodeMirror').CodeMirror.setValue(arguments[1]);
"""
# GraphiQL takes an edit into its state after a debounce, then stores it: run once both are.
_EDITS_TAKEN = """
return localStorage.getItem('graphiql:query') === arguments[0]
    && localStorage.getItem('graphiql:headers') === arguments[1];
"""
_RUN = "document.querySelector('.graphiql-execute-button').click();"
_RESULT = """
const result = document.querySelector('.result-window .CodeMirror');
return result === null ? '' : result.CodeMirror.getValue();
"""
_ADD = """mutation Add($album: ID!) { addAlbumToLibrary(albumId: $album) {
  ... on AddToLibrarySuccess { item { id } } } }"""


def _result(driver: Any) -> str:
    return str(driver.execute_script(_RESULT))


async def _run_in_graphiql(browser: Any, live_server: str, document: str, headers: str) -> None:
    await asyncio.to_thread(browser.get, f"{live_server}/graphql")
    await asyncio.to_thread(wait, browser, lambda d: d.execute_script(_EDITORS_READY))
    await asyncio.to_thread(browser.execute_script, _SET_EDITORS, document, headers)
    await asyncio.to_thread(
        wait, browser, lambda d: d.execute_script(_EDITS_TAKEN, document, headers)
    )
    await asyncio.to_thread(browser.execute_script, _RUN)


@pytest.mark.parametrize("settings_overrides", [LOCAL_LOOP], indirect=True)
async def test_graphiql_runs_a_subscription_with_the_token_of_its_headers_tab(
    live_server: str,
    browser: Any,
    as_user: Callable[[str], GraphQLClient],
    token_for: Callable[..., str],
) -> None:
    if not (graphiql.assets_directory() / "graphql-ws.min.js").exists():
        pytest.skip("GraphiQL's assets are not built (make graphiql-assets needs npm)")
    added = await as_user("alice")(_ADD, {"album": "900000100"})  # 124 tracks
    item_id = added["data"]["addAlbumToLibrary"]["item"]["id"]
    # The id goes into the document: the test fills only GraphiQL's query and headers editors.
    watch = (
        f'subscription Watch {{ ingestionProgress(itemId: "{item_id}")'
        " { state tracksIndexed tracksTotal } }"
    )

    # Without a token the WebSocket is refused (4403, no retry), and GraphiQL says so.
    await _run_in_graphiql(browser, live_server, watch, "{}")
    await asyncio.to_thread(wait, browser, lambda d: _result(d) != "")
    refused = await asyncio.to_thread(_result, browser)
    assert "Socket closed with event 4403 Forbidden" in refused, refused
    assert "tracksIndexed" not in refused, refused

    # With alice's token in the Headers tab, the progress streams in until the album is done.
    headers = json.dumps({"Authorization": f"Bearer {token_for('alice')}"})
    await _run_in_graphiql(browser, live_server, watch, headers)
    await asyncio.to_thread(wait, browser, lambda d: '"INDEXED"' in _result(d))
    final = json.loads(await asyncio.to_thread(_result, browser))
    assert final["data"]["ingestionProgress"] == {
        "state": "INDEXED",
        "tracksIndexed": 124,
        "tracksTotal": 124,
    }

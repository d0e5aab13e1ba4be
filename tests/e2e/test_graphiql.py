"""GraphiQL as the service serves it: a page whose every script and style comes from the
service itself (no CDN: it works offline), which tells how to pass the token (ADR 0032)."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from entrypoints import graphiql


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
    assert len(scripts) == 3
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

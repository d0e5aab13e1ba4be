"""GraphiQL, served whole by the service: the page, and GraphiQL's and React's published browser
builds from package data (ADR 0032). Nothing loads from a CDN, so GraphiQL works offline and a
strict network policy does not break it.

The builds come from npm at build time (`make graphiql-assets`: tools/graphiql pins them by its
lock file) into `assets/` beside this module; without them the page says how to build them."""

from __future__ import annotations

from pathlib import Path

from entrypoints import packaged_pages

# Where the page finds its scripts and styles: same origin, under the path the app mounts.
ASSETS_PATH = "/graphiql/assets"

# The files the page loads, as `make graphiql-assets` names them in assets/.
ASSET_FILES = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql.min.css",
    "graphql-ws.min.js",  # GraphiQL's subscriptions: the graphql-transport-ws client
)


def assets_directory() -> Path:
    """The folder the assets are served from (it may not exist before the build)."""
    return packaged_pages.assets_directory(__name__)


def page() -> str:
    """GraphiQL's HTML page, with the assets' path filled in."""
    return packaged_pages.page(__name__, ASSETS_PATH)

"""A database outage on the request path: a clear, retryable error, not a masked one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.clock import SystemClock
from adapters.postgres.database import create_engine, create_pool
from adapters.postgres.library_additions import PostgresLibraryAdditions
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from application.use_cases.add_album_to_library import AddAlbumToLibrary
from application.use_cases.add_playlist_to_library import AddPlaylistToLibrary
from application.use_cases.add_track_to_library import AddTrackToLibrary
from application.use_cases.get_ingestion_progress import GetIngestionProgress
from application.use_cases.get_library_item import GetLibraryItem
from application.use_cases.list_library import ListLibrary
from application.use_cases.remove_from_library import RemoveFromLibrary
from application.use_cases.retry_ingestion import RetryIngestion
from entrypoints.app import create_app
from entrypoints.container import Container, resolved
from entrypoints.settings import Settings
from entrypoints.use_cases import LibraryUseCases
from tests.e2e.conftest import GraphQLClient


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"relay_enabled": False}


@pytest.fixture
async def unreachable_app_client(
    settings: Settings, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, migrated on the real database, whose use cases then find it gone."""
    nowhere = create_engine("postgresql://postgres@127.0.0.1:1/gone", pool_size=1)
    container = Container()
    container.settings.override(providers.Object(settings))
    gone = PostgresUnitOfWorkFactory(nowhere)
    gone_pool = await create_pool("postgresql://postgres@127.0.0.1:1/gone", size=1)
    additions = PostgresLibraryAdditions(gone_pool)
    clock = SystemClock()
    # Only the request path loses the database; the lifespan starts on the real one.
    container.library_use_cases.override(
        providers.Object(
            LibraryUseCases(
                add_track=AddTrackToLibrary(additions, clock),
                add_album=AddAlbumToLibrary(additions, clock),
                add_playlist=AddPlaylistToLibrary(additions, clock),
                remove=RemoveFromLibrary(gone),
                list_library=ListLibrary(gone),
                get_item=GetLibraryItem(gone),
                progress=GetIngestionProgress(gone),
                search=await resolved(container.search_tracks()),
                retry=RetryIngestion(gone, clock),
                watch=await resolved(container.watch_progress()),
            )
        )
    )
    app = create_app(container)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client
    finally:
        await nowhere.dispose()
        await gone_pool.close()


async def test_an_add_while_the_database_is_down_answers_service_unavailable(
    unreachable_app_client: httpx.AsyncClient, token_for: Any
) -> None:
    alice = GraphQLClient(unreachable_app_client, token_for("alice"))

    result = await alice('mutation { addAlbumToLibrary(albumId: "1") { __typename } }')

    assert result["data"] is None
    [error] = result["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "retry" in error["message"]
    assert "Traceback" not in str(result) and "127.0.0.1" not in str(result)

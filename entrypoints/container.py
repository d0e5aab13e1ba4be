"""The composition root: the one place that knows which adapter serves which port.

Nothing connects at import time. Resources (the embedded PostgreSQL server, the engine) start in
the application's lifespan through `init_resources()` and stop with `shutdown_resources()`.
Tests replace any provider with `provider.override(...)`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.auth.jwt_tokens import JwtAuthenticator, JwtSettings, load_or_create_secret
from adapters.clock import SystemClock
from adapters.postgres.database import EmbeddedPostgres, create_engine
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from application.use_cases.add_album_to_library import AddAlbumToLibrary
from application.use_cases.add_track_to_library import AddTrackToLibrary
from application.use_cases.get_ingestion_progress import GetIngestionProgress
from application.use_cases.get_library_item import GetLibraryItem
from application.use_cases.list_library import ListLibrary
from application.use_cases.remove_from_library import RemoveFromLibrary
from entrypoints.settings import Settings
from entrypoints.use_cases import LibraryUseCases


def database_url(settings: Settings) -> Iterator[str]:
    """DATABASE_URL, or an embedded server in the data directory for as long as we run."""
    if settings.database_url:
        yield settings.database_url
        return
    server = EmbeddedPostgres(settings.libingest_data_dir)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


async def database_engine(url: str, pool_size: int) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url, pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()


def jwt_settings(settings: Settings) -> JwtSettings:
    return JwtSettings(
        secret=load_or_create_secret(settings.auth_jwt_secret, settings.libingest_data_dir),
        issuer=settings.auth_jwt_issuer,
        audience=settings.auth_jwt_audience,
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    database_url = providers.Resource(database_url, settings)
    engine = providers.Resource(database_engine, database_url, settings.provided.database_pool_size)
    uow_factory = providers.Singleton(PostgresUnitOfWorkFactory, engine)
    clock = providers.Singleton(SystemClock)

    authenticator = providers.Singleton(
        JwtAuthenticator, providers.Callable(jwt_settings, settings)
    )

    library_use_cases = providers.Singleton(
        LibraryUseCases,
        add_track=providers.Factory(AddTrackToLibrary, uow_factory, clock),
        add_album=providers.Factory(AddAlbumToLibrary, uow_factory, clock),
        remove=providers.Factory(RemoveFromLibrary, uow_factory),
        list_library=providers.Factory(ListLibrary, uow_factory),
        get_item=providers.Factory(GetLibraryItem, uow_factory),
        progress=providers.Factory(GetIngestionProgress, uow_factory),
    )

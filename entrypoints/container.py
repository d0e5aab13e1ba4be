"""The composition root: the one place that knows which adapter serves which port.

Nothing connects at import time. Resources (the embedded PostgreSQL server, the engine, the
catalogue's HTTP client, the search index, the local queue, the LISTEN connection, the relay)
start in one order and stop in the reverse one through `running()`, for `libingest serve` and
`libingest relay` alike (ADR 0025); not through `init_resources()`, which would start the
queue a Selector did not choose. Tests replace any provider with `provider.override(...)`."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import inngest
import structlog
from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.auth.jwt_tokens import JwtAuthenticator, JwtSettings, load_or_create_secret
from adapters.clock import SystemClock
from adapters.embedding.hashing import HashingEmbedder
from adapters.embedding.lexical import LexicalFeatureEncoder
from adapters.embedding.wordllama import WordLlamaEmbedder
from adapters.inngest.queue import InngestQueue, build_inngest_client
from adapters.memory.add_rate_limits import InProcessAddRateLimits
from adapters.metrics.prometheus import PrometheusMetrics
from adapters.postgres.catalog_cache import CachingCatalog
from adapters.postgres.database import EmbeddedPostgres, create_engine, create_pool
from adapters.postgres.library_additions import PostgresLibraryAdditions
from adapters.postgres.migrate import upgrade_to_head
from adapters.postgres.notifications import (
    PostgresListener,
    PostgresProgressChanges,
    SchedulingNotifications,
)
from adapters.postgres.tidal_pace import PostgresPace
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from adapters.qdrant.track_index import LocalStorageHeld, QdrantTrackIndex
from adapters.tidal.client import TidalCatalog
from adapters.tidal.sample import sample_catalog
from application.errors import DependencyUnavailable
from application.ports.catalog import Catalog
from application.ports.clock import Clock
from application.ports.embedder import Embedder, LexicalEncoder
from application.ports.track_index import IndexUnavailable
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.add_album_to_library import AddAlbumToLibrary
from application.use_cases.add_playlist_to_library import AddPlaylistToLibrary
from application.use_cases.add_to_library import AddQuotas
from application.use_cases.add_track_to_library import AddTrackToLibrary
from application.use_cases.dispatch_pending import DispatchPending
from application.use_cases.get_ingestion_progress import GetIngestionProgress
from application.use_cases.get_library_item import GetLibraryItem
from application.use_cases.ingest_track import IngestTrack
from application.use_cases.list_library import ListLibrary
from application.use_cases.prepare_search_index import PrepareSearchIndex
from application.use_cases.remove_from_library import RemoveFromLibrary
from application.use_cases.reschedule import Reschedule
from application.use_cases.resync import Resync
from application.use_cases.retry_ingestion import RetryIngestion
from application.use_cases.schedule_ingestion import ScheduleIngestion
from application.use_cases.search_tracks import SearchTracks
from application.use_cases.watch_progress import WatchProgress
from domain.quotas import RatePolicy
from entrypoints.local_queue import LocalQueue, in_flight_commands
from entrypoints.relay import Relay
from entrypoints.settings import Settings
from entrypoints.use_cases import LibraryUseCases

log = structlog.get_logger("libingest.container")


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


async def database_pool(url: str, size: int) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(url, size=size)
    try:
        yield pool
    finally:
        await pool.close()


def add_quotas(settings: Settings) -> AddQuotas:
    """One set of buckets for both kinds of add, in this process (ADR 0022)."""
    policy = RatePolicy(per_second=settings.add_rate_per_second, burst=settings.add_burst)
    return AddQuotas(
        rate_limits=InProcessAddRateLimits(policy),
        max_pending=settings.add_max_pending_per_user or None,
    )


def jwt_settings(settings: Settings) -> JwtSettings:
    return JwtSettings(
        secret=load_or_create_secret(settings.auth_jwt_secret, settings.libingest_data_dir),
        issuer=settings.auth_jwt_issuer,
        audience=settings.auth_jwt_audience,
    )


async def catalog(
    settings: Settings, engine: AsyncEngine, clock: Clock, metrics: PrometheusMetrics
) -> AsyncIterator[Catalog]:
    """TIDAL when credentials are configured, else the offline sample catalogue; either way
    behind the PostgreSQL catalogue cache."""
    inner: TidalCatalog
    if settings.uses_tidal:
        assert settings.tidal_client_id and settings.tidal_client_secret
        inner = TidalCatalog(
            client_id=settings.tidal_client_id,
            client_secret=settings.tidal_client_secret,
            base_url=settings.tidal_api_base_url,
            auth_url=settings.tidal_auth_url,
            country_code=settings.tidal_country_code,
            pace=PostgresPace(
                engine,
                requests_per_second=settings.tidal_requests_per_second,
                burst=settings.tidal_burst,
            ),
            metrics=metrics,
        )
    else:
        log.info("catalog.offline_sample", reason="TIDAL_CLIENT_ID/SECRET not set")
        inner = sample_catalog(settings.tidal_country_code)
    cached = CachingCatalog(
        inner,
        engine,
        clock=clock,
        max_age=timedelta(days=settings.catalog_cache_max_age_days),
        unknown_max_age=timedelta(hours=settings.catalog_unknown_max_age_hours),
    )
    try:
        yield cached
    finally:
        await inner.aclose()


def embedder(settings: Settings) -> Embedder:
    """WordLlama by default; the hashing embedder when EMBEDDER=hashing (ADR 0030)."""
    chosen: Embedder
    if settings.embedder == "hashing":
        chosen = HashingEmbedder(settings.embedding_dimension)
    else:
        chosen = WordLlamaEmbedder(settings.embedding_dimension)
    log.info("embedder.ready", space=chosen.space)
    return chosen


async def track_index(
    settings: Settings, embedder: Embedder, lexical: LexicalEncoder
) -> AsyncIterator[QdrantTrackIndex]:
    index = QdrantTrackIndex(
        vector_size=embedder.dimension,
        dense_vector=embedder.space,
        lexical_vector=lexical.space,
        collection=settings.qdrant_collection,
        url=settings.qdrant_url,
        api_key=settings.qdrant_api_key,
        path=None if settings.qdrant_url else str(settings.libingest_data_dir / "qdrant"),
    )
    try:
        await index.start()
    except LocalStorageHeld as held:
        # Another libingest process on this data directory: say what lets both run.
        raise IndexUnavailable(
            f"{held}; set QDRANT_URL to a Qdrant server to run `libingest relay` and"
            " `libingest serve` side by side"
        ) from None
    try:
        await PrepareSearchIndex(embedder, lexical, index)()
    except IndexUnavailable as error:
        # Scheduling fails open and the first upsert creates the collection: start anyway.
        log.warning("qdrant.unavailable_at_start", error=str(error))
    try:
        yield index
    finally:
        await index.close()


def inngest_client(settings: Settings) -> inngest.Inngest:
    return build_inngest_client(
        event_key=settings.inngest_event_key,
        signing_key=settings.inngest_signing_key,
        dev=settings.inngest_dev,
        base_url=settings.inngest_base_url,
        event_api_base_url=settings.inngest_event_api_base_url,
    )


def queue_kind(settings: Settings) -> str:
    return "inngest" if settings.uses_inngest else "local"


async def postgres_listener(url: str) -> AsyncIterator[PostgresListener]:
    """The process's one LISTEN connection, shared by the relay's wake-ups and the progress
    fan-out (ADR 0031)."""
    listener = PostgresListener(url)
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()


async def notifications(listener: PostgresListener) -> AsyncIterator[SchedulingNotifications]:
    wakeups = SchedulingNotifications(listener)
    await wakeups.start()
    try:
        yield wakeups
    finally:
        await wakeups.stop()


async def progress_fan_out(
    watch: WatchProgress, changes: PostgresProgressChanges
) -> AsyncIterator[WatchProgress]:
    """The progress subscriptions' one fan-out in this process, running (ADR 0031)."""
    await changes.start()
    task = asyncio.create_task(_fan_out_forever(watch), name="progress-fan-out")
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await changes.stop()


async def _fan_out_forever(watch: WatchProgress) -> None:
    while True:
        try:
            await watch.fan_out_next()
        except DependencyUnavailable as error:
            # The next change reads everything watched again (fan_out_next says so).
            log.warning("progress.fan_out_failed", error=str(error))
            await asyncio.sleep(1.0)


async def local_queue(
    ingest: IngestTrack, uow_factory: UnitOfWorkFactory, concurrency: int
) -> AsyncIterator[LocalQueue]:
    """The in-process queue, running. It first takes back what was dispatched before the last
    stop and is not indexed yet: the ledger is its memory (ADR 0009)."""
    queue = LocalQueue(ingest, concurrency=concurrency)
    await queue.start(redeliver=await in_flight_commands(uow_factory))
    try:
        yield queue
    finally:
        await queue.stop()


async def running_relay(relay: Relay) -> AsyncIterator[Relay]:
    """The relay, running. Stopping it hands the leases of the jobs in flight back."""
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    database_url = providers.Resource(database_url, settings)
    engine = providers.Resource(database_engine, database_url, settings.provided.database_pool_size)
    uow_factory = providers.Singleton(PostgresUnitOfWorkFactory, engine)
    pool = providers.Resource(database_pool, database_url, settings.provided.database_pool_size)
    library_additions = providers.Singleton(PostgresLibraryAdditions, pool)
    add_quotas = providers.Singleton(add_quotas, settings)
    clock = providers.Singleton(SystemClock)
    metrics = providers.Singleton(PrometheusMetrics)

    authenticator = providers.Singleton(
        JwtAuthenticator, providers.Callable(jwt_settings, settings)
    )

    catalog = providers.Resource(catalog, settings, engine, clock, metrics)
    embedder = providers.Singleton(embedder, settings)
    lexical_encoder = providers.Singleton(LexicalFeatureEncoder)
    track_index = providers.Resource(track_index, settings, embedder, lexical_encoder)
    ingest_track = providers.Singleton(
        IngestTrack, uow_factory, catalog, embedder, lexical_encoder, track_index, clock, metrics
    )
    search_tracks = providers.Singleton(SearchTracks, embedder, lexical_encoder, track_index)
    reschedule = providers.Singleton(Reschedule, uow_factory, clock)
    resync = providers.Singleton(Resync, uow_factory, clock)

    postgres_listener = providers.Resource(postgres_listener, database_url)
    notifications = providers.Resource(notifications, postgres_listener)
    progress_changes = providers.Singleton(PostgresProgressChanges, postgres_listener)
    watch_progress = providers.Singleton(
        WatchProgress,
        uow_factory,
        progress_changes,
        max_per_user=settings.provided.graphql_max_subscriptions_per_user,
    )
    progress_fan_out = providers.Resource(progress_fan_out, watch_progress, progress_changes)

    library_use_cases = providers.Singleton(
        LibraryUseCases,
        add_track=providers.Factory(AddTrackToLibrary, library_additions, clock, add_quotas),
        add_album=providers.Factory(AddAlbumToLibrary, library_additions, clock, add_quotas),
        add_playlist=providers.Factory(AddPlaylistToLibrary, library_additions, clock, add_quotas),
        remove=providers.Factory(RemoveFromLibrary, uow_factory),
        list_library=providers.Factory(ListLibrary, uow_factory),
        get_item=providers.Factory(GetLibraryItem, uow_factory),
        progress=providers.Factory(GetIngestionProgress, uow_factory),
        search=search_tracks,
        retry=providers.Factory(RetryIngestion, uow_factory, clock),
        watch=watch_progress,
    )

    inngest_client = providers.Singleton(inngest_client, settings)
    ingestion_queue = providers.Selector(
        providers.Callable(queue_kind, settings),
        inngest=providers.Singleton(InngestQueue, inngest_client),
        local=providers.Resource(
            local_queue, ingest_track, uow_factory, settings.provided.local_queue_concurrency
        ),
    )

    dispatch_pending = providers.Singleton(
        DispatchPending, uow_factory, ingestion_queue, clock, metrics
    )
    schedule_ingestion = providers.Singleton(
        ScheduleIngestion,
        uow_factory=uow_factory,
        catalog=catalog,
        index=track_index,
        dispatch=dispatch_pending,
        clock=clock,
        metrics=metrics,
    )
    relay = providers.Singleton(
        Relay,
        uow_factory=uow_factory,
        schedule=schedule_ingestion,
        dispatch=dispatch_pending,
        wakeups=notifications,
        clock=clock,
        metrics=metrics,
        concurrency=settings.provided.relay_concurrency,
        batch_size=settings.provided.relay_batch_size,
        sweep_interval=settings.provided.relay_sweep_seconds,
    )
    running_relay = providers.Resource(running_relay, relay)


async def resolved(value: Any) -> Any:
    """A provider's value. Providers that depend on an async resource answer with an
    awaitable once it is initialised; the others answer with the value itself."""
    return await value if inspect.isawaitable(value) else value


@contextlib.asynccontextmanager
async def running(
    container: Container, *, migrate: bool, relay: bool, subscriptions: bool = False
) -> AsyncIterator[None]:
    """Everything a process runs, started in one order and stopped in the reverse one, for
    `libingest serve` (the app's lifespan) and `libingest relay` alike: the database, migrated
    before anything reads it; the add's pool and the relays' wake-ups; the catalogue and the
    search index; the ingestion queue; the relay, which uses all of them; and, for the API, the
    fan-out of progress subscriptions. A start that
    fails stops what had started, so a refused start leaves nothing running."""
    async with contextlib.AsyncExitStack() as started:
        # Out last: whatever a provider started besides the resources below.
        started.push_async_callback(_shut_down_the_rest, container)
        await _start(started, container.database_url)
        engine = await _start(started, container.engine)
        if migrate:
            await upgrade_to_head(engine)
        for provider in (
            container.pool,
            container.postgres_listener,
            container.notifications,
            container.catalog,
            container.track_index,
            container.ingestion_queue,
        ):
            await _start(started, provider)
        if relay:
            await _start(started, container.running_relay)
        if subscriptions:
            await _start(started, container.progress_fan_out)
        yield


async def _start(started: contextlib.AsyncExitStack, provider: providers.Provider[Any]) -> Any:
    value = await resolved(provider())
    if isinstance(provider, providers.Selector) and provider.selector is not None:
        provider = provider.providers[provider.selector()]  # the one it chose is what runs
    if isinstance(provider, providers.Resource):
        started.push_async_callback(_shut_down, provider)
    return value


async def _shut_down(resource: providers.Resource[Any]) -> None:
    await resolved(resource.shutdown())


async def _shut_down_the_rest(container: Container) -> None:
    await resolved(container.shutdown_resources())

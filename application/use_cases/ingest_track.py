from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from application.ports.catalog import Catalog, CatalogItemNotFound
from application.ports.clock import Clock
from application.ports.embedder import Embedder, LexicalEncoder, TrackText
from application.ports.metrics import IngestionMetrics, NoMetrics
from application.ports.track_index import IndexedTrack, TrackIndex, TrackVectors
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.vectors import track_vectors
from domain.errors import InvalidLibraryItemId
from domain.library import LibraryItemKind
from domain.values import CatalogId, Isrc, parse_library_item_id


@dataclass(frozen=True, slots=True)
class IngestTrackCommand:
    """What a `track/ingestion.requested` event carries (design.md §4), as strings."""

    isrc: str
    track_id: str
    album_id: str | None
    library_item_id: str | None


@dataclass(frozen=True, slots=True)
class TrackDocument:
    """The fetched metadata of one track: what is embedded and what the index point holds.
    Plain strings, so a durable step runner can store it between steps."""

    isrc: str
    track_id: str
    title: str
    version: str | None
    artist_names: tuple[str, ...]
    album_id: str | None
    album_title: str | None


class IngestOutcome(StrEnum):
    INDEXED = "indexed"
    FAILED = "failed"  # the track is gone from the catalogue: marked failed, not retried


class TrackGone(Exception):
    """Permanent: the catalogue no longer has the track."""


class IngestTrack:
    """Puts one track into the search index: fetch its metadata (catalogue cache first), embed
    it (a dense and a lexical vector), upsert its point (id from the ISRC), and mark the ledger
    row `indexed`. Idempotent: running it twice for one ISRC leaves one point and one `indexed`
    row. A track the catalogue no longer has is marked `failed` with the reason and not
    retried. Transient failures (CatalogUnavailable, IndexUnavailable) propagate for the runner
    to retry.

    The steps are public so a durable runner (Inngest) can record each one; `__call__` runs
    them in order for the local queue."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        catalog: Catalog,
        embedder: Embedder,
        lexical: LexicalEncoder,
        index: TrackIndex,
        clock: Clock,
        metrics: IngestionMetrics | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._catalog = catalog
        self._embedder = embedder
        self._lexical = lexical
        self._index = index
        self._clock = clock
        self._metrics: IngestionMetrics = metrics if metrics is not None else NoMetrics()

    async def __call__(self, command: IngestTrackCommand) -> IngestOutcome:
        try:
            document = await self.fetch(command)
        except TrackGone as gone:
            await self.mark_failed(command.isrc, str(gone))
            return IngestOutcome.FAILED
        vector = self.embed(document)
        await self.upsert(document, vector)
        await self.mark_indexed(command.isrc)
        return IngestOutcome.INDEXED

    async def fetch(self, command: IngestTrackCommand) -> TrackDocument:
        started = time.perf_counter()
        try:
            return await self._fetch(command)
        finally:
            self._metrics.step_took("fetch", time.perf_counter() - started)

    async def _fetch(self, command: IngestTrackCommand) -> TrackDocument:
        isrc = Isrc.parse(command.isrc)
        try:
            track = await self._catalog.track(CatalogId.parse(command.track_id))
        except CatalogItemNotFound as error:
            raise TrackGone(str(error)) from error
        album_title = await self._album_title(command)
        return TrackDocument(
            isrc=isrc.value,
            track_id=track.catalog_id.value,
            title=track.title,
            version=track.version,
            artist_names=track.artist_names,
            album_id=command.album_id or (track.album_id.value if track.album_id else None),
            album_title=album_title,
        )

    def embed(self, document: TrackDocument) -> TrackVectors:
        started = time.perf_counter()
        vectors = track_vectors(
            self._embedder,
            self._lexical,
            TrackText(
                title=document.title,
                version=document.version,
                artist_names=document.artist_names,
                album_title=document.album_title,
            ),
        )
        self._metrics.step_took("embed", time.perf_counter() - started)
        self._metrics.track_embedded()
        return vectors

    async def upsert(self, document: TrackDocument, vectors: TrackVectors) -> None:
        started = time.perf_counter()
        await self._upsert(document, vectors)
        self._metrics.step_took("upsert", time.perf_counter() - started)

    async def _upsert(self, document: TrackDocument, vectors: TrackVectors) -> None:
        title = document.title if not document.version else f"{document.title} ({document.version})"
        await self._index.upsert(
            IndexedTrack(
                isrc=Isrc(document.isrc),
                track_id=CatalogId(document.track_id),
                title=title,
                artist_names=document.artist_names,
                album_id=CatalogId(document.album_id) if document.album_id else None,
                indexed_at=self._clock.now(),
            ),
            vectors,
        )

    async def mark_indexed(self, isrc: str) -> None:
        started = time.perf_counter()
        async with self._uow_factory() as uow:
            await uow.ledger.mark_indexed(Isrc.parse(isrc), now=self._clock.now())
            await uow.commit()
        self._metrics.step_took("mark", time.perf_counter() - started)
        self._metrics.track_indexed()

    async def mark_failed(self, isrc: str, reason: str) -> None:
        async with self._uow_factory() as uow:
            await uow.ledger.mark_failed(Isrc.parse(isrc), reason=reason, now=self._clock.now())
            await uow.commit()
        self._metrics.track_failed()

    async def _album_title(self, command: IngestTrackCommand) -> str | None:
        """The album's title as scheduling recorded it on the album item, at no catalogue cost."""
        if not command.library_item_id:
            return None
        try:
            item_id = parse_library_item_id(command.library_item_id)
        except InvalidLibraryItemId:
            return None
        async with self._uow_factory() as uow:
            item = (await uow.jobs.items([item_id])).get(item_id)
        if item is None or item.kind is not LibraryItemKind.ALBUM:
            return None
        return item.title

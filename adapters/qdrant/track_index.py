"""The TrackIndex port on Qdrant: a server through AsyncQdrantClient, or local mode in a thread.

Point id = Isrc.point_id (uuid5 of the ISRC, design.md §4), so "which of these ISRCs are indexed"
is one `retrieve` by ids per batch, without payloads or vectors. Every failure or timeout becomes
IndexUnavailable: the scheduler then fails open, since a duplicate ingestion is cheaper than a
lost one. No qdrant-client type crosses this module's boundary.

Each point has two named vectors, each named after its space (ADR 0030): the embedder's dense
vector (cosine) and the lexical sparse vector (dot product of unit vectors). A search prefetches
both rankings, each cut at its floor, and fuses them by reciprocal rank in Qdrant's Query API.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from application.ports.embedder import SparseVector
from application.ports.track_index import (
    IndexedTrack,
    IndexUnavailable,
    TrackHit,
    TrackQuery,
    TrackVectors,
)
from domain.errors import DomainError
from domain.ingestion import chunked
from domain.values import CatalogId, Isrc

logger = structlog.get_logger(__name__)

T = TypeVar("T")

MEMORY = ":memory:"
# Far below any server limit (no documented cap on retrieve ids; 1,000 UUIDs are ~40 KB of a
# 32 MB request limit) and it keeps one local-mode call to a few milliseconds (reference §2).
DEFAULT_LOOKUP_BATCH = 1000
# indexed() sits on the scheduling path and fails open, so it must answer or give up quickly.
DEFAULT_LOOKUP_DEADLINE_S = 0.3
# Writes, searches and collection management are not on a latency-critical path.
DEFAULT_OPERATION_DEADLINE_S = 5.0
# Each step of rewriting a collection's points for new vectors (a page read, the collection
# recreated, a batch written) at start; the first look at the collection has the operation
# deadline, so that a server that hangs does not hold the start for longer than it did.
DEFAULT_REWRITE_STEP_DEADLINE_S = 60.0
ISRC_FIELD = "isrc"
DENSE = "dense"
LEXICAL = "lexical"
# Each ranking hands fusion at least this many candidates, so that a track ranked low in one
# and high in the other still reaches the fused top.
FUSION_CANDIDATES = 20
# Reciprocal rank fusion: a track's score is the sum over rankings of
# weight / (rank + weight * (k - 1)), rank from 1 (qdrant_client/hybrid/fusion.py). k = 2 is
# Qdrant's default. The lexical ranking weighs more: for titles, names and typos it is the
# sharper one, and where it finds nothing above its floor (descriptive queries) the dense one
# decides alone. At 0.2 the lexical first (1/2) is overtaken by no track, not even the dense
# first that is lexical second (1/6 + 1/3), once it is anywhere in the dense ranking: an exact
# title stays first among a hundred 'Sample Movement x.y' the model cannot tell apart.
# Chosen on tests/search_quality (ADR 0030).
RRF_K = 2
DENSE_WEIGHT = 0.2
LEXICAL_WEIGHT = 1.0
REWRITE_BATCH = 256


class LocalStorageHeld(IndexUnavailable):
    """Local mode's storage folder is open in another process: its file lock admits one."""

    def __init__(self, path: str) -> None:
        super().__init__(f"the search index's local mode in {path} is held by another process")
        self.path = path


class QdrantTrackIndex:
    """Tracks in a Qdrant collection, one point per ISRC, cosine distance.

    Server mode (`url`, optional `api_key`) uses the async REST client under `asyncio.wait_for`
    deadlines. Local mode (`path`: a directory in the data directory, or ":memory:") runs the
    synchronous client on one dedicated worker thread: local mode blocks and is not thread-safe
    (reference §1.4, §1.6), and a single thread both serializes its calls and keeps them off the
    event loop. Call `start()` before use and `close()` at shutdown.
    """

    def __init__(
        self,
        *,
        vector_size: int,
        dense_vector: str = DENSE,
        lexical_vector: str = LEXICAL,
        collection: str = "tracks",
        url: str | None = None,
        api_key: str | None = None,
        path: str | Path | None = None,
        lookup_deadline_s: float = DEFAULT_LOOKUP_DEADLINE_S,
        operation_deadline_s: float = DEFAULT_OPERATION_DEADLINE_S,
        lookup_batch: int = DEFAULT_LOOKUP_BATCH,
        rewrite_step_deadline_s: float = DEFAULT_REWRITE_STEP_DEADLINE_S,
    ) -> None:
        if (url is None) == (path is None):
            raise ValueError("give exactly one of url (server mode) or path (local mode)")
        if vector_size < 1:
            raise ValueError(f"vector_size must be positive: {vector_size}")
        if dense_vector == lexical_vector:
            raise ValueError("the dense and the lexical vector need names of their own")
        self._vector_size = vector_size
        self._dense = dense_vector
        self._lexical = lexical_vector
        self._collection = collection
        self._url = url
        self._api_key = api_key
        self._path = str(path) if path is not None else None
        self._lookup_deadline_s = lookup_deadline_s
        self._operation_deadline_s = operation_deadline_s
        self._lookup_batch = lookup_batch
        self._rewrite_step_deadline_s = rewrite_step_deadline_s
        self._remote: AsyncQdrantClient | None = None
        self._local: QdrantClient | None = None
        self._local_thread: ThreadPoolExecutor | None = None

    @property
    def is_local(self) -> bool:
        return self._path is not None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the client. Never fails because the server is down: that is reported per call."""
        if self._remote is not None or self._local is not None:
            return
        if self._url is not None:
            self._remote = AsyncQdrantClient(
                url=self._url,
                api_key=self._api_key,
                # Whole seconds only (rounded up); the real deadlines are our wait_for calls.
                timeout=math.ceil(self._operation_deadline_s),
                # The version check runs in a background thread and only warns.
                check_compatibility=False,
            )
            return
        assert self._path is not None
        self._local_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-local")
        location = self._path

        def open_local() -> QdrantClient:
            # Opening a path loads the whole collection into memory and takes a file lock.
            if location == MEMORY:
                return QdrantClient(location=MEMORY)
            Path(location).mkdir(parents=True, exist_ok=True)
            return QdrantClient(path=location)

        loop = asyncio.get_running_loop()
        try:
            self._local = await loop.run_in_executor(self._local_thread, open_local)
        except RuntimeError as error:
            self._local_thread.shutdown(wait=False)
            self._local_thread = None
            if _lock_refused(error):
                raise LocalStorageHeld(location) from None
            raise IndexUnavailable(
                f"the search index's local storage did not open: {error}"
            ) from None

    async def close(self) -> None:
        remote, self._remote = self._remote, None
        if remote is not None:
            await remote.close()
        local, self._local = self._local, None
        thread, self._local_thread = self._local_thread, None
        if local is not None and thread is not None:
            # Releases the storage folder's lock for the next process.
            await asyncio.get_running_loop().run_in_executor(thread, local.close)
        if thread is not None:
            thread.shutdown(wait=False, cancel_futures=True)

    async def prepare(self, vectorise: Callable[[IndexedTrack], TrackVectors]) -> int:
        """Create the collection if it is missing (a keyword index on `isrc` in server mode).
        If it exists with other vectors (another embedder's, or one unnamed vector as before
        ADR 0030), read every point, recreate the collection, and write each point again with
        its payload and `vectorise(track)`. Returns how many points were written again."""
        deadline = self._rewrite_step_deadline_s

        async def describe_remote(client: AsyncQdrantClient) -> str | None:
            if not await client.collection_exists(self._collection):
                await self._ensure_collection_remote(client)
                return None
            return self._mismatch(await client.get_collection(self._collection))

        def describe_local(client: QdrantClient) -> str | None:
            if not client.collection_exists(self._collection):
                self._ensure_collection_local(client)
                return None
            return self._mismatch(client.get_collection(self._collection))

        found = await self._call(
            "prepare", self._operation_deadline_s, remote=describe_remote, local=describe_local
        )
        rewritten = 0
        if found is not None:
            logger.warning(
                "qdrant.collection_holds_other_vectors",
                collection=self._collection,
                found=found,
                action="every point is read, the collection recreated and each point written"
                " again with this configuration's vectors from its payload",
            )
            points = self._rewritten(await self._every_record(), vectorise)

            async def recreate_remote(client: AsyncQdrantClient) -> None:
                await client.delete_collection(self._collection)
                await self._ensure_collection_remote(client)

            def recreate_local(client: QdrantClient) -> None:
                client.delete_collection(self._collection)
                self._ensure_collection_local(client)

            await self._call("prepare", deadline, remote=recreate_remote, local=recreate_local)
            for start in range(0, len(points), REWRITE_BATCH):
                await self._write(points[start : start + REWRITE_BATCH])
            rewritten = len(points)
            logger.warning(
                "qdrant.collection_rewritten", collection=self._collection, points=rewritten
            )
        logger.info("qdrant.collection_ready", collection=self._collection, local=self.is_local)
        return rewritten

    async def _every_record(self) -> list[models.Record]:
        """Every point with its payload, a page at a time."""
        records: list[models.Record] = []
        offset: Any = None
        while True:
            page, offset = await self._page(offset)
            records += page
            if offset is None:
                return records

    async def _page(self, offset: Any) -> tuple[list[models.Record], Any]:
        async def page_remote(client: AsyncQdrantClient) -> tuple[list[models.Record], Any]:
            return await client.scroll(
                self._collection, limit=REWRITE_BATCH, offset=offset, with_payload=True
            )

        def page_local(client: QdrantClient) -> tuple[list[models.Record], Any]:
            return client.scroll(
                self._collection, limit=REWRITE_BATCH, offset=offset, with_payload=True
            )

        return await self._call(
            "prepare", self._rewrite_step_deadline_s, remote=page_remote, local=page_local
        )

    async def _write(self, points: list[models.PointStruct]) -> None:
        async def write_remote(client: AsyncQdrantClient) -> None:
            await client.upsert(self._collection, points=points, wait=True)

        def write_local(client: QdrantClient) -> None:
            client.upsert(self._collection, points=points, wait=True)

        await self._call(
            "prepare", self._rewrite_step_deadline_s, remote=write_remote, local=write_local
        )

    def _mismatch(self, info: models.CollectionInfo) -> str | None:
        """None when the collection holds exactly this configuration's vectors; otherwise what
        it holds, for the log."""
        params = info.config.params
        vectors = params.vectors
        sparse = params.sparse_vectors or {}
        if isinstance(vectors, dict):
            dense = {name: (p.size, p.distance.value) for name, p in vectors.items()}
        else:
            dense = {"": (vectors.size, vectors.distance.value)} if vectors is not None else {}
        expected = {self._dense: (self._vector_size, models.Distance.COSINE.value)}
        if dense == expected and set(sparse) == {self._lexical}:
            return None
        return (
            f"dense {dense}, sparse {sorted(sparse)};"
            f" this configuration: dense {expected}, sparse {[self._lexical]}"
        )

    def _rewritten(
        self, records: list[models.Record], vectorise: Callable[[IndexedTrack], TrackVectors]
    ) -> list[models.PointStruct]:
        points: list[models.PointStruct] = []
        for record in records:
            payload = record.payload or {}
            track = _track_of(payload)
            if track is None:
                # Another writer's point without our payload shape: nothing to vectorise.
                logger.warning("qdrant.unreadable_payload", point_id=str(record.id))
                continue
            points.append(
                models.PointStruct(
                    id=record.id, vector=self._point_vectors(vectorise(track)), payload=payload
                )
            )
        return points

    # -- TrackIndex --------------------------------------------------------------------------

    async def indexed(self, isrcs: Sequence[Isrc]) -> set[Isrc]:
        by_point_id = {isrc.point_id: isrc for isrc in isrcs}
        found: set[Isrc] = set()
        for batch in chunked(list(by_point_id), self._lookup_batch):
            for point_id in await self._retrieve(list(batch)):
                isrc = by_point_id.get(point_id)
                if isrc is not None:
                    found.add(isrc)
        return found

    async def _retrieve(self, point_ids: list[str]) -> list[str]:
        """The canonical ids of those of `point_ids` that exist: one retrieve, ids only."""

        async def retrieve_remote(client: AsyncQdrantClient) -> list[models.Record]:
            return await client.retrieve(
                self._collection, ids=point_ids, with_payload=False, with_vectors=False
            )

        def retrieve_local(client: QdrantClient) -> list[models.Record]:
            return client.retrieve(
                self._collection, ids=point_ids, with_payload=False, with_vectors=False
            )

        records = await self._call(
            "retrieve", self._lookup_deadline_s, remote=retrieve_remote, local=retrieve_local
        )
        return [_canonical_point_id(record.id) for record in records]

    async def upsert(self, track: IndexedTrack, vectors: TrackVectors) -> None:
        point = models.PointStruct(
            id=track.isrc.point_id, vector=self._point_vectors(vectors), payload=payload_of(track)
        )

        async def upsert_remote(client: AsyncQdrantClient) -> None:
            try:
                await client.upsert(self._collection, points=[point], wait=True)
            except Exception as error:
                if not _is_missing_collection(error):
                    raise
                # The worker may be the first writer after Qdrant was reset or first deployed.
                await self._ensure_collection_remote(client)
                await client.upsert(self._collection, points=[point], wait=True)

        def upsert_local(client: QdrantClient) -> None:
            self._ensure_collection_local(client)
            client.upsert(self._collection, points=[point], wait=True)

        await self._call(
            "upsert", self._operation_deadline_s, remote=upsert_remote, local=upsert_local
        )

    async def search(self, query: TrackQuery, limit: int) -> list[TrackHit]:
        dense = self._checked(query.dense)
        request: dict[str, Any]
        if query.lexical is None:
            request = {
                "query": dense,
                "using": self._dense,
                "score_threshold": query.dense_floor,
            }
        else:
            candidates = max(limit, FUSION_CANDIDATES)
            request = {
                "prefetch": [
                    models.Prefetch(
                        query=dense,
                        using=self._dense,
                        limit=candidates,
                        score_threshold=query.dense_floor,
                    ),
                    models.Prefetch(
                        query=_sparse(query.lexical),
                        using=self._lexical,
                        limit=candidates,
                        score_threshold=query.lexical_floor,
                    ),
                ],
                "query": models.RrfQuery(
                    rrf=models.Rrf(k=RRF_K, weights=[DENSE_WEIGHT, LEXICAL_WEIGHT])
                ),
            }

        async def search_remote(client: AsyncQdrantClient) -> list[models.ScoredPoint]:
            response = await client.query_points(
                self._collection, limit=limit, with_payload=True, **request
            )
            return response.points

        def search_local(client: QdrantClient) -> list[models.ScoredPoint]:
            return client.query_points(
                self._collection, limit=limit, with_payload=True, **request
            ).points

        points = await self._call(
            "search", self._operation_deadline_s, remote=search_remote, local=search_local
        )
        hits: list[TrackHit] = []
        for point in points:
            hit = _hit_of(point.payload or {}, point.score)
            if hit is None:
                # Another writer's point without our payload shape: skip it, do not fail search.
                logger.warning("qdrant.unreadable_payload", point_id=str(point.id))
                continue
            hits.append(hit)
        return hits

    # -- plumbing ----------------------------------------------------------------------------

    def _point_vectors(self, vectors: TrackVectors) -> dict[str, Any]:
        named: dict[str, Any] = {self._dense: self._checked(vectors.dense)}
        if not vectors.lexical.is_empty:
            named[self._lexical] = _sparse(vectors.lexical)
        return named

    def _checked(self, vector: Sequence[float]) -> list[float]:
        if len(vector) != self._vector_size:
            # A caller's bug (wrong embedder), not an index outage: do not fail it open.
            raise ValueError(f"vector has {len(vector)} dimensions, expected {self._vector_size}")
        return [float(component) for component in vector]

    async def _call(
        self,
        operation: str,
        deadline_s: float,
        *,
        remote: Callable[[AsyncQdrantClient], Awaitable[T]],
        local: Callable[[QdrantClient], T],
    ) -> T:
        """Run one operation under `deadline_s`; any failure becomes IndexUnavailable."""
        try:
            if self._remote is not None:
                result: T = await asyncio.wait_for(remote(self._remote), deadline_s)
                return result
            if self._local is not None and self._local_thread is not None:
                client = self._local
                loop = asyncio.get_running_loop()
                # A call that times out while still queued behind another is cancelled before it
                # runs; one already running finishes on the thread, and its result is dropped.
                return await asyncio.wait_for(
                    loop.run_in_executor(self._local_thread, local, client), deadline_s
                )
        except Exception as error:
            # qdrant-client raises unrelated types: ResponseHandlingException (transport),
            # UnexpectedResponse (any non-2xx), ResourceExhaustedResponse (429, not an
            # ApiException), a raw JSONDecodeError for a non-JSON 2xx, pydantic errors, and
            # ValueError/RuntimeError in local mode; plus TimeoutError from our deadline.
            _log_failure(operation, error, self._collection)
            raise IndexUnavailable(
                f"Qdrant {operation} failed: {type(error).__name__}: {error}"[:500]
            ) from error
        raise IndexUnavailable(f"Qdrant {operation} called before start() or after close()")

    async def _ensure_collection_remote(self, client: AsyncQdrantClient) -> None:
        if await client.collection_exists(self._collection):
            return
        try:
            await client.create_collection(
                self._collection,
                vectors_config=self._vectors(),
                sparse_vectors_config=self._sparse_vectors(),
            )
        except Exception:
            # Another process may have created it between our check and our create.
            if not await client.collection_exists(self._collection):
                raise
        await client.create_payload_index(
            self._collection,
            field_name=ISRC_FIELD,
            field_schema=models.PayloadSchemaType.KEYWORD,
            wait=True,
        )

    def _ensure_collection_local(self, client: QdrantClient) -> None:
        # No payload index: local mode accepts it, warns, and ignores it (reference §1.2).
        if not client.collection_exists(self._collection):
            client.create_collection(
                self._collection,
                vectors_config=self._vectors(),
                sparse_vectors_config=self._sparse_vectors(),
            )

    def _vectors(self) -> dict[str, models.VectorParams]:
        dense = models.VectorParams(size=self._vector_size, distance=models.Distance.COSINE)
        return {self._dense: dense}

    def _sparse_vectors(self) -> dict[str, models.SparseVectorParams]:
        # No IDF modifier: the lexical vectors are unit vectors whose dot product is a cosine,
        # so its floor means the same in every collection, whatever its size (ADR 0030).
        return {self._lexical: models.SparseVectorParams()}


def payload_of(track: IndexedTrack) -> dict[str, Any]:
    """The point payload of design.md §4, exactly these keys."""
    return {
        "isrc": track.isrc.value,
        "trackId": track.track_id.value,
        "title": track.title,
        "artistNames": list(track.artist_names),
        "albumId": track.album_id.value if track.album_id is not None else None,
        "indexedAt": track.indexed_at.isoformat(),
    }


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def _track_of(payload: Mapping[str, Any]) -> IndexedTrack | None:
    """The track a point's payload describes, or None for another shape."""
    try:
        album_id = payload.get("albumId")
        return IndexedTrack(
            isrc=Isrc.parse(payload["isrc"]),
            track_id=CatalogId.parse(str(payload["trackId"])),
            title=str(payload.get("title") or ""),
            artist_names=tuple(str(name) for name in payload.get("artistNames") or []),
            album_id=CatalogId.parse(str(album_id)) if album_id else None,
            indexed_at=datetime.fromisoformat(str(payload["indexedAt"])),
        )
    except (KeyError, TypeError, ValueError, DomainError):
        return None


def _hit_of(payload: Mapping[str, Any], score: float) -> TrackHit | None:
    try:
        artist_names = payload.get("artistNames") or []
        return TrackHit(
            isrc=Isrc.parse(payload["isrc"]),
            track_id=CatalogId.parse(str(payload["trackId"])),
            title=str(payload.get("title") or ""),
            artist_names=tuple(str(name) for name in artist_names),
            score=float(score),
        )
    except (KeyError, TypeError, DomainError):
        return None


def _canonical_point_id(point_id: object) -> str:
    # The server may answer a UUID in another textual form than the one we sent.
    try:
        return str(uuid.UUID(str(point_id)))
    except ValueError:
        return str(point_id)


def _is_missing_collection(error: BaseException) -> bool:
    return getattr(error, "status_code", None) == 404


def _log_failure(operation: str, error: BaseException, collection: str) -> None:
    source = getattr(error, "source", None)
    logger.warning(
        "qdrant.unavailable",
        operation=operation,
        collection=collection,
        error_type=type(error).__name__,
        cause_type=type(source).__name__ if source is not None else None,
        status_code=getattr(error, "status_code", None),
        error=str(error)[:200],
    )


def _lock_refused(error: RuntimeError) -> bool:
    """Whether opening local storage failed on its file lock (qdrant-client raises a bare
    RuntimeError from the lock's own error)."""
    import portalocker  # late, as qdrant-client imports it: it probes the filesystem on import

    return isinstance(error.__context__, portalocker.exceptions.LockException)

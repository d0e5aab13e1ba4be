"""The Catalog port over TIDAL's v2 JSON:API (https://openapi.tidal.com/v2).

An album or a playlist costs ceil(N/20) calls: `GET /albums/{id}?include=items,...` (or
`/playlists/{id}`) brings the first 20 items with their tracks (ISRCs included), and each
`links.next` brings 20 more once `include` is added back, since TIDAL's own next link drops it.
Tracks that a page lists but does not include are fetched with `GET /tracks?filter[id]=` in
batches of at most 20 and matched by id.

This is the one place that reads pages ahead of their consumer (ADR 0023): TIDAL is where the
wait is (a response, a turn at the shared pace), so the next page is on its way while the
consumer (the catalogue cache's write, the scheduler's write) handles this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import stamina
import structlog

from adapters.tidal.auth import ClientCredentials, ClientCredentialsTokens, TokenRequestFailed
from adapters.tidal.pace import MeteredPace, Pace, TokenBucketPace, retry_after_seconds
from adapters.tidal.parsing import (
    ALBUM_TYPE,
    PLAYLIST_TYPE,
    TRACK_TYPE,
    ItemRef,
    JsonObject,
    MalformedDocument,
    ResourceIndex,
    embedded_items,
    error_summaries,
    index_of,
    item_refs,
    next_link,
    parse_album,
    parse_json_api,
    parse_playlist,
    parse_track,
    resource_list,
    single_resource,
)
from application.ports.catalog import (
    AlbumPage,
    CatalogAlbum,
    CatalogItemNotFound,
    CatalogPlaylist,
    CatalogTrack,
    CatalogUnavailable,
    PlaylistPage,
)
from application.ports.metrics import CatalogPaceMetrics, NoMetrics
from domain.ingestion import chunked
from domain.values import CatalogId

logger = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://openapi.tidal.com/v2"
DEFAULT_AUTH_URL = "https://auth.tidal.com/v1/oauth2/token"
DEFAULT_COUNTRY_CODE = "US"
# Not documented by TIDAL; third-party clients and the page size of its collections say 20.
BATCH_SIZE = 20
# Artists ride along on the same calls, so names cost no extra request.
_ALBUM_INCLUDE = "items,items.artists,artists"
_ITEMS_INCLUDE = "items,items.artists"
_TRACK_INCLUDE = "artists,albums"
_BATCH_INCLUDE = "artists"
# A cursor chain longer than this is a server loop, not an album or a playlist (1,000 pages are
# 20,000 items).
_MAX_PAGES = 1_000
# Pages fetched ahead of the consumer. The consumer's handling of a page is short next to a TIDAL
# response, so the buffer fills only while it writes; bounded, so that a consumer that stops (a
# lost lease, a failure) has not asked TIDAL for much it will not use.
READ_AHEAD_PAGES = 4


_Header = TypeVar("_Header", CatalogAlbum, CatalogPlaylist)
_Page = TypeVar("_Page", AlbumPage, PlaylistPage)


@dataclass(frozen=True, slots=True)
class _PagedKind(Generic[_Header, _Page]):
    """A resource whose items come in pages of 20 (albums, playlists): where to read it, and
    how its header and pages are made."""

    name: str  # what CatalogItemNotFound calls it
    path: str  # the collection's path: /albums, /playlists
    resource_type: str
    include: str  # on the resource; the items endpoint takes _ITEMS_INCLUDE
    header: Callable[[JsonObject, ResourceIndex], _Header]
    page: Callable[[_Header, tuple[CatalogTrack, ...], int, bool, tuple[CatalogId, ...]], _Page]
    # Album items say where each track sits on the album; a playlist's items do not.
    positions_on_album: bool


_ALBUMS: _PagedKind[CatalogAlbum, AlbumPage] = _PagedKind(
    name="album",
    path="/albums",
    resource_type=ALBUM_TYPE,
    include=_ALBUM_INCLUDE,
    header=parse_album,
    page=lambda album, tracks, skipped, last, unavailable: AlbumPage(
        album, tracks, skipped, last, unavailable
    ),
    positions_on_album=True,
)
_PLAYLISTS: _PagedKind[CatalogPlaylist, PlaylistPage] = _PagedKind(
    name="playlist",
    path="/playlists",
    resource_type=PLAYLIST_TYPE,
    include=_ITEMS_INCLUDE,
    header=lambda resource, _: parse_playlist(resource),
    page=lambda playlist, tracks, skipped, last, unavailable: PlaylistPage(
        playlist, tracks, skipped, last, unavailable
    ),
    positions_on_album=False,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one request is tried before the catalogue reads as unavailable.

    `attempts` counts tries in all (1 = no retry). 5xx, timeouts and connection errors back off
    exponentially from `wait_initial` up to `wait_max` with up to `wait_jitter` of random jitter;
    a 429 waits its Retry-After (seconds or HTTP date) when present, else backs off the same way.
    A Retry-After longer than `longest_retry_after` gives up at once: the caller's job is
    retried later rather than holding a worker for minutes. `budget_seconds` caps the whole."""

    attempts: int = 4
    wait_initial: float = 0.5
    wait_max: float = 16.0
    wait_jitter: float = 0.5
    longest_retry_after: float = 60.0
    budget_seconds: float | None = 120.0


class _Retryable(Exception):
    """A failure worth another try: 429, 5xx, timeout, connection error."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _NotFound(Exception):
    pass


class _BadRequest(CatalogUnavailable):
    """TIDAL answered 400. A batch lookup splits on it; everywhere else it is unavailability."""


@contextlib.contextmanager
def _malformed_is_unavailable() -> Iterator[None]:
    try:
        yield
    except MalformedDocument as error:
        raise CatalogUnavailable(
            f"TIDAL sent a document that is not valid JSON:API: {error}"
        ) from error


class TidalCatalog:
    """The `Catalog` port against TIDAL's API, authenticated with OAuth2 client credentials.

    Every request is admitted by the `pace`, carries a timeout, and is retried per the
    `retry` policy; a 401 renews the shared token once. Raises only CatalogItemNotFound and
    CatalogUnavailable. Pass `http_client` to share a client (it is then not closed here), or
    `transport` to answer requests some other way (the offline sample catalogue does).
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        base_url: str = DEFAULT_BASE_URL,
        auth_url: str = DEFAULT_AUTH_URL,
        country_code: str = DEFAULT_COUNTRY_CODE,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        pace: Pace | None = None,
        retry: RetryPolicy | None = None,
        request_timeout: float = 10.0,
        token_refresh_margin: float = 60.0,
        metrics: CatalogPaceMetrics | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._country_code = country_code
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=request_timeout)
        self._metrics: CatalogPaceMetrics = metrics if metrics is not None else NoMetrics()
        self._pace: Pace = MeteredPace(
            pace if pace is not None else TokenBucketPace(), self._metrics
        )
        self._retry = retry or RetryPolicy()
        self._timeout = request_timeout
        self._tokens = ClientCredentialsTokens(
            self._http,
            auth_url,
            ClientCredentials(client_id, client_secret),
            timeout=request_timeout,
            refresh_margin=token_refresh_margin,
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> TidalCatalog:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the Catalog port ---------------------------------------------------------------------

    async def track(self, track_id: CatalogId) -> CatalogTrack:
        tid = str(track_id)
        document = await self._get(
            self._url(f"/tracks/{tid}", {"include": _TRACK_INCLUDE}), missing=("track", tid)
        )
        with _malformed_is_unavailable():
            return parse_track(single_resource(document, TRACK_TYPE, tid), index_of(document))

    async def tracks(self, track_ids: Sequence[CatalogId]) -> dict[CatalogId, CatalogTrack]:
        wanted = list(dict.fromkeys(str(track_id) for track_id in track_ids))
        index = await self._lookup_tracks(wanted)
        found: dict[CatalogId, CatalogTrack] = {}
        with _malformed_is_unavailable():
            for tid in wanted:
                resource = index.get(TRACK_TYPE, tid)
                if resource is not None:
                    found[CatalogId(tid)] = parse_track(resource, index)
        return found

    async def album_pages(self, album_id: CatalogId) -> AsyncIterator[AlbumPage]:
        """The album's pages, read up to READ_AHEAD_PAGES ahead of the consumer by a task of
        their own. A failure reaches the consumer after the pages before it; closing the stream
        stops the reading (and any turn at the pace being taken) before `aclose` returns."""
        pages = _read_ahead(self._pages(_ALBUMS, album_id), READ_AHEAD_PAGES)
        try:
            async for page in pages:
                yield page
        finally:
            await pages.aclose()

    async def playlist_pages(self, playlist_id: CatalogId) -> AsyncIterator[PlaylistPage]:
        """The playlist's pages, read ahead exactly as an album's are."""
        pages = _read_ahead(self._pages(_PLAYLISTS, playlist_id), READ_AHEAD_PAGES)
        try:
            async for page in pages:
                yield page
        finally:
            await pages.aclose()

    async def _pages(
        self, kind: _PagedKind[_Header, _Page], item_id: CatalogId
    ) -> AsyncGenerator[_Page, None]:
        iid = str(item_id)
        missing = (kind.name, iid)
        document = await self._get(
            self._url(f"{kind.path}/{iid}", {"include": kind.include}), missing=missing
        )
        with _malformed_is_unavailable():
            index = index_of(document)
            resource = single_resource(document, kind.resource_type, iid)
            header = kind.header(resource, index)
            first_page = embedded_items(resource)
        if first_page is None:
            # The relationship came without data: read the items from their own endpoint.
            document = await self._get(
                self._url(f"{kind.path}/{iid}/relationships/items", {"include": _ITEMS_INCLUDE}),
                missing=missing,
                opens_item=False,
            )
            index, refs, link = self._items_page(document)
        else:
            refs, link = first_page
        followed: set[str] = set()
        # The pages still to follow, by the item's own count of items (TIDAL pages by 20).
        expected_follow_ups = max(0, math.ceil((header.number_of_items or 0) / BATCH_SIZE) - 1)
        permit: asyncio.Task[None] | None = None
        try:
            while True:
                tracks, skipped, unavailable = await self._page_tracks(kind, refs, index, item_id)
                yield kind.page(header, tracks, skipped, link is None, unavailable)
                if link is None:
                    return
                if link in followed or len(followed) >= _MAX_PAGES:
                    raise CatalogUnavailable(f"the items of {kind.name} {iid} page in a loop")
                followed.add(link)
                this_permit, permit = permit, None
                request = self._get(
                    self._link_url(link, _ITEMS_INCLUDE),
                    missing=missing,
                    permit=this_permit,
                    opens_item=False,
                )
                if len(followed) < expected_follow_ups:
                    # The next page's turn at the pace is taken while this page is in flight,
                    # not after it arrives: a shared pace costs a database transaction, on
                    # the path of every page otherwise (bench/). Only when the item says
                    # there is a next page, so that no turn is taken for nothing.
                    permit = asyncio.create_task(self._pace.acquire(opens_item=False))
                document = await request
                index, refs, link = self._items_page(document)
        finally:
            if permit is not None:
                permit.cancel()
                await asyncio.wait([permit])

    # -- pages of items --------------------------------------------------------------------------

    @staticmethod
    def _items_page(document: JsonObject) -> tuple[ResourceIndex, list[ItemRef], str | None]:
        with _malformed_is_unavailable():
            return (
                index_of(document),
                item_refs(document.get("data")),
                next_link(document.get("links")),
            )

    async def _page_tracks(
        self,
        kind: _PagedKind[_Header, _Page],
        refs: Sequence[ItemRef],
        index: ResourceIndex,
        item_id: CatalogId,
    ) -> tuple[tuple[CatalogTrack, ...], int, tuple[CatalogId, ...]]:
        """The page's tracks in item order, how many items were skipped (videos and any other
        non-track type, plus tracks TIDAL could not give even by id), and those tracks' ids."""
        names = {f"{kind.name}_id": str(item_id)}
        track_refs = [ref for ref in refs if ref.is_track]
        skipped = len(refs) - len(track_refs)
        if skipped:
            logger.info(f"tidal.{kind.name}_items_skipped", **names, non_tracks=skipped)
        absent = [ref.id for ref in track_refs if index.get(TRACK_TYPE, ref.id) is None]
        if absent:
            logger.info(f"tidal.{kind.name}_tracks_not_included", **names, count=len(absent))
            index.add(await self._lookup_resources(absent))
        tracks = []
        unavailable: list[CatalogId] = []
        with _malformed_is_unavailable():
            for ref in track_refs:
                resource = index.get(TRACK_TYPE, ref.id)
                if resource is None:
                    logger.warning(f"tidal.{kind.name}_track_unresolved", **names, track_id=ref.id)
                    skipped += 1
                    unavailable.append(CatalogId(ref.id))
                    continue
                if kind.positions_on_album:
                    track = parse_track(resource, index, album_id=item_id, position=ref)
                else:
                    track = parse_track(resource, index)
                tracks.append(track)
        return tuple(tracks), skipped, tuple(unavailable)

    # -- batch lookups ------------------------------------------------------------------------

    async def _lookup_tracks(self, track_ids: Sequence[str]) -> ResourceIndex:
        index = ResourceIndex()
        index.add(await self._lookup_resources(track_ids))
        return index

    async def _lookup_resources(self, track_ids: Sequence[str]) -> list[Any]:
        """Track resources and their included artists, for ids in batches of at most 20.
        Unknown ids are simply absent, as TIDAL omits them."""
        resources: list[Any] = []
        for batch in chunked(track_ids, BATCH_SIZE):
            resources.extend(await self._lookup_batch(batch))
        return resources

    async def _lookup_batch(self, track_ids: Sequence[str]) -> list[Any]:
        url = self._url("/tracks", {"filter[id]": list(track_ids), "include": _BATCH_INCLUDE})
        try:
            document = await self._get(url, missing=None)
        except _BadRequest:
            # TIDAL documents no batch limit; a 400 may mean "too many" or one bad id, so halve
            # until the culprit stands alone and drop it.
            if len(track_ids) == 1:
                logger.warning("tidal.track_lookup_rejected", track_id=track_ids[0])
                return []
            half = len(track_ids) // 2
            return [
                *await self._lookup_batch(track_ids[:half]),
                *await self._lookup_batch(track_ids[half:]),
            ]
        resources: list[Any] = []
        followed: set[str] = set()
        while True:
            with _malformed_is_unavailable():
                resources.extend(resource_list(document))
                resources.extend(document.get("included", []))
                link = next_link(document.get("links"))
            if link is None or link in followed or len(followed) >= _MAX_PAGES:
                return resources
            followed.add(link)
            document = await self._get(self._link_url(link, _BATCH_INCLUDE), missing=None)

    # -- HTTP ---------------------------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, str | list[str]]) -> httpx.URL:
        return httpx.URL(
            self._base_url + path, params={"countryCode": self._country_code, **params}
        )

    def _link_url(self, link: str, include: str) -> httpx.URL:
        """A `links.next` as a URL. It is relative to the API base, which has a path of its own
        (`/v2`), so it is appended to the base, never resolved against the host."""
        if link.startswith("/"):
            url = httpx.URL(self._base_url + link)
        elif link.startswith(self._base_url + "/"):
            url = httpx.URL(link)
        else:
            # Never send the bearer token to a host the configuration did not name.
            raise CatalogUnavailable("TIDAL sent a next link outside its API")
        url = url.copy_set_param("include", include)
        if "countryCode" not in url.params:
            url = url.copy_set_param("countryCode", self._country_code)
        return url

    async def _get(
        self,
        url: httpx.URL,
        *,
        missing: tuple[str, str] | None,
        permit: asyncio.Task[None] | None = None,
        opens_item: bool = True,
    ) -> JsonObject:
        """GET a JSON:API document with retries. `missing` names what a 404 means; without it
        a 404 reads as an empty collection. `permit`, when given, is a turn at the pace already
        being taken for the first attempt; retries take their own. `opens_item` is false for
        the later pages of an album, which the pace lets a newly added item's first request
        overtake (ADR 0028)."""
        policy = self._retry
        try:
            async for attempt in stamina.retry_context(
                on=self._backoff_for,
                attempts=policy.attempts,
                timeout=policy.budget_seconds,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with attempt:
                    first_permit, permit = permit, None
                    return await self._get_once(url, first_permit, opens_item)
        except _NotFound as error:
            if missing is None:
                return {"data": [], "links": {}}
            raise CatalogItemNotFound(*missing) from error
        except _Retryable as error:
            raise CatalogUnavailable(f"TIDAL is unavailable: {error}") from error
        except TokenRequestFailed as error:
            raise CatalogUnavailable(f"no TIDAL access token: {error}") from error
        raise AssertionError("stamina ends with a return or an exception")

    def _backoff_for(self, error: Exception) -> bool | float:
        """stamina's backoff hook: whether to retry, and, for a 429 with Retry-After, how long."""
        if isinstance(error, TokenRequestFailed):
            return error.transient
        if not isinstance(error, _Retryable):
            return False
        if error.retry_after is None:
            return True
        if error.retry_after > self._retry.longest_retry_after:
            return False
        return error.retry_after

    async def _get_once(
        self, url: httpx.URL, permit: asyncio.Task[None] | None, opens_item: bool
    ) -> JsonObject:
        token = await self._tokens.current()
        response = await self._send(url, token, permit, opens_item=opens_item)
        if response.status_code == 401:
            # Expired or revoked: renew once (shared with every request that saw the same
            # token rejected), then give up, since a fresh token being refused is not transient.
            response = await self._send(url, await self._tokens.renew(token), opens_item=opens_item)
            if response.status_code == 401:
                raise CatalogUnavailable("TIDAL refused a freshly issued access token")
        return self._document(response)

    async def _send(
        self,
        url: httpx.URL,
        token: str,
        permit: asyncio.Task[None] | None = None,
        *,
        opens_item: bool,
    ) -> httpx.Response:
        if permit is None:
            await self._pace.acquire(opens_item=opens_item)
        else:
            await permit
        started = time.monotonic()
        try:
            response = await self._http.get(
                url,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.api+json"},
                timeout=self._timeout,
            )
        except httpx.TimeoutException as error:
            self._log_request(url, "timeout", started)
            raise _Retryable(f"{url.path} timed out") from error
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            self._log_request(url, type(error).__name__, started)
            raise _Retryable(f"{url.path} failed: {type(error).__name__}") from error
        self._log_request(url, response.status_code, started)
        if response.status_code == 429:
            self._metrics.catalog_rate_limited()
        self._pace.observe(response.headers)
        return response

    @staticmethod
    def _log_request(url: httpx.URL, status: int | str, started: float) -> None:
        logger.info(
            "tidal.request",
            method="GET",
            path=url.path,
            status=status,
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )

    @staticmethod
    def _document(response: httpx.Response) -> JsonObject:
        status = response.status_code
        if status == 200:
            try:
                return parse_json_api(response.json())
            except (ValueError, MalformedDocument) as error:
                raise CatalogUnavailable("TIDAL sent a body that is not JSON:API") from error
        details = _error_details(response)
        if status == 404:
            raise _NotFound(details)
        if status == 400:
            raise _BadRequest(f"TIDAL rejected the request (400): {details}")
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            raise _Retryable(f"{response.url.path} answered {status}", retry_after)
        raise CatalogUnavailable(f"TIDAL answered {status}: {details}")


def _error_details(response: httpx.Response) -> str:
    try:
        return "; ".join(error_summaries(response.json()))
    except ValueError:
        return ""


async def _read_ahead(pages: AsyncGenerator[_Page, None], size: int) -> AsyncGenerator[_Page, None]:
    """`pages`, consumed by a task of their own up to `size` pages ahead of the caller. The
    exception that ends `pages` is raised to the caller in order, after the pages before it.
    However the caller leaves (the end, an error, `aclose`, cancellation), the task is
    cancelled and awaited, and `pages` closed inside it, before this generator finishes."""
    buffer: asyncio.Queue[_Page | Exception | None] = asyncio.Queue(maxsize=size)

    async def fill() -> None:
        try:
            async for page in pages:
                await buffer.put(page)
        except Exception as error:  # the caller's to judge, after the pages before it
            await buffer.put(error)
            return
        finally:
            await pages.aclose()
        await buffer.put(None)

    filler = asyncio.create_task(fill(), name="tidal-read-ahead")
    try:
        while (got := await buffer.get()) is not None:
            if isinstance(got, Exception):
                raise got
            yield got
    finally:
        filler.cancel()
        # Waiting, not just cancelling, is what keeps the task from outliving the stream;
        # asyncio.wait neither raises its outcome nor cancels it a second time.
        await asyncio.wait({filler})

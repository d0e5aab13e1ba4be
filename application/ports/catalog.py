"""The music catalogue (TIDAL): tracks with their ISRCs, albums and playlists as streams of
pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from application.errors import DependencyUnavailable
from domain.errors import DomainError
from domain.values import CatalogId, Isrc, UserId

# Whom the catalogue is being read for. The scheduler sets it around each item's reads; a
# metered catalogue (TIDAL's pace) shares its slots fairly between them (ADR 0028). Tasks a
# catalogue starts (read-ahead) inherit it. None: nobody in particular.
READING_FOR: ContextVar[UserId | None] = ContextVar("catalogue_reading_for", default=None)


class CatalogItemNotFound(DomainError):
    """The track, album or playlist does not exist (in this country, or for this client).
    Permanent: do not retry."""

    def __init__(self, kind: str, catalog_id: str) -> None:
        super().__init__(f"{kind} {catalog_id} is not in the catalogue")
        self.kind = kind
        self.catalog_id = catalog_id


class CatalogUnavailable(DependencyUnavailable):
    """The catalogue could not answer now (timeouts, 5xx, 429 past the retry budget, a body
    that is not what the contract says). Transient: retry later."""


@dataclass(frozen=True, slots=True)
class CatalogTrack:
    catalog_id: CatalogId
    isrc: Isrc | None  # None when the catalogue gave none, or one that is not a valid ISRC
    title: str
    version: str | None = None
    artist_names: tuple[str, ...] = ()
    album_id: CatalogId | None = None
    volume_number: int | None = None
    track_number: int | None = None
    duration_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class CatalogAlbum:
    catalog_id: CatalogId
    title: str
    artist_names: tuple[str, ...] = ()
    number_of_items: int | None = None


@dataclass(frozen=True, slots=True)
class AlbumPage:
    """One page of an album's items, in album order. `album` is the header, known from the
    first page on. `skipped_items` counts items that are not tracks (videos) on this page."""

    album: CatalogAlbum
    tracks: tuple[CatalogTrack, ...]
    skipped_items: int = 0
    is_last: bool = False
    # Tracks the page lists that the catalogue could not give (counted in `skipped_items`).
    unavailable: tuple[CatalogId, ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogPlaylist:
    catalog_id: CatalogId  # a UUID (ADR 0027)
    title: str  # TIDAL's `name`
    number_of_items: int | None = None  # tracks and videos together


@dataclass(frozen=True, slots=True)
class PlaylistPage:
    """One page of a playlist's items, in playlist order. `playlist` is the header, known from
    the first page on. `skipped_items` counts items on this page that are not tracks (videos)
    or that the catalogue could not give. A track may appear on several pages (a playlist may
    repeat it); its `album_id` is its own album when the catalogue says so, else None."""

    playlist: CatalogPlaylist
    tracks: tuple[CatalogTrack, ...]
    skipped_items: int = 0
    is_last: bool = False
    # Tracks the page lists that the catalogue could not give (counted in `skipped_items`).
    unavailable: tuple[CatalogId, ...] = ()


class Catalog(Protocol):
    """Read-only and idempotent. Raises CatalogItemNotFound (permanent) or CatalogUnavailable
    (transient); never a library's own exception."""

    async def track(self, track_id: CatalogId) -> CatalogTrack: ...

    def album_pages(self, album_id: CatalogId) -> AsyncIterator[AlbumPage]:
        """The album's tracks page by page, each yielded as soon as it arrives, so that work
        can start on the first page while the next is fetched. At least one page is yielded
        for an album that exists; the last one says so (`is_last`). A source that makes the
        consumer wait (TIDAL) may read a few pages ahead (ADR 0023); closing the stream
        (`aclose`) stops that before it returns."""
        ...

    def playlist_pages(self, playlist_id: CatalogId) -> AsyncIterator[PlaylistPage]:
        """The playlist's tracks page by page, as it is now (a playlist changes: every call
        reads it afresh, never from a copy kept since an earlier call), each page yielded as
        soon as it arrives. The same promises as `album_pages`: at least one page for a
        playlist that exists, the last one marked `is_last`, read-ahead bounded and stopped by
        `aclose`; CatalogItemNotFound("playlist", id) for a playlist the catalogue does not
        hold."""
        ...

    async def tracks(self, track_ids: Sequence[CatalogId]) -> dict[CatalogId, CatalogTrack]:
        """Batch lookup; ids the catalogue does not know are absent from the answer."""
        ...

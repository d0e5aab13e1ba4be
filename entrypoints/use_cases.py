"""The use cases the transports call, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from application.use_cases.add_album_to_library import AddAlbumToLibrary
from application.use_cases.add_playlist_to_library import AddPlaylistToLibrary
from application.use_cases.add_track_to_library import AddTrackToLibrary
from application.use_cases.get_ingestion_progress import GetIngestionProgress
from application.use_cases.get_library_item import GetLibraryItem
from application.use_cases.list_library import ListLibrary
from application.use_cases.remove_from_library import RemoveFromLibrary
from application.use_cases.retry_ingestion import RetryIngestion
from application.use_cases.search_tracks import SearchTracks
from application.use_cases.watch_progress import WatchProgress


@dataclass(frozen=True, slots=True)
class LibraryUseCases:
    add_track: AddTrackToLibrary
    add_album: AddAlbumToLibrary
    add_playlist: AddPlaylistToLibrary
    remove: RemoveFromLibrary
    list_library: ListLibrary
    get_item: GetLibraryItem
    progress: GetIngestionProgress
    search: SearchTracks
    retry: RetryIngestion
    watch: WatchProgress

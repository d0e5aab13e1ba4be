"""The rows the volume section (bench/data_volume.py) loads with COPY: background users' items,
their scheduling jobs and track links, the ISRC ledger and the catalogue cache, shaped like a
music service's database after a year, plus the probe user whose requests are measured.

Background item `i` (0, 1, 2, ...) decides everything about itself, so a level is loaded as the
range of items it adds to the one before. Per 100,000 items, the last 10,000 belong to one heavy
user; the others to users of 9 items each (at 1,000,000 items: 100,000 users, 10 of them with
10,000 items). One item in ten is an album of 10 tracks. Two ledger rows per item, one cached
album per five items with its 10 tracks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

BLOCK = 100_000
HEAVY_ITEMS = 10_000
ITEMS_PER_USER = 9
TRACKS_PER_ALBUM = 10
CACHED_ALBUM_EVERY = 5
LEDGER_PER_ITEM = 2
YEAR = timedelta(days=365)

PROBE_USER = "probe"
PROBE_ITEMS = 1_000
PROBE_ALBUM_TRACKS = 500
PROBE_PENDING_JOBS = 10


def background_user(i: int) -> str:
    block, offset = divmod(i, BLOCK)
    if offset >= BLOCK - HEAVY_ITEMS:
        return f"heavy-{block}"
    return f"user-{(block * (BLOCK - HEAVY_ITEMS) + offset) // ITEMS_PER_USER}"


def heavy_users(items: int) -> list[str]:
    """The heavy users that `items` background items hold in full."""
    return [f"heavy-{block}" for block in range(items // BLOCK)]


def isrc(prefix: str, n: int) -> str:
    return f"QZ{prefix}{n:07d}"


@dataclass
class Rows:
    """One COPY batch per table, in the order the foreign keys need."""

    items: list[tuple[object, ...]] = field(default_factory=list)
    jobs: list[tuple[object, ...]] = field(default_factory=list)
    links: list[tuple[object, ...]] = field(default_factory=list)
    ledger: list[tuple[object, ...]] = field(default_factory=list)
    albums: list[tuple[object, ...]] = field(default_factory=list)
    tracks: list[tuple[object, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(rows) for rows in vars(self).values())


ITEM_COLUMNS = ("id", "user_id", "kind", "catalog_id", "added_at", "title", "artist_names")
JOB_COLUMNS = (
    "library_item_id",
    "user_id",
    "status",
    "attempts",
    "run_after",
    "last_error",
    "created_at",
    "updated_at",
)
LINK_COLUMNS = ("library_item_id", "position", "track_id", "isrc")
LEDGER_COLUMNS = (
    "isrc",
    "state",
    "event_id",
    "track_id",
    "album_id",
    "library_item_id",
    "attempts",
    "requested_at",
    "dispatched_at",
    "indexed_at",
    "next_attempt_at",
    "last_error",
    "updated_at",
)
ALBUM_COLUMNS = (
    "album_id",
    "title",
    "artist_names",
    "number_of_items",
    "track_ids",
    "skipped_items",
    "complete",
    "fetched_at",
)
TRACK_COLUMNS = (
    "track_id",
    "isrc",
    "title",
    "version",
    "artist_names",
    "album_id",
    "volume_number",
    "track_number",
    "duration_seconds",
    "fetched_at",
)


def _ledger_row(
    code: str, n: int, item_id: uuid.UUID, track_id: str, now: datetime, at: datetime
) -> tuple[object, ...]:
    # Nearly everything is indexed; a few dispatched long ago (past the window), a few failed,
    # and one in a thousand waiting to be dispatched.
    if n % 1000 == 0:
        state, dispatched, indexed, next_attempt = (
            "requested",
            None,
            None,
            now - timedelta(seconds=n % 600),
        )
    elif n % 100 in (1, 2):
        state, dispatched, indexed, next_attempt = "dispatched", at, None, at
    elif n % 100 == 3:
        state, dispatched, indexed, next_attempt = "failed", at, None, at
    else:
        state, dispatched, indexed, next_attempt = "indexed", at, at, at
    value = isrc(code, n)
    return (
        value,
        state,
        f"track-ingestion-requested:{value}",
        track_id,
        None,
        item_id,
        1,
        at,
        dispatched,
        indexed,
        next_attempt,
        "failed for the bench" if state == "failed" else None,
        at,
    )


def background(start: int, end: int, *, total: int, now: datetime, chunk: int) -> Iterator[Rows]:
    """Background items start..end-1 (of `total` at the last level, which sets their dates)."""
    rows = Rows()
    first = now - YEAR
    step = YEAR / total
    for i in range(start, end):
        at = first + step * i
        user = background_user(i)
        item_id = uuid.uuid4()
        album = i % TRACKS_PER_ALBUM == 0
        catalog_id = str(1_000_000_000 + i)
        rows.items.append(
            (
                item_id,
                user,
                "album" if album else "track",
                catalog_id,
                at,
                f"Background {'album' if album else 'track'} {i}",
                [f"Artist {i % 5000}"],
            )
        )
        if i % 1000 == 7:  # one job in a thousand still due, each at its own time
            status, run_after, error = "pending", now - timedelta(seconds=1 + i % 3600), None
        elif i % 1000 == 13:
            status, run_after, error = "failed", at, "album not in the catalogue"
        else:
            status, run_after, error = "done", at, None
        rows.jobs.append((item_id, user, status, 1, run_after, error, at, at))
        for k in range(LEDGER_PER_ITEM):
            n = LEDGER_PER_ITEM * i + k
            rows.ledger.append(_ledger_row("BGR", n, item_id, str(5_000_000_000 + n), now, at))
        for position in range(TRACKS_PER_ALBUM if album else 1):
            # Links name ledger rows already loaded: this item's own and earlier ones.
            n = (
                LEDGER_PER_ITEM * i + position
                if position < LEDGER_PER_ITEM
                else ((LEDGER_PER_ITEM * i + position * 104_729) % (LEDGER_PER_ITEM * (i + 1)))
            )
            rows.links.append((item_id, position, str(5_000_000_000 + n), isrc("BGR", n)))
        if i % CACHED_ALBUM_EVERY == 0:
            a = i // CACHED_ALBUM_EVERY
            album_id = str(3_000_000_000 + a)
            track_ids = [str(4_000_000_000 + a * TRACKS_PER_ALBUM + k) for k in range(10)]
            rows.albums.append(
                (album_id, f"Cached album {a}", [f"Artist {a % 5000}"], 10, track_ids, 0, True, at)
            )
            for k, track_id in enumerate(track_ids):
                rows.tracks.append(
                    (
                        track_id,
                        isrc("CAT", a * TRACKS_PER_ALBUM + k),
                        f"Cached track {k + 1}",
                        None,
                        [f"Artist {a % 5000}"],
                        album_id,
                        1,
                        k + 1,
                        200,
                        at,
                    )
                )
        if len(rows.items) >= chunk:
            yield rows
            rows = Rows()
    if rows.items:
        yield rows


@dataclass(frozen=True)
class Probe:
    """The probe user's library, loaded before the first measurement: 1,000 items, the oldest an
    album of 500 tracks, the rest single tracks; every job done but ten still due."""

    album_id: uuid.UUID
    track_item_id: uuid.UUID
    deep_cursor_position: tuple[datetime, uuid.UUID]  # the 950th newest item
    album_isrcs: tuple[str, ...]


def probe(now: datetime) -> tuple[Probe, Rows]:
    rows = Rows()
    ids = [uuid.uuid4() for _ in range(PROBE_ITEMS)]
    dates = [now - timedelta(days=30) + timedelta(minutes=n) for n in range(PROBE_ITEMS)]
    album_isrcs: list[str] = []
    for n, (item_id, at) in enumerate(zip(ids, dates, strict=True)):
        album = n == 0
        rows.items.append(
            (
                item_id,
                PROBE_USER,
                "album" if album else "track",
                str(9_000_000_000 + n),
                at,
                f"Probe {'album' if album else 'track'} {n}",
                ["Probe Artist"],
            )
        )
        due = n % (PROBE_ITEMS // PROBE_PENDING_JOBS) == 1
        run_after = now - timedelta(seconds=n) if due else at
        rows.jobs.append(
            (item_id, PROBE_USER, "pending" if due else "done", 1, run_after, None, at, at)
        )
        for position in range(PROBE_ALBUM_TRACKS if album else 1):
            k = position if album else PROBE_ALBUM_TRACKS + n
            value = isrc("PRB", k)
            if album:
                album_isrcs.append(value)
            rows.links.append((item_id, position, str(8_000_000_000 + k), value))
            rows.ledger.append(_ledger_row("PRB", k, item_id, str(8_000_000_000 + k), now, at))
    newest_first = sorted(zip(dates, ids, strict=True), reverse=True)
    return (
        Probe(
            album_id=ids[0],
            track_item_id=ids[PROBE_ITEMS // 2],
            deep_cursor_position=newest_first[949],
            album_isrcs=tuple(album_isrcs),
        ),
        rows,
    )


async def copy(connection: asyncpg.Connection, rows: Rows) -> None:
    """COPY each table's rows, in one transaction."""
    async with connection.transaction():
        for table, columns, records in (
            ("library_items", ITEM_COLUMNS, rows.items),
            ("scheduling_jobs", JOB_COLUMNS, rows.jobs),
            ("isrc_ledger", LEDGER_COLUMNS, rows.ledger),
            ("item_tracks", LINK_COLUMNS, rows.links),
            ("catalog_albums", ALBUM_COLUMNS, rows.albums),
            ("catalog_tracks", TRACK_COLUMNS, rows.tracks),
        ):
            if records:
                await connection.copy_records_to_table(table, records=records, columns=columns)


def at_now() -> datetime:
    return datetime.now(UTC)

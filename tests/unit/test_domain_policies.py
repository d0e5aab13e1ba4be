"""Properties of the scheduling policies: dedupe, chunked, filter_indexed, due_for_dispatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from domain.ingestion import (
    SCHEDULE_WINDOW,
    CandidateTrack,
    chunked,
    dedupe,
    due_for_dispatch,
    filter_indexed,
    idempotency_key,
)
from domain.values import CatalogId, Isrc

properties = settings(max_examples=150, deadline=None)

# A small pool of ISRCs so that generated albums repeat some of them.
ISRC_POOL = [Isrc(f"{country}RC1{n:07d}") for country in ("US", "GB", "SE") for n in range(8)]
isrcs = st.sampled_from(ISRC_POOL)
track_ids = st.integers(min_value=1, max_value=10**12).map(lambda n: CatalogId(str(n)))
candidates = st.builds(CandidateTrack, track_ids, st.none() | isrcs)
albums = st.lists(candidates, max_size=60)


# -- dedupe ------------------------------------------------------------------------------------


@properties
@given(albums)
def test_dedupe_keeps_at_most_one_track_per_isrc(album: list[CandidateTrack]) -> None:
    result = dedupe(album)
    kept = [track.isrc for track in result.unique]
    assert len(kept) == len(set(kept))
    assert all(isrc is not None for isrc in kept)
    assert set(kept) == {track.isrc for track in album if track.isrc is not None}


@properties
@given(albums)
def test_the_first_track_of_an_isrc_in_album_order_wins(album: list[CandidateTrack]) -> None:
    result = dedupe(album)
    first_of: dict[Isrc, int] = {}
    for position, track in enumerate(album):
        if track.isrc is not None:
            first_of.setdefault(track.isrc, position)
    winners = [album[position] for position in sorted(first_of.values())]
    assert list(result.unique) == winners


@properties
@given(albums)
def test_every_track_is_accounted_for_exactly_once(album: list[CandidateTrack]) -> None:
    result = dedupe(album)
    everything = [*result.unique, *result.without_isrc, *result.duplicates]
    assert sorted(map(id, everything)) == sorted(map(id, album))
    assert all(track.isrc is not None for track in result.duplicates)
    assert {track.isrc for track in result.duplicates} <= {track.isrc for track in result.unique}


@properties
@given(albums)
def test_tracks_without_an_isrc_are_reported_in_album_order(album: list[CandidateTrack]) -> None:
    result = dedupe(album)
    assert list(result.without_isrc) == [track for track in album if track.isrc is None]


def test_an_album_with_a_repeated_isrc_keeps_the_first_and_reports_the_rest() -> None:
    isrc = Isrc("USRC17607839")
    first, second = CandidateTrack(CatalogId("1"), isrc), CandidateTrack(CatalogId("2"), isrc)
    bare = CandidateTrack(CatalogId("3"), None)
    result = dedupe([first, bare, second])
    assert result.unique == (first,)
    assert result.without_isrc == (bare,)
    assert result.duplicates == (second,)


@properties
@given(albums, st.lists(st.integers(min_value=1, max_value=25), max_size=10))
def test_page_by_page_dedupe_with_a_shared_seen_set_equals_whole_album_dedupe(
    album: list[CandidateTrack], page_sizes: list[int]
) -> None:
    whole = dedupe(album)
    seen: set[Isrc] = set()
    unique: list[CandidateTrack] = []
    without: list[CandidateTrack] = []
    duplicates: list[CandidateTrack] = []
    start = 0
    for size in [*page_sizes, len(album)]:  # the last page takes whatever is left
        page = dedupe(album[start : start + size], seen)
        unique += page.unique
        without += page.without_isrc
        duplicates += page.duplicates
        start += size
    assert (tuple(unique), tuple(without), tuple(duplicates)) == (
        whole.unique,
        whole.without_isrc,
        whole.duplicates,
    )
    assert seen == {track.isrc for track in whole.unique}


@properties
@given(albums, st.sets(isrcs, max_size=5))
def test_isrcs_seen_on_earlier_pages_are_duplicates(
    album: list[CandidateTrack], earlier: set[Isrc]
) -> None:
    seen = set(earlier)
    result = dedupe(album, seen)
    assert not {track.isrc for track in result.unique} & earlier
    assert seen == earlier | {track.isrc for track in result.unique}


# -- chunked -----------------------------------------------------------------------------------


@properties
@given(st.lists(st.integers()), st.integers(min_value=1, max_value=30))
def test_chunks_concatenate_to_the_input_in_order_and_none_is_empty_or_too_big(
    items: list[int], size: int
) -> None:
    batches = list(chunked(items, size))
    assert [item for batch in batches for item in batch] == items
    assert all(1 <= len(batch) <= size for batch in batches)
    # Every batch but the last is full: the fewest batches possible.
    assert len(batches) == -(-len(items) // size)


def test_twenty_five_ids_make_a_batch_of_twenty_and_one_of_five() -> None:
    assert [len(batch) for batch in chunked(list(range(25)), 20)] == [20, 5]


def test_nothing_to_chunk_gives_no_batch() -> None:
    assert list(chunked([], 20)) == []


@pytest.mark.parametrize("size", [0, -1, -20])
def test_a_batch_size_below_one_is_refused(size: int) -> None:
    with pytest.raises(ValueError):
        list(chunked([1, 2, 3], size))


# -- filter_indexed ----------------------------------------------------------------------------


@properties
@given(st.lists(isrcs, max_size=30), st.sets(isrcs, max_size=30))
def test_the_index_filter_partitions_the_candidates(
    candidates_: list[Isrc], indexed: set[Isrc]
) -> None:
    result = filter_indexed(candidates_, indexed)
    assert list(result.to_schedule) == [isrc for isrc in candidates_ if isrc not in indexed]
    assert list(result.already_indexed) == [isrc for isrc in candidates_ if isrc in indexed]
    assert sorted(map(str, [*result.to_schedule, *result.already_indexed])) == sorted(
        map(str, candidates_)
    )


@properties
@given(st.lists(isrcs, max_size=30))
def test_an_unavailable_index_schedules_every_candidate(candidates_: list[Isrc]) -> None:
    result = filter_indexed(candidates_, None)
    assert list(result.to_schedule) == candidates_
    assert result.already_indexed == ()


def test_an_index_that_holds_nothing_is_not_the_same_as_an_unavailable_one() -> None:
    isrc = Isrc("USRC17607839")
    assert filter_indexed([isrc], set()).to_schedule == (isrc,)
    assert filter_indexed([isrc], {isrc}).to_schedule == ()
    assert filter_indexed([isrc], None).to_schedule == (isrc,)


# -- due_for_dispatch --------------------------------------------------------------------------
# The window rule itself: is_settled builds on it, and the PostgreSQL ledger's statements take
# its window start as a parameter (tests/unit/test_ledger_lifecycle.py, tests/integration/
# test_ledger_rules.py).

instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
offsets = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3))


@properties
@given(instants)
def test_a_request_never_dispatched_is_due(now: datetime) -> None:
    assert due_for_dispatch(None, now)


@properties
@given(instants, offsets)
def test_a_request_is_due_exactly_when_24_hours_have_passed(
    dispatched: datetime, elapsed: timedelta
) -> None:
    assert due_for_dispatch(dispatched, dispatched + elapsed) == (elapsed >= timedelta(hours=24))


@properties
@given(instants, offsets, offsets)
def test_once_due_a_request_stays_due_as_time_passes(
    dispatched: datetime, elapsed: timedelta, later: timedelta
) -> None:
    if due_for_dispatch(dispatched, dispatched + elapsed):
        assert due_for_dispatch(dispatched, dispatched + elapsed + later)


def test_the_window_boundary_is_exactly_24_hours() -> None:
    dispatched = datetime(2025, 3, 30, 0, 30, tzinfo=UTC)
    assert timedelta(hours=24) == SCHEDULE_WINDOW
    assert not due_for_dispatch(dispatched, dispatched + timedelta(hours=24, microseconds=-1))
    assert due_for_dispatch(dispatched, dispatched + timedelta(hours=24))


def test_a_dispatch_stamped_in_the_future_is_not_due() -> None:
    # A clock that stepped back must not cause a second dispatch.
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert not due_for_dispatch(now + timedelta(minutes=5), now)


def test_the_idempotency_key_is_namespaced_by_event_name() -> None:
    assert idempotency_key(Isrc.parse("us-rc1-76-07839")) == (
        "track-ingestion-requested:USRC17607839"
    )


# -- a page-by-page scheduler, against a plain-Python model -----------------------------------


class PageByPageScheduling(RuleBasedStateMachine):
    """Pages of one album's tracks arrive; each is deduplicated with the album's shared `seen`
    set, filtered by the index (which sometimes answers None: unavailable), and what survives is
    requested. The model is a plain list of every track that arrived."""

    @initialize()
    def start(self) -> None:
        self.seen: set[Isrc] = set()
        self.index: set[Isrc] = set()
        self.requested: list[Isrc] = []
        self.already_indexed: list[Isrc] = []
        self.skipped: list[CandidateTrack] = []
        self.arrived: list[CandidateTrack] = []  # the model

    @rule(isrc=isrcs)
    def another_service_indexes_a_track(self, isrc: Isrc) -> None:
        self.index.add(isrc)

    @rule(page=st.lists(candidates, max_size=20), index_available=st.booleans())
    def a_page_arrives(self, page: list[CandidateTrack], index_available: bool) -> None:
        self.arrived += page
        result = dedupe(page, self.seen)
        self.skipped += result.without_isrc
        answered = set(self.index) if index_available else None
        filtered = filter_indexed([track.isrc for track in result.unique if track.isrc], answered)
        self.requested += filtered.to_schedule
        self.already_indexed += filtered.already_indexed
        if not index_available:  # fail open: the page's new ISRCs are all requested
            assert list(filtered.to_schedule) == [track.isrc for track in result.unique]
        else:
            assert not set(filtered.to_schedule) & self.index

    @invariant()
    def each_isrc_is_requested_at_most_once(self) -> None:
        assert len(self.requested) == len(set(self.requested))

    @invariant()
    def no_isrc_with_a_track_is_lost(self) -> None:
        with_track = {track.isrc for track in self.arrived if track.isrc is not None}
        assert set(self.requested) | set(self.already_indexed) == with_track
        assert not set(self.requested) & set(self.already_indexed)

    @invariant()
    def only_what_the_index_holds_is_reported_as_indexed(self) -> None:
        assert set(self.already_indexed) <= self.index

    @invariant()
    def every_track_without_an_isrc_is_reported(self) -> None:
        assert self.skipped == [track for track in self.arrived if track.isrc is None]

    @invariant()
    def seen_is_exactly_the_isrcs_that_arrived(self) -> None:
        assert self.seen == {track.isrc for track in self.arrived if track.isrc is not None}


PageByPageScheduling.TestCase.settings = settings(
    max_examples=60, stateful_step_count=15, deadline=None
)
test_page_by_page_scheduling = PageByPageScheduling.TestCase

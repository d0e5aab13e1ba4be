"""The state a user sees of an item's ingestion, derived from its counts (design.md section 4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.library import IngestionProgress, IngestionState, SchedulingStatus, ingestion_state

properties = settings(max_examples=300, deadline=None)

counts = st.integers(min_value=0, max_value=200)


@st.composite
def consistent_progress(
    draw: st.DrawFn, scheduling: SchedulingStatus | None = None
) -> IngestionProgress:
    """Counts as the relay and the worker produce them: skipped + failed + requested-or-indexed
    tracks make up the total, and indexed tracks are among the requested-or-indexed ones."""
    skipped = draw(counts)
    failed = draw(counts)
    handled = draw(counts)  # requested, or found already indexed
    indexed = draw(st.integers(min_value=0, max_value=handled))
    requested = draw(st.integers(min_value=0, max_value=handled))
    return IngestionProgress(
        scheduling=scheduling or draw(st.sampled_from(SchedulingStatus)),
        tracks_total=skipped + failed + handled,
        tracks_requested=requested,
        tracks_indexed=indexed,
        tracks_skipped=skipped,
        tracks_failed=failed,
        last_error=draw(st.none() | st.text(max_size=20)),
    )


any_progress = st.builds(
    IngestionProgress,
    scheduling=st.sampled_from(SchedulingStatus),
    tracks_total=counts,
    tracks_requested=counts,
    tracks_indexed=counts,
    tracks_skipped=counts,
    tracks_failed=counts,
    last_error=st.none() | st.text(max_size=20),
)


def _expected(progress: IngestionProgress) -> IngestionState:
    """The rule, stated as a decision table rather than as the code's if-chain."""
    table = {
        SchedulingStatus.FAILED: IngestionState.FAILED,
        SchedulingStatus.PENDING: IngestionState.PENDING,
    }
    if progress.scheduling in table:
        return table[progress.scheduling]
    nothing_lost = progress.tracks_skipped == 0 and progress.tracks_failed == 0
    all_indexed = progress.tracks_indexed >= progress.tracks_total
    if nothing_lost and all_indexed:
        return IngestionState.INDEXED
    if nothing_lost:
        return IngestionState.SCHEDULED
    return IngestionState.PARTIAL


@properties
@given(st.one_of(any_progress, consistent_progress()))
def test_every_combination_of_counts_maps_to_the_state_of_the_rule(
    progress: IngestionProgress,
) -> None:
    assert ingestion_state(progress) is _expected(progress)
    assert progress.state is ingestion_state(progress)


@properties
@given(consistent_progress(SchedulingStatus.FAILED))
def test_a_job_that_gave_up_is_failed_whatever_the_counts(progress: IngestionProgress) -> None:
    assert progress.state is IngestionState.FAILED


@properties
@given(consistent_progress(SchedulingStatus.PENDING))
def test_an_unfinished_job_is_pending_whatever_the_counts(progress: IngestionProgress) -> None:
    assert progress.state is IngestionState.PENDING


@properties
@given(consistent_progress(SchedulingStatus.DONE))
def test_a_finished_job_is_indexed_iff_every_track_is_indexed_and_none_was_lost(
    progress: IngestionProgress,
) -> None:
    every_track_indexed = (
        progress.tracks_indexed == progress.tracks_total
        and progress.tracks_skipped == 0
        and progress.tracks_failed == 0
    )
    assert (progress.state is IngestionState.INDEXED) == every_track_indexed


@properties
@given(consistent_progress(SchedulingStatus.DONE))
def test_a_finished_job_with_a_skipped_or_failed_track_is_partial(
    progress: IngestionProgress,
) -> None:
    lost = progress.tracks_skipped + progress.tracks_failed > 0
    assert (progress.state is IngestionState.PARTIAL) == lost


@properties
@given(consistent_progress(SchedulingStatus.DONE))
def test_a_finished_job_never_goes_back_to_pending_or_failed(progress: IngestionProgress) -> None:
    assert progress.state in {
        IngestionState.SCHEDULED,
        IngestionState.PARTIAL,
        IngestionState.INDEXED,
    }


@pytest.mark.parametrize(
    ("progress", "state"),
    [
        (IngestionProgress(), IngestionState.PENDING),
        (
            IngestionProgress(
                SchedulingStatus.FAILED, last_error="album 42 is not in the catalogue"
            ),
            IngestionState.FAILED,
        ),
        (
            IngestionProgress(SchedulingStatus.DONE, 12, 12, 0, 0, 0),
            IngestionState.SCHEDULED,
        ),
        (
            IngestionProgress(SchedulingStatus.DONE, 12, 10, 5, 0, 0),
            IngestionState.SCHEDULED,
        ),
        (
            IngestionProgress(SchedulingStatus.DONE, 12, 12, 12, 0, 0),
            IngestionState.INDEXED,
        ),
        (
            IngestionProgress(SchedulingStatus.DONE, 12, 11, 11, 1, 0),
            IngestionState.PARTIAL,
        ),
        (
            IngestionProgress(SchedulingStatus.DONE, 12, 12, 11, 0, 1),
            IngestionState.PARTIAL,
        ),
        (
            IngestionProgress(SchedulingStatus.FAILED, 12, 12, 12, 0, 0),
            IngestionState.FAILED,
        ),
        # An album with no tracks has, vacuously, every track indexed.
        (IngestionProgress(SchedulingStatus.DONE, 0, 0, 0, 0, 0), IngestionState.INDEXED),
    ],
)
def test_examples_of_the_state_rule(progress: IngestionProgress, state: IngestionState) -> None:
    assert progress.state is state

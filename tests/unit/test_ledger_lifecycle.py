"""Properties of the ISRC ledger's lifecycle (domain/ingestion.py): which rows are settled, what a
request and each transition do to a row, and the promise they keep together: an ISRC is not
dispatched twice within the schedule window unless an operator reschedules it. The PostgreSQL
ledger runs these same rules (its statements take them as parameters); tests/integration/
test_ledger_rules.py checks that its SQL agrees with them row for row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.ingestion import (
    DEFER_DISPATCH,
    DISPATCH,
    MARK_FAILED,
    MARK_INDEXED,
    RECORD_INDEXED,
    RESCHEDULE_FAILED,
    RESCHEDULE_UNINDEXED,
    SCHEDULE_WINDOW,
    SETTLED_WITHIN_WINDOW,
    LedgerState,
    LedgerTransition,
    after_request,
    due_for_dispatch,
    is_settled,
    window_start,
)

properties = settings(max_examples=200, deadline=None)

TRANSITIONS = [
    DISPATCH,
    DEFER_DISPATCH,
    MARK_INDEXED,
    RECORD_INDEXED,
    MARK_FAILED,
    RESCHEDULE_FAILED,
    RESCHEDULE_UNINDEXED,
]
states = st.sampled_from(list(LedgerState))
rows = st.none() | states
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
# Around the window's edge too, where an off-by-one would hide.
ages = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)) | st.sampled_from(
    [SCHEDULE_WINDOW, SCHEDULE_WINDOW - timedelta(microseconds=1), SCHEDULE_WINDOW * 2]
)


@properties
@given(instants, st.none() | ages)
def test_an_isrc_not_in_the_ledger_is_never_settled(now: datetime, age: timedelta | None) -> None:
    assert not is_settled(None, None if age is None else now - age, now)


@properties
@given(states, instants, st.none() | ages)
def test_a_row_is_settled_unless_it_is_a_dispatch_the_window_let_go_of(
    state: LedgerState, now: datetime, age: timedelta | None
) -> None:
    dispatched_at = None if age is None else now - age
    if state in SETTLED_WITHIN_WINDOW:
        assert is_settled(state, dispatched_at, now) == (not due_for_dispatch(dispatched_at, now))
    else:
        assert is_settled(state, dispatched_at, now)


def test_only_a_dispatch_is_settled_for_a_window_and_the_window_is_inngests_24_hours() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert frozenset({LedgerState.DISPATCHED}) == SETTLED_WITHIN_WINDOW
    assert window_start(now) == now - timedelta(hours=24)
    assert not is_settled(LedgerState.DISPATCHED, window_start(now), now)
    assert is_settled(LedgerState.DISPATCHED, window_start(now) + timedelta(microseconds=1), now)


@properties
@given(rows, instants, st.none() | ages)
def test_a_request_leaves_a_settled_row_alone_and_records_any_other(
    state: LedgerState | None, now: datetime, age: timedelta | None
) -> None:
    dispatched_at = None if age is None else now - age
    after = after_request(state, dispatched_at, now)
    if is_settled(state, dispatched_at, now):
        assert after == state
    else:
        assert after is LedgerState.REQUESTED
    # Either way the ISRC is settled afterwards: a second request at once records nothing.
    assert is_settled(after, dispatched_at if after == state else None, now)


@given(st.sampled_from(TRANSITIONS))
def test_no_transition_takes_an_indexed_row_anywhere_else(transition: LedgerTransition) -> None:
    assert transition.applied_to(LedgerState.INDEXED) is LedgerState.INDEXED


@given(rows, st.sampled_from(TRANSITIONS))
def test_a_transition_moves_exactly_the_rows_in_its_sources(
    state: LedgerState | None, transition: LedgerTransition
) -> None:
    after = transition.applied_to(state)
    if state is None:
        assert after == (transition.target if transition.inserts else None)
    elif state in transition.sources:
        assert after is transition.target
    else:
        assert after is state


def test_a_failed_row_is_left_only_by_the_index_or_an_operator() -> None:
    leaving = {t for t in TRANSITIONS if t.applied_to(LedgerState.FAILED) != LedgerState.FAILED}
    assert leaving == {MARK_INDEXED, RECORD_INDEXED, RESCHEDULE_FAILED, RESCHEDULE_UNINDEXED}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert after_request(LedgerState.FAILED, None, now) is LedgerState.FAILED


def test_only_a_requested_row_is_dispatched() -> None:
    assert frozenset({LedgerState.REQUESTED}) == DISPATCH.sources
    assert DISPATCH.target is LedgerState.DISPATCHED
    assert not DISPATCH.inserts


class OneIsrcInTheLedger(RuleBasedStateMachine):
    """One ledger row driven by every rule at once, against the promise they keep: two
    dispatches with no reschedule between them are at least the window apart, and an indexed
    row stays indexed."""

    def __init__(self) -> None:
        super().__init__()
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.state: LedgerState | None = None
        self.dispatched_at: datetime | None = None
        self.last_dispatch: datetime | None = None  # since the last reschedule
        self.was_indexed = False

    def _move(self, transition: LedgerTransition) -> None:
        self.state = transition.applied_to(self.state)

    @rule(minutes=st.integers(min_value=1, max_value=36 * 60))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule()
    def a_job_asks_for_the_isrc(self) -> None:
        after = after_request(self.state, self.dispatched_at, self.now)
        if after != self.state:
            self.dispatched_at = None  # a renewed row starts again
        self.state = after

    @precondition(lambda self: self.state in DISPATCH.sources)
    @rule()
    def the_queue_accepts_its_event(self) -> None:
        if self.last_dispatch is not None:
            assert self.now - self.last_dispatch >= SCHEDULE_WINDOW
        self._move(DISPATCH)
        self.dispatched_at = self.last_dispatch = self.now

    @rule()
    def the_queue_refuses(self) -> None:
        self._move(DEFER_DISPATCH)

    @rule()
    def the_worker_indexes_it(self) -> None:
        self._move(MARK_INDEXED)

    @rule()
    def scheduling_finds_it_indexed(self) -> None:
        self._move(RECORD_INDEXED)

    @rule()
    def the_worker_gives_up(self) -> None:
        self._move(MARK_FAILED)

    @rule(everything_unindexed=st.booleans())
    def an_operator_reschedules(self, everything_unindexed: bool) -> None:
        before = self.state
        self._move(RESCHEDULE_UNINDEXED if everything_unindexed else RESCHEDULE_FAILED)
        if self.state != before:
            self.dispatched_at = self.last_dispatch = None

    @invariant()
    def an_indexed_row_stays_indexed(self) -> None:
        if self.was_indexed:
            assert self.state is LedgerState.INDEXED
        self.was_indexed = self.state is LedgerState.INDEXED


OneIsrcInTheLedger.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None
)
TestOneIsrcInTheLedger = OneIsrcInTheLedger.TestCase

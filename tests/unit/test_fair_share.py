"""Properties of the fair share of TIDAL's meter (domain/fair_share.py, ADR 0028): which waiting
items a claim starts, and which waiting request takes the next slot of the meter. The claim
query on PostgreSQL answers `claim_order` (tests/integration/test_fair_claim.py)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.fair_share import (
    MAX_OVERTAKES,
    TurnRequest,
    WaitingJob,
    after_turn,
    claim_order,
    next_turn,
)
from domain.values import LibraryItemId

properties = settings(max_examples=300, deadline=None)
START = datetime(2026, 12, 1, tzinfo=UTC)
USERS = ["a", "b", "c", "d"]


@st.composite
def waiting_jobs(draw: st.DrawFn) -> list[WaitingJob]:
    count = draw(st.integers(0, 30))
    jobs = []
    for _ in range(count):
        jobs.append(
            WaitingJob(
                item_id=LibraryItemId(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
                user_id=draw(st.sampled_from(USERS)),
                # Few distinct instants, so ties on arrival happen and the id must break them.
                enqueued_at=START + timedelta(seconds=draw(st.integers(0, 5))),
            )
        )
    return jobs


scheduling_counts = st.dictionaries(st.sampled_from(USERS), st.integers(0, 4))
caps = st.integers(1, 5)
limits = st.integers(0, 40)


@properties
@given(waiting_jobs(), scheduling_counts, caps, limits)
def test_a_claim_never_puts_a_user_past_the_cap(jobs, scheduling, cap, limit):
    claimed = claim_order(jobs, scheduling=scheduling, per_user_cap=cap, limit=limit)
    per_user = Counter(job.user_id for job in claimed)
    assert len(claimed) <= limit
    for user, count in per_user.items():
        assert scheduling.get(user, 0) + count <= cap


@properties
@given(waiting_jobs(), scheduling_counts, caps, limits)
def test_a_users_items_start_in_the_order_they_were_added(jobs, scheduling, cap, limit):
    claimed = claim_order(jobs, scheduling=scheduling, per_user_cap=cap, limit=limit)
    for user in USERS:
        own = [job for job in jobs if job.user_id == user]
        own.sort(key=lambda job: (job.enqueued_at, job.item_id))
        taken = [job for job in claimed if job.user_id == user]
        # The user's oldest ones, in their order: never a later one before an earlier one.
        assert taken == own[: len(taken)]


@properties
@given(waiting_jobs(), scheduling_counts, caps, limits)
def test_a_claim_is_work_conserving(jobs, scheduling, cap, limit):
    """It takes as many jobs as it may: the limit, or every job the cap lets start."""
    claimed = claim_order(jobs, scheduling=scheduling, per_user_cap=cap, limit=limit)
    waiting = Counter(job.user_id for job in jobs)
    startable = sum(
        max(0, min(count, cap - scheduling.get(user, 0))) for user, count in waiting.items()
    )
    assert len(claimed) == min(limit, startable)


@properties
@given(waiting_jobs(), scheduling_counts, caps)
def test_no_user_waits_behind_more_than_a_round_of_every_other_user(jobs, scheduling, cap):
    """A user below the cap gets a job within the first (users x cap) claimed, however many the
    others have waiting: a flood cannot starve anyone."""
    claimed = claim_order(jobs, scheduling=scheduling, per_user_cap=cap, limit=len(jobs))
    users = {job.user_id for job in jobs}
    for user in users:
        if scheduling.get(user, 0) >= cap:
            continue
        first = next(n for n, job in enumerate(claimed) if job.user_id == user)
        assert first < len(users) * cap


def test_a_newcomers_first_item_goes_before_a_floods_next_ones():
    flood = [
        WaitingJob(LibraryItemId(uuid.uuid4()), "flood", START + timedelta(seconds=n))
        for n in range(100)
    ]
    newcomer = WaitingJob(LibraryItemId(uuid.uuid4()), "newcomer", START + timedelta(hours=1))
    claimed = claim_order([*flood, newcomer], scheduling={"flood": 1}, per_user_cap=2, limit=1)
    assert claimed == [newcomer]


@st.composite
def turn_requests(draw: st.DrawFn) -> list[TurnRequest[str]]:
    count = draw(st.integers(1, 25))
    return [
        TurnRequest(
            requester=draw(st.sampled_from([*USERS, None])),
            opens_item=draw(st.booleans()),
            sequence=sequence,
        )
        for sequence in range(count)
    ]


def _served_in_order(waiting: list[TurnRequest[str]]) -> list[TurnRequest[str]]:
    last_served: dict[str | None, int] = {}
    order = []
    slot = 0
    while waiting:
        chosen = next_turn(waiting, last_served=last_served)
        order.append(chosen)
        last_served[chosen.requester] = slot
        slot += 1
        waiting = after_turn(waiting, chosen)
    return order


@properties
@given(turn_requests())
def test_every_waiting_request_gets_a_slot_once(requests):
    order = _served_in_order(list(requests))
    assert sorted(r.sequence for r in order) == [r.sequence for r in requests]


@properties
@given(turn_requests())
def test_a_requesters_requests_of_one_kind_keep_their_order(requests):
    order = _served_in_order(list(requests))
    for requester in [*USERS, None]:
        for opens in (True, False):
            own = [r.sequence for r in order if r.requester == requester and r.opens_item is opens]
            assert own == sorted(own)


@properties
@given(turn_requests())
def test_a_later_page_is_overtaken_by_at_most_max_overtakes_first_requests(requests):
    """First requests go before later pages, but never more than MAX_OVERTAKES of those that
    arrived after a page: then the page is overdue and goes first. No page starves."""
    order = _served_in_order(list(requests))
    for position, request in enumerate(order):
        if request.opens_item:
            continue
        overtakers = [r for r in order[:position] if r.opens_item and r.sequence > request.sequence]
        assert len(overtakers) <= MAX_OVERTAKES


@properties
@given(turn_requests(), st.sampled_from(USERS))
def test_a_newcomers_first_request_takes_the_next_slot(requests, newcomer):
    """A user's first request, arriving last behind any queue of other users' requests that
    have all been served before, takes the next slot (no page being overdue)."""
    others = [r for r in requests if r.requester != newcomer]
    last_served = {r.requester: n for n, r in enumerate(others)}
    arriving = TurnRequest(newcomer, True, len(requests))
    assert next_turn([*others, arriving], last_served=last_served) == arriving


def test_a_first_request_goes_before_the_later_pages_that_wait():
    waiting = [
        TurnRequest("flood", False, 0),
        TurnRequest("flood", False, 1),
        TurnRequest("newcomer", True, 2),
    ]
    assert next_turn(waiting, last_served={"flood": 10}).requester == "newcomer"


def test_among_first_requests_the_user_served_least_recently_goes_first():
    waiting = [TurnRequest("flood", True, 0), TurnRequest("newcomer", True, 1)]
    chosen = next_turn(waiting, last_served={"flood": 10, "newcomer": 3})
    assert chosen.requester == "newcomer"

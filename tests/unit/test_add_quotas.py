"""The add's quotas (ADR 0022): the token bucket as a pure rule with the time passed in, the
in-process buckets per user, and the add use case refusing what is over quota."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from adapters.memory.add_rate_limits import InProcessAddRateLimits
from application.errors import AddRateLimited, TooManyPendingAdds
from application.use_cases.add_album_to_library import AddAlbumToLibrary, AddAlbumToLibraryCommand
from application.use_cases.add_to_library import AddQuotas
from application.use_cases.add_track_to_library import AddTrackToLibrary, AddTrackToLibraryCommand
from domain.errors import InvalidCatalogId
from domain.quotas import RatePolicy, TokenBucket
from domain.values import UserId
from tests.unit.fakes import FakeClock, FakeLibraryAdditions, FakeSeconds, FakeStore

properties = settings(max_examples=200, deadline=None)
# Float arithmetic on seconds: what "at or after" means to these properties.
EPSILON = 1e-9

policies = st.builds(
    RatePolicy,
    per_second=st.floats(min_value=0.01, max_value=1000, allow_nan=False),
    burst=st.integers(min_value=1, max_value=200),
)
# Gaps between consecutive calls, many of them zero (a burst), some long (a pause).
gaps = st.lists(
    st.one_of(st.just(0.0), st.floats(min_value=0, max_value=5, allow_nan=False)), max_size=300
)


def _takes(policy: RatePolicy, start: float, gaps: list[float]) -> list[tuple[float, float]]:
    """(time, retry_after) of each take, from a full bucket at `start`, one take per gap."""
    bucket = TokenBucket.full(policy, at=start)
    at, answers = start, []
    for gap in gaps:
        at += gap
        bucket, retry_after = bucket.take(policy, at=at)
        answers.append((at, retry_after))
    return answers


@properties
@given(policy=policies, start=st.floats(min_value=0, max_value=1e6), gaps=gaps)
def test_no_window_grants_more_than_the_burst_plus_the_rate_times_its_length(
    policy: RatePolicy, start: float, gaps: list[float]
) -> None:
    answers = _takes(policy, start, gaps)
    granted = [at for at, retry_after in answers if retry_after == 0.0]
    for first in range(len(granted)):
        for last in range(first, len(granted)):
            allowed = policy.burst + policy.per_second * (granted[last] - granted[first])
            assert last - first + 1 <= allowed + EPSILON * max(1.0, allowed)


@properties
@given(policy=policies, start=st.floats(min_value=0, max_value=1e6))
def test_a_full_bucket_grants_exactly_the_burst_at_one_instant(
    policy: RatePolicy, start: float
) -> None:
    answers = _takes(policy, start, [0.0] * (policy.burst + 1))

    assert [retry_after == 0.0 for _, retry_after in answers] == [True] * policy.burst + [False]


@properties
@given(policy=policies, start=st.floats(min_value=0, max_value=1e6), gaps=gaps)
def test_a_refused_take_is_granted_once_its_retry_after_has_passed(
    policy: RatePolicy, start: float, gaps: list[float]
) -> None:
    bucket = TokenBucket.full(policy, at=start)
    at = start
    for gap in [*gaps, *([0.0] * (policy.burst + 1))]:  # ends refused whatever the gaps
        at += gap
        after, retry_after = bucket.take(policy, at=at)
        if retry_after > 0:
            assert after == TokenBucket(tokens=after.tokens, counted_at=at)  # nothing taken
            later = at + retry_after * (1 + EPSILON) + EPSILON
            assert after.take(policy, at=later)[1] == 0.0
        bucket = after


@properties
@given(
    policy=policies,
    start=st.floats(min_value=0, max_value=1e6),
    gaps=gaps,
    back=st.floats(min_value=0, max_value=100),
)
def test_a_clock_read_late_refills_nothing(
    policy: RatePolicy, start: float, gaps: list[float], back: float
) -> None:
    bucket = TokenBucket.full(policy, at=start)
    at = start
    for gap in gaps:
        at += gap
        bucket, _ = bucket.take(policy, at=at)

    late, _ = bucket.take(policy, at=at - back)
    on_time, _ = bucket.take(policy, at=at)

    assert late == on_time


@pytest.mark.parametrize(("per_second", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_policy_that_could_never_grant_is_refused(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        RatePolicy(per_second=per_second, burst=burst)


class PerUserBuckets(RuleBasedStateMachine):
    """The in-process limiter against a model: one pure bucket per user, never forgotten. With
    room for every user, the two must agree on every answer; with less room, the limiter may
    only ever be more lenient, never stricter, and never holds more than its room."""

    policy = RatePolicy(per_second=2.0, burst=3)
    users = [UserId(f"user-{n}") for n in range(6)]

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeSeconds(1000.0)
        room = len(self.users)
        self.roomy = InProcessAddRateLimits(self.policy, max_users=room, clock=self.clock)
        self.cramped = InProcessAddRateLimits(self.policy, max_users=2, clock=self.clock)
        self.model: dict[UserId, TokenBucket] = {}

    @rule(seconds=st.sampled_from([0.0, 0.1, 0.5, 1.0, 10.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(user=st.sampled_from(users))
    def user_adds(self, user: UserId) -> None:
        bucket = self.model.get(user) or TokenBucket.full(self.policy, at=self.clock.now)
        self.model[user], expected = bucket.take(self.policy, at=self.clock.now)

        assert self.roomy.take(user) == expected
        if expected == 0.0:
            assert self.cramped.take(user) == 0.0
        else:
            self.cramped.take(user)

    @invariant()
    def memory_is_bounded(self) -> None:
        assert len(self.cramped) <= 2
        assert len(self.roomy) <= len(self.users)


TestPerUserBuckets = PerUserBuckets.TestCase
TestPerUserBuckets.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)


def test_the_in_process_limiter_keeps_no_more_users_than_its_room() -> None:
    limits = InProcessAddRateLimits(RatePolicy(per_second=1, burst=1), max_users=100)

    for n in range(10_000):
        assert limits.take(UserId(f"user-{n}")) == 0.0

    assert len(limits) == 100


class FixedLimits:
    """An AddRateLimits that answers what it is told, and counts the tokens taken."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        self.taken = 0

    def take(self, user_id: UserId) -> float:
        self.taken += 1
        return self.retry_after


async def test_a_rate_limited_add_raises_with_its_retry_after_and_writes_nothing() -> None:
    store = FakeStore()
    quotas = AddQuotas(rate_limits=FixedLimits(retry_after=0.25), max_pending=1000)
    add = AddAlbumToLibrary(FakeLibraryAdditions(store), FakeClock(), quotas)

    with pytest.raises(AddRateLimited) as refused:
        await add(AddAlbumToLibraryCommand("alice", "123"))

    assert refused.value.retry_after_seconds == 0.25
    assert (store.items, store.jobs, store.commits) == ({}, {}, 0)


async def test_a_malformed_catalogue_id_costs_no_token() -> None:
    limits = FixedLimits(retry_after=0.0)
    add = AddTrackToLibrary(
        FakeLibraryAdditions(FakeStore()), FakeClock(), AddQuotas(limits, max_pending=1000)
    )

    with pytest.raises(InvalidCatalogId):
        await add(AddTrackToLibraryCommand("alice", "not-digits"))

    assert limits.taken == 0


async def test_an_add_past_the_pending_cap_raises_and_writes_nothing() -> None:
    store = FakeStore()
    add = AddAlbumToLibrary(
        FakeLibraryAdditions(store), FakeClock(), AddQuotas(FixedLimits(0.0), max_pending=2)
    )
    await add(AddAlbumToLibraryCommand("alice", "1"))
    await add(AddAlbumToLibraryCommand("alice", "2"))
    items_before = dict(store.items)

    with pytest.raises(TooManyPendingAdds):
        await add(AddAlbumToLibraryCommand("alice", "3"))

    assert store.items == items_before
    # Another user has a cap of their own.
    assert not (await add(AddAlbumToLibraryCommand("bob", "3"))).already_in_library

"""How TIDAL's meter is shared between users (ADR 0028), as two pure rules.

The meter, not the service, is the limit: about one catalogue request every few seconds for
every user together. Two choices decide who waits:

- **Which items start** (`claim_order`, the relay's claim): round-robin between users. A user's
  waiting items keep their arrival order; the k-th of them has the turn `scheduling + k`, where
  `scheduling` is how many of that user's items are under way already, and turns are served
  lowest first, arrival breaking ties. A user never has more than `per_user_cap` items under
  way, so one user's flood leaves room for everyone else's first item.
- **Which request takes the next free slot of the meter** (`next_turn`, the pace): the first
  request of an item goes before the later pages of items under way, so a newly added item
  starts within a slot or two whatever is queued; among requests of one kind, the user served
  least recently goes first, and one user's requests of one kind keep their order. A later
  page that first requests have overtaken `MAX_OVERTAKES` times is overdue and goes before
  anything else, so no page waits for ever.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from domain.values import LibraryItemId

# How many items one user may have under way at once, by kind. Albums are streams of pages, so
# two keep the meter busy for their owner while leaving the others room. Track items are
# looked up 20 to a request (TIDAL's batch limit), so twenty are one request's worth.
ALBUMS_PER_USER = 2
TRACKS_PER_USER = 20
# How often a later page may be overtaken by first requests before it goes next.
MAX_OVERTAKES = 2

R = TypeVar("R", bound=Hashable)


@dataclass(frozen=True, slots=True)
class WaitingJob:
    """A job that is due and not leased: its item, the item's owner, and when it was added."""

    item_id: LibraryItemId
    user_id: str
    enqueued_at: datetime


def turn(position: int, scheduling: int) -> int:
    """A user's turn for the waiting job at `position` (0 for their oldest), with `scheduling`
    of their items already under way."""
    return scheduling + position


def claim_order(
    waiting: Sequence[WaitingJob],
    *,
    scheduling: Mapping[str, int],
    per_user_cap: int | None,
    limit: int,
) -> list[WaitingJob]:
    """The jobs a claim takes, in the order it takes them: at most `limit`, none that would put
    its user past `per_user_cap` items under way (`scheduling` counts them per user; None: no
    cap), lowest turn first, then oldest, then by item id (so the order is total)."""
    if limit <= 0:
        return []
    by_user: dict[str, list[WaitingJob]] = {}
    for job in sorted(waiting, key=_arrival):
        by_user.setdefault(job.user_id, []).append(job)
    eligible: list[tuple[int, WaitingJob]] = []
    for user_id, jobs in by_user.items():
        for position, job in enumerate(jobs):
            users_turn = turn(position, scheduling.get(user_id, 0))
            if per_user_cap is not None and users_turn >= per_user_cap:
                break
            eligible.append((users_turn, job))
    eligible.sort(key=lambda pair: (pair[0], *_arrival(pair[1])))
    return [job for _, job in eligible[:limit]]


def _arrival(job: WaitingJob) -> tuple[datetime, LibraryItemId]:
    return job.enqueued_at, job.item_id


@dataclass(frozen=True, slots=True)
class TurnRequest(Generic[R]):
    """One request waiting for a slot of the meter: whose it is (`requester`, None for nobody
    in particular), whether it opens an item (its first request) or follows a page of one under
    way, the order it arrived in, and how often a first request has overtaken it."""

    requester: R | None
    opens_item: bool
    sequence: int
    overtaken: int = 0


def next_turn(
    waiting: Sequence[TurnRequest[R]], *, last_served: Mapping[R | None, int]
) -> TurnRequest[R]:
    """The request that takes the next free slot. `last_served` holds, per requester, the
    number of the last slot it was given (absent: never served). `waiting` must not be empty."""
    if not waiting:
        raise ValueError("no request is waiting for the slot")

    def rank(request: TurnRequest[R]) -> tuple[int, int, int]:
        # An overdue page goes before everything, or it could be overtaken for ever.
        overdue = not request.opens_item and request.overtaken >= MAX_OVERTAKES
        kind = 0 if overdue else 1 if request.opens_item else 2
        return (kind, last_served.get(request.requester, -1), request.sequence)

    # A requester's own requests keep their order: only its oldest of each kind can be chosen.
    heads: dict[tuple[R | None, bool], TurnRequest[R]] = {}
    for request in sorted(waiting, key=lambda r: r.sequence):
        heads.setdefault((request.requester, request.opens_item), request)
    return min(heads.values(), key=rank)


def after_turn(waiting: Sequence[TurnRequest[R]], served: TurnRequest[R]) -> list[TurnRequest[R]]:
    """The requests still waiting once `served` took the slot: a later page that arrived
    before a first request that overtook it counts one more overtake."""
    left = []
    for request in waiting:
        if request == served:
            continue
        if served.opens_item and not request.opens_item and request.sequence < served.sequence:
            request = TurnRequest(
                request.requester, request.opens_item, request.sequence, request.overtaken + 1
            )
        left.append(request)
    return left

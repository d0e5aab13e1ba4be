"""The scheduling ports' contract: SchedulingJobs (the outbox seen from the relay: leased claims)
and IsrcLedger (one row per ISRC, moved by the domain's rules), both used through the unit of
work, so nothing is kept unless it commits.

The PostgreSQL adapters and the fakes of tests/unit/fakes.py run the same suite."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from application.ports.scheduling import ItemDescription, ItemTrackLink
from application.ports.unit_of_work import UnitOfWorkFactory
from domain.ingestion import IngestionRequest
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, CatalogIdForm, Isrc, LibraryItemId, UserId

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LEASE = timedelta(seconds=15)
A, B = "relay-a", "relay-b"


def item(number: int, *, kind: LibraryItemKind = LibraryItemKind.ALBUM) -> LibraryItem:
    """Item `number`, the same each time it is asked for: added `number` seconds after T0, so
    its job is due then."""
    return LibraryItem(
        id=LibraryItemId(uuid.UUID(int=number + 1)),
        user_id=UserId(f"user-{number}"),
        kind=kind,
        catalog_id=CatalogId(
            str(uuid.UUID(int=1_000 + number))
            if kind.id_form is CatalogIdForm.UUID
            else str(1_000 + number)
        ),
        added_at=T0 + timedelta(seconds=number),
    )


def request(number: int) -> IngestionRequest:
    return IngestionRequest(
        isrc=Isrc(f"QZCON26{number:05d}"),
        track_id=CatalogId(str(2_000 + number)),
        album_id=None,
        library_item_id=item(number).id,
    )


@dataclass
class SchedulingRig:
    """The adapters under test over one store: `uow` gives units of work with `jobs` and
    `ledger`; `add` stores an item with its pending job, due at the item's `added_at`, as the
    add does; `remove` removes an item, and its job with it."""

    uow: UnitOfWorkFactory
    add: Callable[[LibraryItem], Awaitable[None]]
    remove: Callable[[LibraryItem], Awaitable[None]]

    async def claim(
        self,
        worker: str,
        *,
        at: datetime,
        limit: int = 10,
        kinds: Collection[LibraryItemKind] | None = None,
    ) -> list[LibraryItemId]:
        async with self.uow() as uow:
            claimed = await uow.jobs.claim(
                worker=worker, limit=limit, lease=LEASE, now=at, kinds=kinds
            )
            await uow.commit()
        return [job.item_id for job in claimed]

    async def ours(
        self, worker: str, items: list[LibraryItem], *, at: datetime
    ) -> set[LibraryItemId]:
        async with self.uow() as uow:
            renewed = await uow.jobs.extend_leases(
                [each.id for each in items], worker=worker, lease=LEASE, now=at
            )
            await uow.commit()
        return renewed

    async def settled(self, *numbers: int, at: datetime) -> set[Isrc]:
        async with self.uow() as uow:
            return await uow.ledger.settled([request(n).isrc for n in numbers], now=at)

    async def dispatchable(self, *, at: datetime) -> list[Isrc]:
        async with self.uow() as uow:
            batch = await uow.ledger.claim_dispatchable(limit=100, now=at)
        return [each.isrc for each in batch.requests]


class SchedulingContract:
    """Subclass as `Test<Adapter>SchedulingContract` with one fixture: `scheduling`, a
    SchedulingRig over an empty store."""

    # -- jobs: re-syncs (ADR 0029) ----------------------------------------------------------------

    async def test_a_resync_puts_the_ended_jobs_of_its_kinds_back_as_new(
        self, scheduling: SchedulingRig
    ) -> None:
        playlist = item(1, kind=LibraryItemKind.PLAYLIST)
        failed = item(2, kind=LibraryItemKind.PLAYLIST)
        pending = item(3, kind=LibraryItemKind.PLAYLIST)
        album = item(4)
        for each in (playlist, failed, pending, album):
            await scheduling.add(each)
        at = T0 + timedelta(seconds=10)
        await scheduling.claim(A, at=at)
        async with scheduling.uow() as uow:
            await uow.jobs.finish([playlist.id, album.id], worker=A, now=at)
            await uow.jobs.give_up({failed.id: "gone"}, worker=A, now=at)
            await uow.jobs.release([pending.id], worker=A)
            await uow.commit()
        later = at + timedelta(hours=1)

        async with scheduling.uow() as uow:
            resynced = await uow.jobs.resync(None, kinds=[LibraryItemKind.PLAYLIST], now=later)
            await uow.commit()
        async with scheduling.uow() as uow:
            claimed = await uow.jobs.claim(worker=B, limit=10, lease=LEASE, now=later)
            await uow.commit()

        assert sorted(resynced) == sorted([playlist.id, failed.id])
        # Due again, their attempts counted afresh; the pending one as it was; not the album.
        assert {job.item_id: job.attempts for job in claimed} == {
            playlist.id: 1,
            failed.id: 1,
            pending.id: 2,
        }

    async def test_a_resync_asked_while_the_job_runs_puts_it_back_when_it_finishes(
        self, scheduling: SchedulingRig
    ) -> None:
        running, plain = (
            item(1, kind=LibraryItemKind.PLAYLIST),
            item(2, kind=LibraryItemKind.PLAYLIST),
        )
        for each in (running, plain):
            await scheduling.add(each)
        at = T0 + timedelta(seconds=10)
        await scheduling.claim(A, at=at)
        async with scheduling.uow() as uow:
            resynced = await uow.jobs.resync([running.id], kinds=[LibraryItemKind.PLAYLIST], now=at)
            await uow.commit()
        assert resynced == []  # still running: nothing to put back yet

        async with scheduling.uow() as uow:
            await uow.jobs.finish([running.id, plain.id], worker=A, now=at)
            await uow.commit()

        # The run may have read the changed part already: it is read again; the other is done.
        assert await scheduling.claim(B, at=at) == [running.id]

    async def test_a_resync_of_named_items_touches_no_other_and_keeps_nothing_uncommitted(
        self, scheduling: SchedulingRig
    ) -> None:
        named = item(1, kind=LibraryItemKind.PLAYLIST)
        other = item(2, kind=LibraryItemKind.PLAYLIST)
        for each in (named, other):
            await scheduling.add(each)
        at = T0 + timedelta(seconds=10)
        await scheduling.claim(A, at=at)
        async with scheduling.uow() as uow:
            await uow.jobs.finish([named.id, other.id], worker=A, now=at)
            await uow.commit()
        async with scheduling.uow() as uow:  # not committed: nothing changes
            await uow.jobs.resync([named.id], kinds=[LibraryItemKind.PLAYLIST], now=at)

        async with scheduling.uow() as uow:
            resynced = await uow.jobs.resync([named.id], kinds=[LibraryItemKind.PLAYLIST], now=at)
            await uow.commit()

        assert resynced == [named.id]
        assert await scheduling.claim(B, at=at) == [named.id]

    # -- jobs: claims and leases -----------------------------------------------------------------

    async def test_a_claim_takes_due_jobs_oldest_first_and_leases_them(
        self, scheduling: SchedulingRig
    ) -> None:
        items = [item(3), item(1), item(2), item(100)]  # the last is due only later
        for each in items:
            await scheduling.add(each)

        first = await scheduling.claim(A, at=T0 + timedelta(seconds=10), limit=2)
        second = await scheduling.claim(B, at=T0 + timedelta(seconds=10))

        assert first == [item(1).id, item(2).id]
        assert second == [item(3).id]  # the leased ones are no one else's

    async def test_a_claim_shares_jobs_between_users_and_caps_each_users_under_way(
        self, scheduling: SchedulingRig
    ) -> None:
        flood = [replace(item(n), user_id=UserId("flood")) for n in range(1, 5)]
        newcomer = item(9)
        for each in (*flood, newcomer):
            await scheduling.add(each)
        at = T0 + timedelta(seconds=10)

        async with scheduling.uow() as uow:
            first = await uow.jobs.claim(worker=A, limit=2, lease=LEASE, now=at, per_user_cap=2)
            await uow.commit()
        second = await scheduling.claim(B, at=at)  # no cap: the rest, still fairly ordered
        async with scheduling.uow() as uow:
            third = await uow.jobs.claim(worker=B, limit=9, lease=LEASE, now=at, per_user_cap=2)

        # The oldest flood item, then the newcomer's before the flood's second.
        assert [job.item_id for job in first] == [flood[0].id, newcomer.id]
        assert second == [flood[1].id, flood[2].id, flood[3].id]
        assert third == []

    async def test_a_claim_under_a_cap_takes_nothing_of_a_user_at_it(
        self, scheduling: SchedulingRig
    ) -> None:
        flood = [replace(item(n), user_id=UserId("flood")) for n in range(1, 5)]
        for each in flood:
            await scheduling.add(each)
        at = T0 + timedelta(seconds=10)

        async with scheduling.uow() as uow:
            first = await uow.jobs.claim(worker=A, limit=9, lease=LEASE, now=at, per_user_cap=2)
            await uow.commit()
        async with scheduling.uow() as uow:
            second = await uow.jobs.claim(worker=B, limit=9, lease=LEASE, now=at, per_user_cap=2)

        assert [job.item_id for job in first] == [flood[0].id, flood[1].id]
        assert second == []

    async def test_a_claimed_job_says_its_attempt_and_when_it_was_enqueued(
        self, scheduling: SchedulingRig
    ) -> None:
        await scheduling.add(item(1))

        async with scheduling.uow() as uow:
            (job,) = await uow.jobs.claim(worker=A, limit=1, lease=LEASE, now=T0 + LEASE)
            await uow.commit()

        assert (job.item_id, job.attempts, job.enqueued_at) == (item(1).id, 1, item(1).added_at)

    async def test_a_claim_of_a_kind_takes_only_jobs_of_that_kind(
        self, scheduling: SchedulingRig
    ) -> None:
        album, track = item(1), item(2, kind=LibraryItemKind.TRACK)
        await scheduling.add(album)
        await scheduling.add(track)

        tracks = await scheduling.claim(A, at=T0 + LEASE, kinds=[LibraryItemKind.TRACK])
        albums = await scheduling.claim(A, at=T0 + LEASE, kinds=[LibraryItemKind.ALBUM])

        assert (tracks, albums) == ([track.id], [album.id])

    async def test_a_claim_not_committed_leaves_the_job_to_others(
        self, scheduling: SchedulingRig
    ) -> None:
        await scheduling.add(item(1))
        async with scheduling.uow() as uow:
            await uow.jobs.claim(worker=A, limit=1, lease=LEASE, now=T0 + LEASE)

        assert await scheduling.claim(B, at=T0 + LEASE) == [item(1).id]

    async def test_a_lease_that_ran_out_goes_to_the_next_claimer_and_is_no_longer_ours(
        self, scheduling: SchedulingRig
    ) -> None:
        await scheduling.add(item(1))
        start = T0 + timedelta(seconds=2)
        await scheduling.claim(A, at=start)

        assert await scheduling.claim(B, at=start + LEASE - timedelta(seconds=1)) == []
        assert await scheduling.claim(B, at=start + LEASE + timedelta(seconds=1)) == [item(1).id]
        assert await scheduling.ours(A, [item(1)], at=start + LEASE * 2) == set()

    async def test_extending_leases_answers_the_jobs_still_ours(
        self, scheduling: SchedulingRig
    ) -> None:
        kept, removed, others = item(1), item(2), item(3)
        for each in (kept, removed, others):
            await scheduling.add(each)
        at = T0 + timedelta(seconds=5)
        await scheduling.claim(A, at=at, limit=2)
        await scheduling.claim(B, at=at)
        await scheduling.remove(removed)

        assert await scheduling.ours(A, [kept, removed, others], at=at) == {kept.id}
        # Renewed: no one else may claim it within the new lease.
        assert await scheduling.claim(B, at=at + LEASE - timedelta(seconds=1)) == []

    async def test_finished_and_given_up_jobs_are_never_claimed_again(
        self, scheduling: SchedulingRig
    ) -> None:
        done, failed, other = item(1), item(2), item(3)
        for each in (done, failed, other):
            await scheduling.add(each)
        at = T0 + timedelta(seconds=5)
        await scheduling.claim(A, at=at)

        async with scheduling.uow() as uow:
            await uow.jobs.finish([done.id], worker=A, now=at)
            await uow.jobs.give_up({failed.id: "not in the catalogue"}, worker=A, now=at)
            await uow.jobs.finish([other.id], worker=B, now=at)  # not B's: left alone
            await uow.commit()

        assert await scheduling.ours(A, [done, failed, other], at=at) == {other.id}
        later = at + LEASE * 10
        assert await scheduling.claim(B, at=later) == [other.id]

    async def test_a_failed_job_reopened_is_pending_due_and_claimed_afresh(
        self, scheduling: SchedulingRig
    ) -> None:
        failed, other_failed, done = item(1), item(2), item(3)
        for each in (failed, other_failed, done):
            await scheduling.add(each)
        at = T0 + timedelta(seconds=5)
        await scheduling.claim(A, at=at)
        async with scheduling.uow() as uow:
            await uow.jobs.give_up(
                {failed.id: "not in the catalogue", other_failed.id: "gone"}, worker=A, now=at
            )
            await uow.jobs.finish([done.id], worker=A, now=at)
            await uow.commit()

        later = at + timedelta(minutes=1)
        async with scheduling.uow() as uow:
            one = await uow.jobs.reopen_failed(now=later, item_ids=[failed.id, done.id], limit=5)
            await uow.commit()
        async with scheduling.uow() as uow:
            none_twice = await uow.jobs.reopen_failed(now=later, item_ids=[failed.id], limit=5)
            rest = await uow.jobs.reopen_failed(now=later, limit=5)
            await uow.commit()
        async with scheduling.uow() as uow:
            claimed = await uow.jobs.claim(worker=B, limit=5, lease=LEASE, now=later)
            await uow.commit()

        assert (one, none_twice, rest) == ([failed.id], [], [other_failed.id])
        assert {job.item_id: job.attempts for job in claimed} == {
            failed.id: 1,
            other_failed.id: 1,
        }

    async def test_a_reopen_not_committed_leaves_the_job_failed(
        self, scheduling: SchedulingRig
    ) -> None:
        await scheduling.add(item(1))
        at = T0 + timedelta(seconds=5)
        await scheduling.claim(A, at=at)
        async with scheduling.uow() as uow:
            await uow.jobs.give_up({item(1).id: "not in the catalogue"}, worker=A, now=at)
            await uow.commit()
        async with scheduling.uow() as uow:
            await uow.jobs.reopen_failed(now=at, limit=5)

        assert await scheduling.claim(B, at=at + LEASE * 2) == []

    async def test_a_job_retried_later_is_due_again_at_its_own_time(
        self, scheduling: SchedulingRig
    ) -> None:
        soon, late = item(1), item(2)
        await scheduling.add(soon)
        await scheduling.add(late)
        at = T0 + timedelta(seconds=5)
        await scheduling.claim(A, at=at)

        async with scheduling.uow() as uow:
            await uow.jobs.retry_later(
                {soon.id: at + timedelta(seconds=2), late.id: at + timedelta(seconds=60)},
                worker=A,
                reason="TIDAL answered 503",
                now=at,
            )
            await uow.commit()

        assert await scheduling.claim(B, at=at + timedelta(seconds=1)) == []
        assert await scheduling.claim(B, at=at + timedelta(seconds=3)) == [soon.id]
        async with scheduling.uow() as uow:
            await uow.jobs.finish([soon.id], worker=B, now=at + timedelta(seconds=3))
            await uow.commit()
        assert await scheduling.claim(B, at=at + timedelta(seconds=59)) == []
        assert await scheduling.claim(B, at=at + timedelta(seconds=61)) == [late.id]

    async def test_released_jobs_can_be_claimed_at_once(self, scheduling: SchedulingRig) -> None:
        await scheduling.add(item(1))
        at = T0 + timedelta(seconds=5)
        await scheduling.claim(A, at=at)

        async with scheduling.uow() as uow:
            await uow.jobs.release([item(1).id], worker=A)
            await uow.commit()

        async with scheduling.uow() as uow:
            (job,) = await uow.jobs.claim(worker=B, limit=1, lease=LEASE, now=at)
            await uow.commit()
        assert (job.item_id, job.attempts) == (item(1).id, 2)

    # -- jobs: their items ------------------------------------------------------------------------

    async def test_items_are_read_whoever_owns_them_and_a_removed_one_is_absent(
        self, scheduling: SchedulingRig
    ) -> None:
        kept, removed = item(1), item(2)
        await scheduling.add(kept)
        await scheduling.add(removed)
        await scheduling.remove(removed)

        async with scheduling.uow() as uow:
            found = await uow.jobs.items([kept.id, removed.id])

        assert found == {kept.id: kept}

    async def test_a_description_shows_on_the_item_once_committed(
        self, scheduling: SchedulingRig
    ) -> None:
        await scheduling.add(item(1))
        description = ItemDescription(item(1).id, title="An album", artist_names=["An artist"])
        async with scheduling.uow() as uow:
            await uow.jobs.describe_items([description])  # left without a commit

        async with scheduling.uow() as uow:
            assert (await uow.jobs.items([item(1).id]))[item(1).id].title is None
            await uow.jobs.describe_items([description])
            await uow.commit()

        async with scheduling.uow() as uow:
            described = (await uow.jobs.items([item(1).id]))[item(1).id]
        assert (described.title, tuple(described.artist_names)) == ("An album", ("An artist",))

    # -- the ledger -------------------------------------------------------------------------------

    async def test_a_request_is_recorded_once_and_settles_its_isrc(
        self, scheduling: SchedulingRig
    ) -> None:
        async with scheduling.uow() as uow:
            first = await uow.ledger.record_requests([request(1), request(2)], now=T0)
            await uow.commit()
        async with scheduling.uow() as uow:
            again = await uow.ledger.record_requests([request(2), request(3)], now=T0)
            await uow.commit()

        assert (set(first), set(again)) == ({request(1).isrc, request(2).isrc}, {request(3).isrc})
        assert await scheduling.settled(1, 2, 3, 4, at=T0) == {request(n).isrc for n in (1, 2, 3)}

    async def test_nothing_is_recorded_without_a_commit(self, scheduling: SchedulingRig) -> None:
        async with scheduling.uow() as uow:
            await uow.ledger.record_requests([request(1)], now=T0)
            await uow.ledger.record_indexed([request(2)], now=T0)

        assert await scheduling.settled(1, 2, at=T0) == set()

    async def test_an_isrc_found_in_the_index_is_settled_and_never_requested(
        self, scheduling: SchedulingRig
    ) -> None:
        async with scheduling.uow() as uow:
            await uow.ledger.record_indexed([request(1)], now=T0)
            await uow.commit()
        async with scheduling.uow() as uow:
            recorded = await uow.ledger.record_requests([request(1)], now=T0)
            await uow.commit()

        assert recorded == []
        assert await scheduling.dispatchable(at=T0) == []

    async def test_a_dispatch_settles_its_isrc_for_the_window_and_no_longer(
        self, scheduling: SchedulingRig
    ) -> None:
        async with scheduling.uow() as uow:
            await uow.ledger.record_requests([request(1)], now=T0)
            await uow.commit()
        assert await scheduling.dispatchable(at=T0) == [request(1).isrc]
        async with scheduling.uow() as uow:
            await uow.ledger.mark_dispatched([request(1).isrc], now=T0)
            await uow.commit()

        assert await scheduling.dispatchable(at=T0) == []
        day = timedelta(hours=24)
        assert await scheduling.settled(1, at=T0 + day - timedelta(seconds=1)) == {request(1).isrc}
        assert await scheduling.settled(1, at=T0 + day) == set()
        async with scheduling.uow() as uow:
            renewed = await uow.ledger.record_requests([request(1)], now=T0 + day)
            await uow.commit()
        assert renewed == [request(1).isrc]

    async def test_a_deferred_dispatch_waits_for_its_time_and_counts_its_attempts(
        self, scheduling: SchedulingRig
    ) -> None:
        async with scheduling.uow() as uow:
            await uow.ledger.record_requests([request(1)], now=T0)
            await uow.commit()
        for attempt in range(2):
            async with scheduling.uow() as uow:
                await uow.ledger.defer_dispatch(
                    [request(1).isrc],
                    reason="the queue is down",
                    retry_at=T0 + timedelta(seconds=10 * (attempt + 1)),
                    now=T0,
                )
                await uow.commit()

        assert await scheduling.dispatchable(at=T0 + timedelta(seconds=19)) == []
        async with scheduling.uow() as uow:
            batch = await uow.ledger.claim_dispatchable(limit=10, now=T0 + timedelta(seconds=20))
        assert ([r.isrc for r in batch.requests], batch.most_attempts) == ([request(1).isrc], 2)
        assert batch.requests[0] == request(1)

    async def test_the_worker_settles_a_row_indexed_or_failed_and_an_operator_reopens_it(
        self, scheduling: SchedulingRig
    ) -> None:
        async with scheduling.uow() as uow:
            await uow.ledger.record_requests([request(n) for n in (1, 2, 3)], now=T0)
            await uow.ledger.mark_dispatched([request(n).isrc for n in (1, 2, 3)], now=T0)
            await uow.commit()
        async with scheduling.uow() as uow:
            assert {r.isrc for r in await uow.ledger.in_flight(limit=10)} == {
                request(n).isrc for n in (1, 2, 3)
            }
            await uow.ledger.mark_indexed(request(1).isrc, now=T0)
            await uow.ledger.mark_failed(request(2).isrc, reason="no audio", now=T0)
            await uow.ledger.mark_failed(request(1).isrc, reason="too late", now=T0)
            await uow.commit()

        async with scheduling.uow() as uow:
            assert [r.isrc for r in await uow.ledger.in_flight(limit=10)] == [request(3).isrc]
            reopened = await uow.ledger.reset_to_requested(
                include_unindexed=False, limit=10, now=T0
            )
            await uow.commit()
        assert reopened == 1
        assert await scheduling.dispatchable(at=T0) == [request(2).isrc]

        async with scheduling.uow() as uow:
            reopened = await uow.ledger.reset_to_requested(include_unindexed=True, limit=10, now=T0)
            await uow.commit()
        assert reopened == 1  # the dispatched one; the indexed one stays indexed
        assert set(await scheduling.dispatchable(at=T0)) == {request(2).isrc, request(3).isrc}
        assert await scheduling.settled(1, at=T0 + timedelta(days=30)) == {request(1).isrc}

    async def test_the_failed_tracks_of_an_item_are_reopened_and_no_others(
        self, scheduling: SchedulingRig
    ) -> None:
        mine, others = item(1), item(2)
        await scheduling.add(mine)
        await scheduling.add(others)
        async with scheduling.uow() as uow:
            await uow.ledger.link_tracks(
                [
                    ItemTrackLink(mine.id, 0, request(1).track_id, request(1).isrc),
                    ItemTrackLink(mine.id, 1, request(2).track_id, request(2).isrc),
                    ItemTrackLink(mine.id, 2, request(4).track_id, None),
                    ItemTrackLink(others.id, 0, request(3).track_id, request(3).isrc),
                ]
            )
            await uow.ledger.record_requests([request(n) for n in (1, 2, 3)], now=T0)
            await uow.ledger.mark_failed(request(1).isrc, reason="no audio", now=T0)
            await uow.ledger.mark_indexed(request(2).isrc, now=T0)
            await uow.ledger.mark_failed(request(3).isrc, reason="no audio", now=T0)
            await uow.commit()

        async with scheduling.uow() as uow:
            reopened = await uow.ledger.reopen_failed_tracks([mine.id], now=T0)
            await uow.commit()

        assert reopened == 1
        assert await scheduling.dispatchable(at=T0) == [request(1).isrc]

"""The PostgreSQL claim against the domain's fair-share rule (domain/fair_share.py, ADR 0028), on
a real server: for generated jobs (several users, both kinds, some leased, some removed from
due by a backoff or a settled status), the claim takes exactly the jobs `claim_order` names, in
its order, and the cap holds when two relays claim at once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.postgres.database import create_engine
from adapters.postgres.scheduling_jobs import PostgresSchedulingJobs
from domain.fair_share import WaitingJob, claim_order
from domain.library import LibraryItemKind
from domain.values import CatalogIdForm, LibraryItemId

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
LEASE = timedelta(seconds=15)
USERS = ["ann", "bob", "cy"]
examples = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Job:
    item_id: LibraryItemId
    user_id: str
    kind: LibraryItemKind
    added: datetime
    status: str  # pending, done, failed
    run_after: datetime
    locked_until: datetime | None

    @property
    def due(self) -> bool:
        return (
            self.status == "pending"
            and self.run_after <= NOW
            and (self.locked_until is None or self.locked_until < NOW)
        )

    @property
    def under_way(self) -> bool:
        return (
            self.status == "pending" and self.locked_until is not None and self.locked_until >= NOW
        )


@st.composite
def jobs(draw: st.DrawFn) -> list[Job]:
    made = []
    for number in range(draw(st.integers(0, 14))):
        made.append(
            Job(
                item_id=LibraryItemId(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
                user_id=draw(st.sampled_from(USERS)),
                kind=draw(st.sampled_from(list(LibraryItemKind))),
                # Few instants, so arrivals tie and the item id must break the tie.
                added=NOW - timedelta(seconds=draw(st.integers(1, 4))),
                status=draw(st.sampled_from(["pending"] * 4 + ["done", "failed"])),
                run_after=NOW + timedelta(seconds=draw(st.sampled_from([-5, 0, 0, 5]))),
                locked_until=draw(
                    st.sampled_from([None, None, NOW - timedelta(seconds=1), NOW, NOW + LEASE])
                ),
            )
        )
        del number
    unique = {job.item_id: job for job in made}
    return list(unique.values())


class Claims:
    """Runs each example in a transaction of its own, rolled back after, on one event loop."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine: AsyncEngine = create_engine(url, pool_size=2)

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.engine.dispose())
        finally:
            self.loop.close()

    def claim(
        self,
        given_jobs: list[Job],
        *,
        limit: int,
        cap: int | None,
        kinds: frozenset[LibraryItemKind] | None,
    ) -> list[LibraryItemId]:
        async def run() -> list[LibraryItemId]:
            async with self.engine.connect() as connection:
                transaction = await connection.begin()
                try:
                    await _insert(connection, given_jobs)
                    claimed = await PostgresSchedulingJobs(connection).claim(
                        worker="relay",
                        limit=limit,
                        lease=LEASE,
                        now=NOW,
                        kinds=kinds,
                        per_user_cap=cap,
                    )
                    return [job.item_id for job in claimed]
                finally:
                    await transaction.rollback()

        return self.loop.run_until_complete(run())


async def _insert(connection: AsyncConnection, given_jobs: list[Job]) -> None:
    await connection.execute(text("DELETE FROM library_items"))
    for job in given_jobs:
        await connection.execute(
            text(
                "INSERT INTO library_items (id, user_id, kind, catalog_id, added_at)"
                " VALUES (:id, :user_id, :kind, :catalog_id, :added)"
            ),
            {
                "id": job.item_id,
                "user_id": job.user_id,
                "kind": job.kind.value,
                "catalog_id": (
                    str(job.item_id)
                    if job.kind.id_form is CatalogIdForm.UUID
                    else str(job.item_id.int % 10**12)
                ),
                "added": job.added,
            },
        )
        await connection.execute(
            text(
                "INSERT INTO scheduling_jobs (library_item_id, user_id, status, attempts,"
                " run_after, created_at, updated_at, locked_by, locked_until)"
                " VALUES (:id, :user_id, :status, 0, :run_after, :added, :added, :locked_by,"
                " :locked_until)"
            ),
            {
                "id": job.item_id,
                "user_id": job.user_id,
                "status": job.status,
                "run_after": job.run_after,
                "added": job.added,
                "locked_by": None if job.locked_until is None else "another-relay",
                "locked_until": job.locked_until,
            },
        )


def _expected(
    given_jobs: list[Job], *, limit: int, cap: int | None, kinds: frozenset[LibraryItemKind] | None
) -> list[LibraryItemId]:
    of_kind = [job for job in given_jobs if kinds is None or job.kind in kinds]
    under_way = Counter(job.user_id for job in of_kind if job.under_way)
    waiting = [WaitingJob(job.item_id, job.user_id, job.added) for job in of_kind if job.due]
    return [
        job.item_id
        for job in claim_order(waiting, scheduling=under_way, per_user_cap=cap, limit=limit)
    ]


@pytest.fixture(scope="module")
def claims(database_url: str) -> Iterator[Claims]:
    checker = Claims(database_url)
    yield checker
    checker.close()


@examples
@given(
    given_jobs=jobs(),
    limit=st.integers(0, 10),
    cap=st.none() | st.integers(1, 4),
    kinds=st.none() | st.frozensets(st.sampled_from(list(LibraryItemKind)), min_size=1),
)
def test_the_claim_takes_what_the_domain_rule_names_in_its_order(
    claims: Claims,
    given_jobs: list[Job],
    limit: int,
    cap: int | None,
    kinds: frozenset[LibraryItemKind] | None,
) -> None:
    claimed = claims.claim(given_jobs, limit=limit, cap=cap, kinds=kinds)

    assert claimed == _expected(given_jobs, limit=limit, cap=cap, kinds=kinds)


async def test_two_relays_claiming_at_once_never_pass_a_users_cap(engine: AsyncEngine) -> None:
    items = [LibraryItemId(uuid.uuid4()) for _ in range(6)]
    async with engine.begin() as connection:
        await _insert(
            connection,
            [
                Job(
                    item_id,
                    "flood",
                    LibraryItemKind.ALBUM,
                    NOW - timedelta(seconds=n),
                    "pending",
                    NOW,
                    None,
                )
                for n, item_id in enumerate(items)
            ],
        )

    async def claim(worker: str) -> list[LibraryItemId]:
        async with engine.begin() as connection:
            claimed = await PostgresSchedulingJobs(connection).claim(
                worker=worker, limit=10, lease=LEASE, now=NOW, per_user_cap=2
            )
            await asyncio.sleep(0.05)  # hold the claim open while the other one runs
            return [job.item_id for job in claimed]

    first, second = await asyncio.gather(claim("relay-a"), claim("relay-b"))

    assert len(first) + len(second) == 2
    assert set(first) | set(second) == set(items[-2:])  # the two oldest

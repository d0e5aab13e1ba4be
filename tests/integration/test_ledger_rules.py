"""The PostgreSQL ledger's statements against the domain's rules (domain/ingestion.py), on a real
server: for generated rows (every state, dispatch times around the window's edge, ISRCs not in
the ledger), `settled` answers exactly what `is_settled` says, `record_requests` leaves every row
as `after_request` says, and each other statement moves rows as its LedgerTransition says. The
statements take those rules as parameters; this is what keeps the two from drifting apart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.postgres.database import create_engine
from adapters.postgres.ledger import PostgresIsrcLedger
from domain.ingestion import (
    DEFER_DISPATCH,
    DISPATCH,
    MARK_FAILED,
    MARK_INDEXED,
    RECORD_INDEXED,
    RESCHEDULE_FAILED,
    RESCHEDULE_UNINDEXED,
    SCHEDULE_WINDOW,
    IngestionRequest,
    LedgerState,
    LedgerTransition,
    after_request,
    is_settled,
)
from domain.values import CatalogId, Isrc, LibraryItemId

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ages = st.sampled_from(
    [
        timedelta(0),
        SCHEDULE_WINDOW - timedelta(microseconds=1),
        SCHEDULE_WINDOW,
        SCHEDULE_WINDOW + timedelta(microseconds=1),
    ]
) | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3))
# One row per ISRC: its state (None: not in the ledger) and, when dispatched, how long ago.
rows = st.lists(
    st.tuples(st.none() | st.sampled_from(list(LedgerState)), st.none() | ages),
    min_size=1,
    max_size=8,
)
Row = tuple[LedgerState | None, timedelta | None]
Act = Callable[[PostgresIsrcLedger, list[IngestionRequest]], Awaitable[object]]
examples = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _isrc(number: int) -> Isrc:
    return Isrc(f"QZLED26{number:05d}")


def _request(number: int) -> IngestionRequest:
    return IngestionRequest(
        isrc=_isrc(number),
        track_id=CatalogId(str(800_000 + number)),
        album_id=None,
        library_item_id=LibraryItemId(uuid.UUID(int=number + 1)),
    )


def _dispatched_at(age: timedelta | None) -> datetime | None:
    return None if age is None else NOW - age


class Rows:
    """Runs each example in a transaction of its own, rolled back after, on one event loop."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine: AsyncEngine = create_engine(url, pool_size=1)

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.engine.dispose())
        finally:
            self.loop.close()

    def check(self, given_rows: list[Row], act: Act) -> tuple[object, dict[Isrc, LedgerState]]:
        """What `act` answered over the rows, and every row's state afterwards."""

        async def run() -> tuple[object, dict[Isrc, LedgerState]]:
            async with self.engine.connect() as connection:
                transaction = await connection.begin()
                try:
                    await self._insert(connection, given_rows)
                    requests = [_request(number) for number in range(len(given_rows))]
                    answer = await act(PostgresIsrcLedger(connection), requests)
                    states = await connection.execute(text("SELECT isrc, state FROM isrc_ledger"))
                    return answer, {Isrc(isrc): LedgerState(state) for isrc, state in states}
                finally:
                    await transaction.rollback()

        return self.loop.run_until_complete(run())

    @staticmethod
    async def _insert(connection: AsyncConnection, given_rows: list[Row]) -> None:
        await connection.execute(text("DELETE FROM isrc_ledger"))
        for number, (state, age) in enumerate(given_rows):
            if state is None:
                continue
            request = _request(number)
            await connection.execute(
                text(
                    "INSERT INTO isrc_ledger (isrc, state, event_id, track_id, library_item_id,"
                    " requested_at, dispatched_at, next_attempt_at, updated_at)"
                    " VALUES (:isrc, :state, :event_id, :track_id, :item_id, :at, :dispatched_at,"
                    " :at, :at)"
                ),
                {
                    "isrc": request.isrc.value,
                    "state": state.value,
                    "event_id": request.idempotency_key,
                    "track_id": request.track_id.value,
                    "item_id": request.library_item_id,
                    "at": NOW - timedelta(days=4),
                    "dispatched_at": _dispatched_at(age),
                },
            )


@pytest.fixture(scope="module")
def ledger_rows(database_url: str) -> Iterator[Rows]:
    checker = Rows(database_url)
    yield checker
    checker.close()


def _expected(
    given_rows: list[Row],
    rule: Callable[[LedgerState | None, timedelta | None], LedgerState | None],
) -> dict[Isrc, LedgerState]:
    """Every row's state once `rule` moved it; the ISRCs it leaves out of the ledger absent."""
    return {
        _isrc(number): after
        for number, (state, age) in enumerate(given_rows)
        if (after := rule(state, age)) is not None
    }


@examples
@given(given_rows=rows)
def test_settled_answers_what_the_domain_settles(ledger_rows: Rows, given_rows: list[Row]) -> None:
    async def settled(ledger: PostgresIsrcLedger, requests: list[IngestionRequest]) -> object:
        return await ledger.settled([request.isrc for request in requests], now=NOW)

    answer, _ = ledger_rows.check(given_rows, settled)

    assert answer == {
        _isrc(number)
        for number, (state, age) in enumerate(given_rows)
        if is_settled(state, _dispatched_at(age), NOW)
    }


@examples
@given(given_rows=rows)
def test_recording_requests_moves_each_row_as_the_domain_says(
    ledger_rows: Rows, given_rows: list[Row]
) -> None:
    async def record(ledger: PostgresIsrcLedger, requests: list[IngestionRequest]) -> object:
        return await ledger.record_requests(requests, now=NOW)

    recorded, after = ledger_rows.check(given_rows, record)

    assert after == _expected(
        given_rows, lambda state, age: after_request(state, _dispatched_at(age), NOW)
    )
    assert isinstance(recorded, list)
    assert set(recorded) == {
        _isrc(number)
        for number, (state, age) in enumerate(given_rows)
        if not is_settled(state, _dispatched_at(age), NOW)
    }


# Each statement of the ledger that moves rows, by the transition it runs.
STATEMENTS: dict[str, tuple[LedgerTransition, Act]] = {}


def _statement(transition: LedgerTransition) -> Callable[[Act], Act]:
    def register(act: Act) -> Act:
        STATEMENTS[act.__name__] = (transition, act)
        return act

    return register


@_statement(DISPATCH)
async def mark_dispatched(ledger: PostgresIsrcLedger, requests: list[IngestionRequest]) -> object:
    return await ledger.mark_dispatched([r.isrc for r in requests], now=NOW)


@_statement(DEFER_DISPATCH)
async def defer_dispatch(ledger: PostgresIsrcLedger, requests: list[IngestionRequest]) -> object:
    isrcs = [r.isrc for r in requests]
    return await ledger.defer_dispatch(isrcs, reason="down", retry_at=NOW, now=NOW)


@_statement(MARK_INDEXED)
async def mark_indexed(ledger: PostgresIsrcLedger, requests: list[IngestionRequest]) -> object:
    for request in requests:
        await ledger.mark_indexed(request.isrc, now=NOW)
    return None


@_statement(MARK_FAILED)
async def mark_failed(ledger: PostgresIsrcLedger, requests: list[IngestionRequest]) -> object:
    for request in requests:
        await ledger.mark_failed(request.isrc, reason="gave up", now=NOW)
    return None


@_statement(RECORD_INDEXED)
async def record_indexed(ledger: PostgresIsrcLedger, requests: list[IngestionRequest]) -> object:
    return await ledger.record_indexed(requests, now=NOW)


@_statement(RESCHEDULE_FAILED)
async def reschedule_failed(ledger: PostgresIsrcLedger, requests: list[IngestionRequest]) -> object:
    return await ledger.reset_to_requested(include_unindexed=False, limit=100, now=NOW)


@_statement(RESCHEDULE_UNINDEXED)
async def reschedule_unindexed(
    ledger: PostgresIsrcLedger, requests: list[IngestionRequest]
) -> object:
    return await ledger.reset_to_requested(include_unindexed=True, limit=100, now=NOW)


@examples
@given(given_rows=rows, statement=st.sampled_from(sorted(STATEMENTS)))
def test_every_other_statement_moves_rows_as_its_transition_says(
    ledger_rows: Rows, given_rows: list[Row], statement: str
) -> None:
    transition, act = STATEMENTS[statement]

    _, after = ledger_rows.check(given_rows, act)

    assert after == _expected(given_rows, lambda state, _age: transition.applied_to(state))


def test_every_transition_of_the_domain_has_a_statement() -> None:
    transitions = [transition for transition, _ in STATEMENTS.values()]
    assert len(transitions) == len(set(transitions)) == 7

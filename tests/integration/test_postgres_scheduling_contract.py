"""The PostgreSQL scheduling adapters (PostgresSchedulingJobs, PostgresIsrcLedger, through the
unit of work) pass the scheduling ports' contract suite (tests/contracts/scheduling.py), as the
fakes do."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.library_additions import PostgresLibraryAdditions
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from application.ports.unit_of_work import UnitOfWorkFactory
from domain.library import LibraryItem
from tests.contracts.scheduling import SchedulingContract, SchedulingRig


class TestPostgresSchedulingContract(SchedulingContract):
    @pytest.fixture
    def scheduling(self, engine: AsyncEngine, session_pool: asyncpg.Pool) -> SchedulingRig:
        uow_factory: UnitOfWorkFactory = PostgresUnitOfWorkFactory(engine)
        additions = PostgresLibraryAdditions(session_pool)

        async def add(item: LibraryItem) -> None:
            _, created = await additions.add(item)
            assert created

        async def remove(item: LibraryItem) -> None:
            async with uow_factory() as uow:
                assert await uow.library.remove(item.user_id, item.id)
                await uow.commit()

        return SchedulingRig(uow_factory, add, remove)

"""The scheduling fakes of tests/unit/fakes.py pass the scheduling ports' contract suite
(tests/contracts/scheduling.py), as the PostgreSQL adapters do: the use case's unit tests run on
what the ports promise."""

from __future__ import annotations

import pytest

from domain.library import LibraryItem
from tests.contracts.scheduling import SchedulingContract, SchedulingRig
from tests.unit.fakes import SchedulingStore, scheduling_uow_factory


class TestFakeSchedulingContract(SchedulingContract):
    @pytest.fixture
    def scheduling(self) -> SchedulingRig:
        store = SchedulingStore()

        async def add(item: LibraryItem) -> None:
            store.add_pending(item)

        async def remove(item: LibraryItem) -> None:
            store.remove(item.id)

        return SchedulingRig(scheduling_uow_factory(store), add, remove)

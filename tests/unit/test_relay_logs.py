"""What the relay logs of a batch's failures: each job failed for good at WARNING with its
reason, and the jobs to retry at WARNING once per reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import structlog

from application.use_cases.schedule_ingestion import JobOutcome, ScheduleOutcomes
from domain.values import LibraryItemId
from entrypoints import relay
from entrypoints.relay import log_failures


@pytest.fixture(autouse=True)
def fresh_relay_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The service configures structlog with cache_logger_on_first_use: once a test earlier in
    # the session has logged through the relay's module logger under that configuration, the
    # logger keeps those processors and capture_logs would see nothing. A fresh proxy binds
    # to whatever is configured when it first logs, here capture_logs' processors.
    monkeypatch.setattr(relay, "log", structlog.get_logger("libingest.relay"))
    yield


def _item() -> LibraryItemId:
    return LibraryItemId(uuid.uuid4())


def test_a_failed_job_is_logged_at_warning_with_its_reason() -> None:
    outcomes = ScheduleOutcomes()
    gone, done = _item(), _item()
    outcomes[gone] = JobOutcome.FAILED
    outcomes.reasons[gone] = "album 777 is not in the catalogue"
    outcomes[done] = JobOutcome.DONE

    with structlog.testing.capture_logs() as logs:
        log_failures(outcomes)

    assert logs == [
        {
            "event": "relay.job.failed",
            "log_level": "warning",
            "library_item_id": str(gone),
            "reason": "album 777 is not in the catalogue",
        }
    ]


def test_jobs_to_retry_are_logged_once_per_reason() -> None:
    outcomes = ScheduleOutcomes()
    for _ in range(3):
        item = _item()
        outcomes[item] = JobOutcome.RETRY
        outcomes.reasons[item] = "TIDAL answered 503"

    with structlog.testing.capture_logs() as logs:
        log_failures(outcomes)

    assert logs == [
        {
            "event": "relay.batch.retrying",
            "log_level": "warning",
            "jobs": 3,
            "reason": "TIDAL answered 503",
        }
    ]

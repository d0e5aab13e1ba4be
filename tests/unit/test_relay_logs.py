"""What the relay logs of a batch's failures: each job failed for good at WARNING with its
reason, and the jobs to retry at WARNING once per reason."""

from __future__ import annotations

import uuid

from application.use_cases.schedule_ingestion import JobOutcome, ScheduleOutcomes
from domain.values import LibraryItemId
from entrypoints import relay
from entrypoints.relay import log_failures
from tests.support.logs import logs_of


def _item() -> LibraryItemId:
    return LibraryItemId(uuid.uuid4())


def test_a_failed_job_is_logged_at_warning_with_its_reason() -> None:
    outcomes = ScheduleOutcomes()
    gone, done = _item(), _item()
    outcomes[gone] = JobOutcome.FAILED
    outcomes.reasons[gone] = "album 777 is not in the catalogue"
    outcomes[done] = JobOutcome.DONE

    with logs_of(relay) as logs:
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

    with logs_of(relay) as logs:
        log_failures(outcomes)

    assert logs == [
        {
            "event": "relay.batch.retrying",
            "log_level": "warning",
            "jobs": 3,
            "reason": "TIDAL answered 503",
        }
    ]

"""Partial indexes on the states few rows are in: failed scheduling jobs, and ISRCs dispatched
(waiting for the worker) or failed. The operator's backlog counts them, `libingest status` lists
the latest failures, and the local queue and `reschedule` read them; without these indexes each
of those read the whole table (2,000,000 ledger rows at 10^6 library items: 250 ms per /metrics
scrape; ADR 0033). Settled rows (done jobs, indexed ISRCs, nearly every row in time) cost these
indexes nothing.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain CREATE INDEX, in the migration's transaction: each reads its table once and writes
    # the few matching rows (about a second at 2,000,000 ledger rows), blocking writes meanwhile.
    op.execute(
        "CREATE INDEX ix_scheduling_jobs_failed ON scheduling_jobs (updated_at)"
        " WHERE status = 'failed'"
    )
    op.execute(
        "CREATE INDEX ix_isrc_ledger_in_flight ON isrc_ledger (dispatched_at)"
        " WHERE state = 'dispatched'"
    )
    op.execute(
        "CREATE INDEX ix_isrc_ledger_failed ON isrc_ledger (updated_at) WHERE state = 'failed'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_isrc_ledger_failed")
    op.execute("DROP INDEX ix_isrc_ledger_in_flight")
    op.execute("DROP INDEX ix_scheduling_jobs_failed")

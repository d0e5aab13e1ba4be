"""Each scheduling job names its item's owner, so that an add can count the owner's pending jobs
from an index (the per-user cap of ADR 0022).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: a job written by anything but the add (none today) is simply not counted, so the
    # cap can only be too lenient, never refuse an add it should take.
    op.execute("ALTER TABLE scheduling_jobs ADD COLUMN user_id text")
    op.execute(
        "UPDATE scheduling_jobs AS job SET user_id = item.user_id"
        " FROM library_items AS item WHERE item.id = job.library_item_id"
    )
    # Partial: only pending jobs are counted, and they are the few; the settled ones (nearly all
    # rows, in time) cost this index nothing.
    op.execute(
        "CREATE INDEX ix_scheduling_jobs_pending_by_user ON scheduling_jobs (user_id)"
        " WHERE status = 'pending'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_scheduling_jobs_pending_by_user")
    op.execute("ALTER TABLE scheduling_jobs DROP COLUMN user_id")

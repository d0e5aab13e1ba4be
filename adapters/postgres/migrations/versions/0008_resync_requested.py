"""A scheduling job's note that its item asked to be read again while the job ran (ADR 0029).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A re-sync asked for while the job runs: the run may have read the changed part already,
    # so finishing it puts the job back to pending instead. Processes still running the old code
    # neither set nor read it; a note one of their runs leaves behind is cleared by the next
    # re-sync of the item.
    op.execute(
        "ALTER TABLE scheduling_jobs ADD COLUMN resync_requested boolean NOT NULL DEFAULT false"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE scheduling_jobs DROP COLUMN resync_requested")

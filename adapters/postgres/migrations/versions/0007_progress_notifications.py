"""Every committed change to an item's ingestion progress is announced on one channel, by
triggers inside the writing transaction (ADR 0031).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Must match adapters/postgres/tables.py PROGRESS_CHANNEL.
_CHANNEL = "libingest_progress"

# Where a statement moves many rows (the ledger, a page of track links), a statement-level
# trigger with a transition table: one call and a few payloads per statement, however many rows
# it moved, and nothing sent when it moved none. A payload must stay under 8000 bytes, so the
# ISRCs go 400 to a notification. Where most writes announce nothing (the relay's claims and
# lease renewals of scheduling_jobs), a row-level trigger whose WHEN clause PostgreSQL checks
# without calling any function: those writes pay nothing (bench/progress_triggers.py).
# A NOTIFY is delivered at commit, and only if the transaction commits; PostgreSQL folds
# identical ones within a transaction.
_FUNCTIONS = (
    f"""
CREATE FUNCTION libingest_ledger_recorded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{_CHANNEL}', json_build_object('isrcs', json_agg(isrc))::text)
    FROM (SELECT isrc, (row_number() OVER () - 1) / 400 AS chunk FROM recorded) AS chunked
    GROUP BY chunk;
    RETURN NULL;
END $$
""",
    # Only a change of state moves progress: a deferred dispatch (attempts, next attempt) does not.
    f"""
CREATE FUNCTION libingest_ledger_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{_CHANNEL}', json_build_object('isrcs', json_agg(isrc))::text)
    FROM (
        SELECT new_rows.isrc, (row_number() OVER () - 1) / 400 AS chunk
        FROM new_rows JOIN old_rows USING (isrc)
        WHERE new_rows.state IS DISTINCT FROM old_rows.state
    ) AS chunked
    GROUP BY chunk;
    RETURN NULL;
END $$
""",
    # An album's links come a page at a time, all of one item: one id, whatever the rows.
    f"""
CREATE FUNCTION libingest_tracks_linked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{_CHANNEL}', json_build_object('items', json_agg(item))::text)
    FROM (
        SELECT item, (row_number() OVER () - 1) / 150 AS chunk
        FROM (SELECT DISTINCT library_item_id FROM linked) AS items(item)
    ) AS chunked
    GROUP BY chunk;
    RETURN NULL;
END $$
""",
    f"""
CREATE FUNCTION libingest_item_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        '{_CHANNEL}', json_build_object('items', json_build_array(NEW.library_item_id))::text);
    RETURN NULL;
END $$
""",
    f"""
CREATE FUNCTION libingest_item_described() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{_CHANNEL}', json_build_object('items', json_build_array(NEW.id))::text);
    RETURN NULL;
END $$
""",
    # The owner travels with a removed item's id: the row is gone by the time anyone reads.
    f"""
CREATE FUNCTION libingest_item_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        '{_CHANNEL}',
        json_build_object('removed', json_build_array(json_build_array(OLD.id, OLD.user_id)))::text
    );
    RETURN NULL;
END $$
""",
)

_TRIGGERS = (
    """
CREATE TRIGGER libingest_ledger_recorded AFTER INSERT ON isrc_ledger
    REFERENCING NEW TABLE AS recorded
    FOR EACH STATEMENT EXECUTE FUNCTION libingest_ledger_recorded()
""",
    """
CREATE TRIGGER libingest_ledger_moved AFTER UPDATE ON isrc_ledger
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION libingest_ledger_moved()
""",
    """
CREATE TRIGGER libingest_tracks_linked AFTER INSERT ON item_tracks
    REFERENCING NEW TABLE AS linked
    FOR EACH STATEMENT EXECUTE FUNCTION libingest_tracks_linked()
""",
    """
CREATE TRIGGER libingest_tracks_relinked AFTER UPDATE ON item_tracks
    REFERENCING NEW TABLE AS linked
    FOR EACH STATEMENT EXECUTE FUNCTION libingest_tracks_linked()
""",
    """
CREATE TRIGGER libingest_job_moved AFTER UPDATE ON scheduling_jobs
    FOR EACH ROW
    WHEN ((OLD.status, OLD.last_error) IS DISTINCT FROM (NEW.status, NEW.last_error))
    EXECUTE FUNCTION libingest_item_moved()
""",
    """
CREATE TRIGGER libingest_item_described AFTER UPDATE ON library_items
    FOR EACH ROW
    WHEN ((OLD.title, OLD.artist_names) IS DISTINCT FROM (NEW.title, NEW.artist_names))
    EXECUTE FUNCTION libingest_item_described()
""",
    """
CREATE TRIGGER libingest_item_removed AFTER DELETE ON library_items
    FOR EACH ROW EXECUTE FUNCTION libingest_item_removed()
""",
)


def upgrade() -> None:
    # The add announces its new item on the scheduling channel already (ADR 0016), in its one
    # statement; the progress listener hears that channel too, so the add pays for no trigger.
    # One statement per call: the driver prepares each text, and a prepared text holds one.
    for statement in (*_FUNCTIONS, *_TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    for trigger, table in (
        ("libingest_ledger_recorded", "isrc_ledger"),
        ("libingest_ledger_moved", "isrc_ledger"),
        ("libingest_job_moved", "scheduling_jobs"),
        ("libingest_tracks_linked", "item_tracks"),
        ("libingest_tracks_relinked", "item_tracks"),
        ("libingest_item_described", "library_items"),
        ("libingest_item_removed", "library_items"),
    ):
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in (
        "libingest_ledger_recorded()",
        "libingest_ledger_moved()",
        "libingest_tracks_linked()",
        "libingest_item_moved()",
        "libingest_item_described()",
        "libingest_item_removed()",
    ):
        op.execute(f"DROP FUNCTION {function}")

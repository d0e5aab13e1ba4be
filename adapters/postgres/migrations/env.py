"""Alembic environment: always run with a connection handed over by `upgrade_to_head`."""

from alembic import context

from adapters.postgres.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `libingest migrate`, which supplies the connection")

context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()

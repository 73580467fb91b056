"""Alembic's environment for facetrace: migrations run on the connection the store
hands over (``config.attributes["connection"]``), one transaction per revision, with
batch mode so SQLite tables are rebuilt rather than altered in place."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    render_as_batch=True,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()

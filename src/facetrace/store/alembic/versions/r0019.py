"""Rate limits shared by every API process: the ``rate_buckets`` table.

With several API processes (``serve --workers N``, or several machines behind a
balancer) on one PostgreSQL database, each request takes its token from a row here,
so a client gets the configured rate in all, not N times it. The table is made on
SQLite too, where one process keeps its buckets in memory and leaves it empty.
"""

from __future__ import annotations

from alembic import op

from facetrace.store import schema

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.metadata.create_all(op.get_bind(), tables=[schema.rate_buckets])  # checkfirst

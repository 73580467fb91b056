"""Migration 2 of the runner before Alembic.

Ingest jobs and their items.
"""

from __future__ import annotations

from alembic import op

from facetrace.store.migrations import legacy

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy(2)(op.get_bind())

"""Migration 11 of the runner before Alembic.

Face ids are never reused (SQLite AUTOINCREMENT).
"""

from __future__ import annotations

from alembic import op

from facetrace.store.migrations import legacy

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy(11)(op.get_bind())

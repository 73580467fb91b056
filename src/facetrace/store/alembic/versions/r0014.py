"""Migration 14 of the runner before Alembic.

People sign in: passwords, sessions.
"""

from __future__ import annotations

from alembic import op

from facetrace.store.migrations import legacy

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy(14)(op.get_bind())

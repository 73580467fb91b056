"""Migration 13 of the runner before Alembic.

Opt-out templates: the faces an opt-out reached.
"""

from __future__ import annotations

from alembic import op

from facetrace.store.migrations import legacy

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy(13)(op.get_bind())

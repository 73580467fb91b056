"""Migration 10 of the runner before Alembic.

Governance: audit log, access, opt-out.
"""

from __future__ import annotations

from alembic import op

from facetrace.store.migrations import legacy

revision = "0010"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy(10)(op.get_bind())

"""Migration 15 of the runner before Alembic.

Background tasks: takedowns, opt-outs, URL ingests.
"""

from __future__ import annotations

from alembic import op

from facetrace.store.migrations import legacy

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy(15)(op.get_bind())

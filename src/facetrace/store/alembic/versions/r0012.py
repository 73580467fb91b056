"""Migration 12 of the runner before Alembic.

Identities: people, pins, rejections.
"""

from __future__ import annotations

from alembic import op

from facetrace.store.migrations import legacy

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy(12)(op.get_bind())

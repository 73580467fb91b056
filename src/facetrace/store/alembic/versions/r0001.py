"""Migration 1 of the runner before Alembic.

Sources, photos, sightings, faces, ingest errors.
"""

from __future__ import annotations

from alembic import op

from facetrace.store.migrations import legacy

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy(1)(op.get_bind())

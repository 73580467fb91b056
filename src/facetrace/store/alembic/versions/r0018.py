"""Blobs in the metadata database: the ``blobs`` table.

With ``blob_store = database`` (the default on PostgreSQL) face thumbnails are rows
here, named as ``faces.thumbnail`` names them, so every node reaches them. The table
is made whichever store is chosen (it stays empty while blobs live in a folder).
Nothing is copied: the thumbnails of an existing gallery stay in its folder, and an
existing SQLite gallery keeps ``folder`` (``auto``'s choice for SQLite).
"""

from __future__ import annotations

from alembic import op

from facetrace.store import schema

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.metadata.create_all(op.get_bind(), tables=[schema.blobs])  # checkfirst

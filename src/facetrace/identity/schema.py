"""Tables owned by identities, created by migration 12 (registered on import).

- ``identities``: one row per person the gallery has grouped; ``name`` is set by a person.
- ``face_identities``: each face's identity; ``pinned`` marks a face a person placed
  (merge, split, name), which every later clustering keeps where it is.
- ``identity_rejections``: "not this person": the face never joins that identity again.

Rows go with their face (``ON DELETE CASCADE``), so a takedown or an opt-out removes a
face from its identity in the same transaction; :func:`drop_empty` then deletes the
identities left with no face.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from facetrace.store import migrations
from facetrace.store.schema import metadata

MIGRATION_VERSION = 12

identities = Table(
    "identities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", String(100), nullable=False),
    Column("name", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,  # an identity id in an audit event never names another person
)

face_identities = Table(
    "face_identities",
    metadata,
    Column("face_id", Integer, ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "identity_id",
        Integer,
        ForeignKey("identities.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("pinned", Boolean, nullable=False, default=False),
    Index("ix_face_identities_identity", "identity_id"),
)

identity_rejections = Table(
    "identity_rejections",
    metadata,
    Column("face_id", Integer, ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "identity_id",
        Integer,
        ForeignKey("identities.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

TABLES = (identities, face_identities, identity_rejections)


def _apply(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(TABLES))


def _migration() -> migrations.Migration:
    apply: Callable[[Connection], None] = _apply
    return migrations.Migration(MIGRATION_VERSION, "identities: people, pins, rejections", apply)


migrations.register(_migration())

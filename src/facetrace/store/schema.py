"""Tables of the metadata store (SQLAlchemy Core; SQLite by default, PostgreSQL by URL).

Migrations are an ordered list in :mod:`facetrace.store.migrations`; each table
here says which migration created it. Only :mod:`facetrace.store` (and the
governance repositories) issue SQL.

Embeddings are kept here as float32 bytes (``dim * 4`` bytes) beside the model
that made them: the store is the source of truth and the vector index is a
derived structure that :func:`facetrace.store.repository.Store.reconcile`
rebuilds from it after a crash.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# --- migration 1 -------------------------------------------------------------

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("lawful_basis", Text, nullable=False),
    Column("jurisdiction", String(20), nullable=True),
    Column("status", String(20), nullable=False, default="active"),
    Column("policy", Text, nullable=False, default="{}"),  # JSON: scope, rate, retention...
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Revision 17: the organisation that owns the source, and who sees what it
    # collected: 'private' (the owner only) or 'shared' (every organisation). A name
    # is unique within its owner, so no organisation learns another's names.
    Column("owner_org", Integer, nullable=False, server_default="1"),
    Column("visibility", String(10), nullable=False, server_default="private"),
    UniqueConstraint("owner_org", "name", name="uq_source_owner_name"),
)

photos = Table(
    "photos",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    # 64-bit DCT perceptual hash as 16 hex digits, and its four 16-bit bands:
    # two hashes within 3 bits share at least one band exactly (pigeonhole).
    Column("phash", String(16), nullable=True),
    Column("phash_b0", Integer, nullable=True, index=True),
    Column("phash_b1", Integer, nullable=True, index=True),
    Column("phash_b2", Integer, nullable=True, index=True),
    Column("phash_b3", Integer, nullable=True, index=True),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("format", String(10), nullable=False),
    Column("byte_size", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,  # a photo id in a deletion receipt never names another photo
)

sightings = Table(
    "sightings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("photo_id", Integer, ForeignKey("photos.id", ondelete="CASCADE"), nullable=False),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("origin", Text, nullable=False),
    Column("page_url", Text, nullable=True),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("photo_id", "source_id", "origin", name="uq_sighting"),
    Index("ix_sightings_source", "source_id"),
    Index("ix_sightings_photo", "photo_id"),
)

faces = Table(
    "faces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("photo_id", Integer, ForeignKey("photos.id", ondelete="CASCADE"), nullable=False),
    Column("left", Integer, nullable=False),
    Column("top", Integer, nullable=False),
    Column("right", Integer, nullable=False),
    Column("bottom", Integer, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("quality", Float, nullable=False),
    Column("landmarks", LargeBinary, nullable=False),  # (5, 2) float32
    Column("model_id", String(100), nullable=False),
    Column("embedding", LargeBinary, nullable=False),  # (dim,) float32
    Column("thumbnail", String(200), nullable=True),  # a blob's name (store/blobs.py)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_faces_photo", "photo_id"),
    # A face id is its vector's id in the index and appears in deletion receipts, so
    # it is never handed out again (SQLite would otherwise reuse the highest deleted
    # ids; PostgreSQL sequences never do). Migration 11 rebuilds older SQLite tables.
    sqlite_autoincrement=True,
)

ingest_errors = Table(
    "ingest_errors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=True),
    Column("item", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

MIGRATION_1_TABLES = (
    schema_migrations,
    sources,
    photos,
    sightings,
    faces,
    ingest_errors,
)


# --- migration 2 -------------------------------------------------------------

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),  # folder, url-list, warc
    Column("spec", Text, nullable=False),  # JSON: the inputs, so the job can be resumed
    Column("status", String(20), nullable=False),  # running, completed, interrupted
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("summary", Text, nullable=True),  # JSON IngestSummary once finished
)

job_items = Table(
    "job_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=False),
    Column("status", String(20), nullable=False),  # added, duplicate, error, refused, suppressed
    Column("error", Text, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("job_id", "key", name="uq_job_item"),
)

MIGRATION_2_TABLES = (jobs, job_items)


# --- revision 18 -------------------------------------------------------------

blobs = Table(
    "blobs",
    metadata,
    # The blob's name, e.g. thumbs/ab/<sha256>_0.jpg: what faces.thumbnail holds.
    Column("name", String(200), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
"""Blobs kept in the metadata database (``blob_store = database``); see
:class:`facetrace.store.blobs.DatabaseBlobs`."""

rate_buckets = Table(
    "rate_buckets",
    metadata,
    # What is limited (search per key, sign-in per address...) and the SHA-256 of whom.
    Column("scope", String(40), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated", Float, nullable=False),  # seconds since the epoch
    Column("allowed", Boolean, nullable=False),  # the last request's answer
)
"""Token buckets that every API process shares (rate limits on PostgreSQL); see
:class:`facetrace.api.security.SharedRateLimiter`."""

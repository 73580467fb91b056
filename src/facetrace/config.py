"""Settings: one typed object, read from ``FACETRACE_*`` environment variables.

There is no module-level instance: the CLI builds one and passes it to
:class:`facetrace.FaceTrace`; tests build their own.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IndexBackend(StrEnum):
    """Which :class:`~facetrace.index.base.VectorIndex` implementation holds the vectors."""

    EXACT = "exact"
    FAISS = "faiss"
    MILVUS = "milvus"


class DetectorKind(StrEnum):
    """Face detector: dlib's HOG (fast, frontal) or its MMOD CNN (slower, more poses)."""

    HOG = "hog"
    CNN = "cnn"


class EmbedderKind(StrEnum):
    """Face descriptor model."""

    DLIB = "dlib"
    ONNX = "onnx"


class SmallFacePass(StrEnum):
    """When HOG runs its upsampled pass for faces smaller than its 80 px window."""

    AUTO = "auto"
    """Unless the native-scale pass found a close-up face."""
    ALWAYS = "always"
    NEVER = "never"


class DescriptorRuntime(StrEnum):
    """What runs dlib's ResNet descriptor (all give the same descriptors to 1e-4).

    ``auto`` picks ONNX Runtime when installed, else NumPy; ``dlib`` is dlib's own
    implementation (the BLAS-less ``dlib-bin`` wheel: ~20x slower).
    """

    AUTO = "auto"
    ONNX = "onnx"
    NUMPY = "numpy"
    DLIB = "dlib"


class FmrScope(StrEnum):
    """Whose false-match rate the decision threshold holds to ``match_fmr``."""

    WORST_GROUP = "worst-group"
    """Every measured demographic group's own (same-group) rate, where the model's
    calibration carries a worst-group curve; else the overall rate."""
    OVERALL = "overall"
    """The rate over all impostor pairs of the calibration set."""


class BlobStoreKind(StrEnum):
    """Where face thumbnails (and any other blobs) live; see docs/blobs.md."""

    AUTO = "auto"
    """``database`` when the metadata is in a database server (PostgreSQL), else ``folder``."""
    FOLDER = "folder"
    """Files under ``blob_dir`` (default: the home folder)."""
    DATABASE = "database"
    """Rows of the metadata database's ``blobs`` table."""


class Settings(BaseSettings):
    """Everything configurable, with its unit. Environment: ``FACETRACE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FACETRACE_", extra="forbid")

    home: Path = Field(
        default=Path("facetrace-data"),
        description="Folder holding the database, index and thumbnails.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata store; default: SQLite file in home.",
    )
    blob_store: BlobStoreKind = Field(
        default=BlobStoreKind.AUTO,
        description="Where thumbnails and calibration tables live: 'folder' (files under "
        "blob_dir), 'database' (the metadata database's blobs table, which every node "
        "reaches) or 'auto' (database with PostgreSQL, folder with SQLite). See docs/blobs.md.",
    )
    blob_dir: Path | None = Field(
        default=None,
        description="Folder holding the blobs when blob_store is folder (thumbnails under "
        "<blob_dir>/thumbs); default: home. With several nodes, a folder every node mounts.",
    )

    # --- index ---------------------------------------------------------------
    index_backend: IndexBackend = Field(
        default=IndexBackend.FAISS, description="Vector index backend."
    )
    milvus_uri: str | None = Field(
        default=None, description="Milvus server URI, e.g. http://127.0.0.1:19530."
    )
    milvus_collection: str = Field(default="facetrace_faces", description="Milvus collection.")

    # --- vision --------------------------------------------------------------
    detector: DetectorKind = Field(default=DetectorKind.HOG, description="Face detector.")
    min_face_px: int = Field(
        default=40, ge=20, description="Smallest face side (pixels) detection aims to find."
    )
    small_face_pass: SmallFacePass = Field(
        default=SmallFacePass.AUTO,
        description="HOG small-face pass (upsampled to reach min_face_px): auto runs it "
        "unless the first pass found a close-up face (>= 20% of the short side).",
    )
    max_detect_side: int = Field(
        default=2000,
        ge=256,
        description="Images are downscaled so their long side is at most this before detection.",
    )
    embedder: EmbedderKind = Field(default=EmbedderKind.DLIB, description="Descriptor model.")
    descriptor_runtime: DescriptorRuntime = Field(
        default=DescriptorRuntime.AUTO,
        description="What runs the dlib ResNet: auto, onnx, numpy or dlib (same descriptors).",
    )
    onnx_model_path: Path | None = Field(
        default=None, description="Local path of an ArcFace-style ONNX model (embedder=onnx)."
    )
    thumbnail_px: int = Field(default=112, ge=32, le=512, description="Face thumbnail side.")
    embed_flip: bool = Field(
        default=True,
        description="Average each face's descriptor with its mirror image's (2 descriptors "
        "per face; see docs/accuracy.md).",
    )
    embed_jitter: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Extra jittered copies averaged into each descriptor (dlib's num_jitters); "
        "the most accurate setting measured is 10, about 6x the embedding time.",
    )

    # --- safe decoding -------------------------------------------------------
    max_image_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Largest accepted image file, bytes."
    )
    max_image_pixels: int = Field(
        default=80_000_000, ge=10_000, description="Largest accepted image, width x height."
    )

    # --- ingest --------------------------------------------------------------
    near_duplicate_bits: int = Field(
        default=3,
        ge=-1,
        le=10,
        description="Photos whose perceptual hashes differ by at most this many bits are "
        "stored once (-1 turns perceptual deduplication off).",
    )
    workers: int = Field(
        default=0, ge=0, description="Worker processes for ingest; 0 = one per CPU core."
    )

    # --- search --------------------------------------------------------------
    match_fmr: float = Field(
        default=1e-3,
        gt=0,
        lt=1,
        description="False-match rate the decision threshold is set at: the distance under "
        "which two faces count as one person is read from the model's calibration table.",
    )
    match_fmr_scope: FmrScope = Field(
        default=FmrScope.WORST_GROUP,
        description="Whose false-match rate match_fmr bounds: 'worst-group' (the threshold "
        "also holds the worst-measured demographic group's same-group rate to match_fmr, "
        "see 'facetrace eval demographics') or 'overall' (all impostor pairs together).",
    )
    match_threshold: float | None = Field(
        default=None,
        gt=0,
        description="Explicit distance threshold, overriding match_fmr (needed for a model "
        "without a calibration table).",
    )
    top_k: int = Field(default=10, ge=1, le=1000, description="Matches returned per probe face.")

    # --- people --------------------------------------------------------------
    cluster_fmr: float = Field(
        default=1e-4,
        gt=0,
        lt=1,
        description="False-match rate (all impostor pairs) of the calibrated distance under "
        "which faces are grouped into one person: a face or group joins another when the "
        "root mean squared distance over all their pairs is below it.",
    )
    cluster_threshold: float | None = Field(
        default=None,
        gt=0,
        description="Explicit grouping distance, overriding cluster_fmr (needed for a model "
        "without a calibration table).",
    )
    cluster_votes: int = Field(
        default=2,
        ge=1,
        le=10,
        description="Faces of a person that must each be within the grouping distance of a "
        "newcomer (or every face, if the person has fewer) before it joins.",
    )

    # --- governance ----------------------------------------------------------
    optout_threshold: float = Field(
        default=0.38,
        gt=0,
        description="Distance under which a gallery face counts as the person opting out on "
        "its own (calibrated FMR about 9e-6 per pair) and is deleted.",
    )
    optout_group_threshold: float = Field(
        default=0.5,
        gt=0,
        description="Opt-out grows the person from the reference: a face within "
        "optout_radius joins when its root mean squared distance to the faces reached so "
        "far (and the reference) is under this ...",
    )
    optout_agree: float = Field(
        default=0.42,
        gt=0,
        description="... and at least optout_votes of them (or all, if fewer) are each "
        "closer than this.",
    )
    optout_votes: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Faces of the person reached so far that must agree before opt-out "
        "reaches another face.",
    )
    optout_radius: float = Field(
        default=0.6,
        gt=0,
        description="Faces further than this from the opt-out reference are never reached "
        "(bounds the growth, so it cannot chain into other people).",
    )
    optout_suppress_threshold: float = Field(
        default=0.38,
        gt=0,
        description="Distance to an opt-out template under which a face is not stored at "
        "ingest and never shown by search (strict: each template's false suppressions add "
        "up over every opt-out).",
    )

    # --- network -------------------------------------------------------------
    allow_loopback: bool = Field(
        default=False,
        description="Let the fetcher reach 127.0.0.0/8 and ::1 (tests and local use only).",
    )
    user_agent: str = Field(
        default="facetrace/0.1 (+https://github.com/facetrace/facetrace; targeted collection)",
        description="User agent sent by the fetcher and matched against robots.txt.",
    )

    # --- HTTP API (facetrace serve) -----------------------------------------------
    api_max_upload_bytes: int = Field(
        default=60 * 1024 * 1024,
        ge=1024,
        description="Largest request body the API reads, bytes; a larger one gets 413 "
        "and the rest of it is not read.",
    )
    api_search_rate: float = Field(
        default=120,
        gt=0,
        description="Searches (and verifications) a minute per API key, with bursts of a "
        "sixth of that; beyond it 429 with Retry-After.",
    )
    api_address_rate: float = Field(
        default=240,
        gt=0,
        description="Searches a minute per client address, whatever the key.",
    )
    api_optout_rate: float = Field(
        default=6,
        gt=0,
        description="Opt-out requests a minute per client address (the public ones too).",
    )
    api_signin_rate: float = Field(
        default=10,
        gt=0,
        description="Sign-in attempts a minute per client address, and per user name.",
    )
    session_hours: float = Field(
        default=8,
        gt=0,
        le=24 * 30,
        description="How long a signed-in session lasts.",
    )
    analysis_stall_seconds: float = Field(
        default=600.0,
        gt=0,
        description="When no photo analysis comes back from the worker processes or the "
        "Ray cluster for this long, the analyses in flight become their items' errors "
        "(facetrace jobs resume retries them) instead of the job waiting for ever.",
    )
    task_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="How often an API process looks in the task table for tasks that "
        "another process accepted, or left running when it died.",
    )
    task_lease_seconds: float = Field(
        default=60.0,
        ge=5,
        le=3600,
        description="A running task's claim lasts this long unless its process renews it "
        "(4 times per lease); a task whose claim has run out belonged to a process that "
        "died, and another process runs it.",
    )
    public_optout_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="A public opt-out request is answered no sooner than this after it "
        "arrives, whatever it found, so its timing does not tell whether the person is "
        "in the gallery (set it above the slowest opt-out you measure).",
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<home>/facetrace.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'facetrace.db').resolve()}"

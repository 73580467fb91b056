"""facetrace: face search with provenance, calibrated confidence and governance built in.

Importing this package loads no model and opens no file; the engine loads models
on first use. The public API is ``__all__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facetrace.config import DetectorKind, EmbedderKind, IndexBackend, Settings
from facetrace.errors import (
    AccessDeniedError,
    AuditError,
    ConfigError,
    CorruptImageError,
    FaceTraceError,
    FetchError,
    ImageError,
    ImageTooLargeError,
    IndexBackendError,
    IndexBusyError,
    MissingDependencyError,
    ModelError,
    ModelMismatchError,
    NotFoundError,
    PolicyRefusedError,
    SourceBlockedError,
    SourceError,
    StorageFullError,
    StoreError,
    UnknownSourceError,
    UnsafeURLError,
    UnsupportedFormatError,
    UsageError,
)
from facetrace.types import (
    BBox,
    IngestSummary,
    ItemError,
    Match,
    ProbeFace,
    Provenance,
    SearchResult,
    Stats,
    VerifyResult,
)

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The engine pulls in SQLAlchemy and the pipeline: import it on first use.
    if name == "FaceTrace":
        from facetrace.app import FaceTrace

        return FaceTrace
    raise AttributeError(f"module 'facetrace' has no attribute {name!r}")


__all__ = [
    "AccessDeniedError",
    "AuditError",
    "BBox",
    "ConfigError",
    "CorruptImageError",
    "DetectorKind",
    "EmbedderKind",
    "FaceTrace",
    "FaceTraceError",
    "FetchError",
    "ImageError",
    "ImageTooLargeError",
    "IndexBackend",
    "IndexBackendError",
    "IndexBusyError",
    "IngestSummary",
    "ItemError",
    "Match",
    "MissingDependencyError",
    "ModelError",
    "ModelMismatchError",
    "NotFoundError",
    "PolicyRefusedError",
    "ProbeFace",
    "Provenance",
    "SearchResult",
    "Settings",
    "SourceBlockedError",
    "SourceError",
    "Stats",
    "StorageFullError",
    "StoreError",
    "UnknownSourceError",
    "UnsafeURLError",
    "UnsupportedFormatError",
    "UsageError",
    "VerifyResult",
    "__version__",
]

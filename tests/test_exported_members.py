"""The public API is facetrace.__all__; changing it must be deliberate."""

from __future__ import annotations

import subprocess
import sys

import facetrace


def test_public_api_is_pinned() -> None:
    assert facetrace.__all__ == [
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
    for name in facetrace.__all__:
        assert getattr(facetrace, name) is not None


def test_every_error_derives_from_the_base() -> None:
    for name in facetrace.__all__:
        obj = getattr(facetrace, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, facetrace.FaceTraceError)


def test_import_loads_no_model_and_no_heavy_library() -> None:
    code = (
        "import sys, facetrace; "
        "print(','.join(m for m in ('dlib', 'faiss', 'sqlalchemy', 'pymilvus', 'onnxruntime') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

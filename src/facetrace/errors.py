"""The one exception hierarchy of facetrace.

Every error the engine raises on purpose derives from :class:`FaceTraceError`.
Errors from libraries (Pillow, dlib, SQLAlchemy, FAISS, pymilvus, httpx) are
translated where they are caught (``raise ... from exc``) so callers, the CLI and
a future HTTP API only ever handle these::

    FaceTraceError
    ├── ConfigError                 bad or inconsistent settings
    ├── MissingDependencyError      an optional extra is not installed
    ├── ImageError                  a photo could not be used
    │   ├── UnsupportedFormatError  content is not an allowed image format
    │   ├── ImageTooLargeError      byte or pixel cap exceeded (decompression bombs)
    │   └── CorruptImageError       truncated or undecodable data
    ├── ModelError                  a model file is missing or unusable
    │   └── ModelMismatchError      embeddings from different models would mix
    ├── StoreError                  the metadata store failed or is inconsistent
    ├── StorageFullError            the disk holding the gallery is full
    ├── ClusterError                the compute cluster is unreachable or lost a task
    ├── IndexBackendError           a vector index backend failed
    │   └── IndexBusyError          another process is writing the embedded index
    ├── NotFoundError               a named thing does not exist
    ├── SourceError                 collection refused by source policy
    │   ├── UnknownSourceError      the source is not registered
    │   └── SourceBlockedError      the source or host is blocked
    ├── FetchError                  a URL could not be fetched
    │   ├── PolicyRefusedError      robots.txt, the deny list or scope said no
    │   └── UnsafeURLError          SSRF guard: scheme or address not allowed
    ├── AccessDeniedError           the actor may not do this
    ├── AuditError                  the audit log is missing something or was tampered with
    └── UsageError                  a request is missing something it needs (case ID, reason...)

Each error's ``str()`` is a one-line message fit to show to a user.
"""

from __future__ import annotations


class FaceTraceError(Exception):
    """Base class of every error facetrace raises on purpose."""


class ConfigError(FaceTraceError):
    """Settings are invalid or inconsistent."""


class MissingDependencyError(FaceTraceError):
    """An optional dependency is missing; the message names the extra to install."""


class ImageError(FaceTraceError):
    """A photo could not be used."""


class UnsupportedFormatError(ImageError):
    """The bytes are not one of the allowed image formats (checked by content)."""


class ImageTooLargeError(ImageError):
    """The file exceeds the byte cap or the image exceeds the pixel cap."""


class CorruptImageError(ImageError):
    """The image is truncated or cannot be decoded."""


class ModelError(FaceTraceError):
    """A model could not be loaded or run."""


class ModelMismatchError(ModelError):
    """Embeddings from a different model than the gallery's were offered."""


class StoreError(FaceTraceError):
    """The metadata store failed or is inconsistent."""


class ConflictError(StoreError):
    """The request conflicts with what is stored: a name that is taken, say."""


class IndexBackendError(FaceTraceError):
    """A vector index backend failed."""


class IndexBusyError(IndexBackendError):
    """Another process is writing the embedded index; this one may search, not write."""


class StorageFullError(FaceTraceError):
    """The disk holding the gallery ran out of space; what was acknowledged is kept."""


class ClusterError(FaceTraceError):
    """The compute cluster (Ray) could not be reached, or could not run a task even after
    retrying it on other nodes."""


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from, is a full disk: ``ENOSPC`` from
    the OS, SQLite's "database or disk is full", or a library's "No space left"."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        text = str(current)
        if "database or disk is full" in text or "No space left on device" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


class NotFoundError(FaceTraceError):
    """A named object (source, photo, face, job...) does not exist."""


class SourceError(FaceTraceError):
    """Collection was refused by source policy."""


class UnknownSourceError(SourceError):
    """The source has not been registered."""


class SourceBlockedError(SourceError):
    """The source, or the host, is blocked against collection."""


class FetchError(FaceTraceError):
    """A URL could not be fetched."""


class PolicyRefusedError(FetchError):
    """robots.txt, the host deny list or the source's scope refused the URL."""


class UnsafeURLError(FetchError):
    """The URL's scheme or resolved address is not allowed (SSRF guard)."""


class AccessDeniedError(FaceTraceError):
    """The actor is not allowed to perform the action on the resource."""


class AuditError(FaceTraceError):
    """The audit log could not be written, or verification found tampering."""


class UsageError(FaceTraceError):
    """A request lacks something it needs, such as a case ID or a reason."""


__all__ = [
    "AccessDeniedError",
    "AuditError",
    "ConfigError",
    "ConflictError",
    "CorruptImageError",
    "FaceTraceError",
    "FetchError",
    "ImageError",
    "ImageTooLargeError",
    "IndexBackendError",
    "IndexBusyError",
    "MissingDependencyError",
    "ModelError",
    "ModelMismatchError",
    "NotFoundError",
    "PolicyRefusedError",
    "SourceBlockedError",
    "SourceError",
    "StorageFullError",
    "StoreError",
    "UnknownSourceError",
    "UnsafeURLError",
    "UnsupportedFormatError",
    "UsageError",
]

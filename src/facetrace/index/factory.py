"""The one place that turns :class:`~facetrace.config.Settings` into a vector index."""

from __future__ import annotations

import re

from facetrace.config import IndexBackend, Settings
from facetrace.errors import ConfigError
from facetrace.index.base import MaintainableIndex

_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def open_index(settings: Settings, dim: int, name: str = "faces") -> MaintainableIndex:
    """Open (or create) the index ``name`` of ``dim``-D vectors with the configured backend.

    - ``exact``: ``<home>/index/<name>.npz``
    - ``faiss``: the folder ``<home>/index/<name>.faiss/``
    - ``milvus``: collection ``settings.milvus_collection`` (``<collection>_<name>`` for
      names other than ``faces``) on ``settings.milvus_uri``.

    Raises :class:`ConfigError` for a bad name or a missing Milvus URI.
    """
    if not _NAME.match(name):
        raise ConfigError(f"index name must be letters, digits or _, got {name!r}")
    root = settings.home / "index"
    backend = IndexBackend(settings.index_backend)
    if backend is IndexBackend.EXACT:
        from facetrace.index.exact import ExactIndex

        root.mkdir(parents=True, exist_ok=True)
        return ExactIndex(dim, root / f"{name}.npz")
    if backend is IndexBackend.FAISS:
        from facetrace.index.faiss_backend import FaissIndex

        return FaissIndex(dim, root / f"{name}.faiss")
    if not settings.milvus_uri:
        raise ConfigError("index_backend=milvus needs FACETRACE_MILVUS_URI")
    from facetrace.index.milvus_backend import MilvusIndex

    collection = (
        settings.milvus_collection if name == "faces" else f"{settings.milvus_collection}_{name}"
    )
    return MilvusIndex(dim, settings.milvus_uri, collection)

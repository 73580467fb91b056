"""Vector index: the ``VectorIndex`` protocol, its backends, and the factory that picks one.

Backends (chosen by :func:`open_index` from ``Settings.index_backend``):
``exact`` (NumPy, the test oracle), ``faiss`` (default; :mod:`.faiss_backend`) and
``milvus`` (:mod:`.milvus_backend`, needs the ``milvus`` extra). FAISS and pymilvus are
imported only when their backend is opened.
"""

from __future__ import annotations

from facetrace.index.base import NO_RESULT, MaintainableIndex, VectorIndex
from facetrace.index.exact import ExactIndex
from facetrace.index.factory import open_index

__all__ = ["NO_RESULT", "ExactIndex", "MaintainableIndex", "VectorIndex", "open_index"]

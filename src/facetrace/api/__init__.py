"""The HTTP API (``facetrace serve``): a FastAPI app over :mod:`facetrace.operations`."""

from facetrace.api.app import create_app

__all__ = ["create_app"]

"""Identities: faces grouped into people, with the corrections people make.

Importing this package registers the identity tables' migration
(:mod:`facetrace.identity.schema`); nothing else happens at import.
"""

from __future__ import annotations

from facetrace.identity import schema as _schema  # noqa: F401 - registers migration 12

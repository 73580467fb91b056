"""Governance built in: access (roles, keys), audit log, takedown, opt-out, retention.

Importing this package registers the governance tables' migration
(:mod:`facetrace.governance.schema`); nothing else happens at import.
"""

from __future__ import annotations

from facetrace.governance import schema as _schema  # noqa: F401 - registers migration 10

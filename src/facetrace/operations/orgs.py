"""Organisations: each sees its own cases, probes, private sources and audit trail, and
the shared sources. Platform admins (admins of organisation 1) make them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetrace.errors import UsageError
from facetrace.events import OrganisationAdded
from facetrace.governance.access import Action, Actor, IssuedKey, Role, add_user, require
from facetrace.governance.repository import GovernanceStore, OrgRecord

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def add(engine: FaceTrace, actor: Actor, name: str, *, admin: str) -> IssuedKey:
    """Make organisation ``name`` and its first admin ``admin``; returns the admin's
    key, shown once. The admin then adds the organisation's other users."""
    require(engine, actor, Action.ORGS_MANAGE, f"org:{name}")
    clean = name.strip().lower()
    if not 1 <= len(clean) <= 100 or not set(clean) <= _NAME_CHARS or not clean[0].isalnum():
        raise UsageError(
            "an organisation name is 1-100 lower-case letters, digits, '-', '_' or '.'"
        )
    GovernanceStore(engine.store.engine).add_org(clean, engine.clock())
    engine.track_event(
        OrganisationAdded(
            actor=actor.label, at=engine.clock(), org=actor.org_id, name=clean, admin=admin
        )
    )
    return add_user(engine, actor, admin, Role.ADMIN.value, org=clean)


def list_orgs(engine: FaceTrace, actor: Actor) -> list[OrgRecord]:
    """Every organisation (platform admins)."""
    require(engine, actor, Action.ORGS_MANAGE)
    return GovernanceStore(engine.store.engine).list_orgs()

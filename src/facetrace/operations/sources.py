"""Sources: where photos come from, each with a lawful basis and a collection policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facetrace.errors import UnknownSourceError
from facetrace.governance.access import Action, Actor, require
from facetrace.store.repository import SourceRecord, SourceStatus, Visibility

if TYPE_CHECKING:
    from facetrace.app import FaceTrace


def list_sources(engine: FaceTrace, actor: Actor) -> list[SourceRecord]:
    """The sources the actor's organisation sees: its own and the shared ones (any
    signed-in actor)."""
    return engine.store.list_sources(actor.org_id)


def show(engine: FaceTrace, actor: Actor, name: str) -> SourceRecord:
    """One source the actor's organisation sees, with its policy (any signed-in actor)."""
    record = engine.store.get_source(name, actor.org_id)
    if record is None:
        raise UnknownSourceError(f"source {name!r} is not registered")
    return record


def add(
    engine: FaceTrace,
    actor: Actor,
    name: str,
    *,
    lawful_basis: str,
    kind: str = "folder",
    jurisdiction: str | None = None,
    policy: dict[str, Any] | None = None,
    visibility: str = Visibility.PRIVATE,
) -> SourceRecord:
    """Register a source of the actor's organisation with its lawful basis; nothing is
    collected without one. ``visibility``: ``private`` (the organisation alone sees what
    it collects) or ``shared`` (every organisation does)."""
    require(engine, actor, Action.SOURCES_MANAGE, f"source:{name}")
    return engine.add_source(
        name,
        lawful_basis=lawful_basis,
        kind=kind,
        jurisdiction=jurisdiction,
        policy=policy,
        actor=actor.label,
        org=actor.org_id,
        visibility=visibility,
    )


def update(
    engine: FaceTrace,
    actor: Actor,
    name: str,
    *,
    lawful_basis: str | None = None,
    jurisdiction: str | None = None,
    policy_changes: dict[str, Any] | None = None,
) -> SourceRecord:
    """Change the given settings of a source, keep the others; audited as ``source.updated``
    (see :meth:`~facetrace.app.FaceTrace.update_source`)."""
    require(engine, actor, Action.SOURCES_MANAGE, f"source:{name}")
    return engine.update_source(
        name,
        lawful_basis=lawful_basis,
        jurisdiction=jurisdiction,
        policy_changes=policy_changes,
        actor=actor.label,
        org=actor.org_id,
    )


def block(engine: FaceTrace, actor: Actor, name: str) -> SourceRecord:
    """Stop collecting from a source (what it yielded stays until a takedown)."""
    require(engine, actor, Action.SOURCES_MANAGE, f"source:{name}")
    return engine.set_source_status(name, SourceStatus.BLOCKED, actor=actor.label, org=actor.org_id)

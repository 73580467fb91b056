"""Sources: where photos come from, each with a lawful basis and a collection policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facetrace.errors import UnknownSourceError
from facetrace.governance.access import Action, Actor, require
from facetrace.store.repository import SourceRecord, SourceStatus

if TYPE_CHECKING:
    from facetrace.app import FaceTrace


def list_sources(engine: FaceTrace, actor: Actor) -> list[SourceRecord]:
    """Every registered source (any signed-in actor)."""
    return engine.store.list_sources()


def show(engine: FaceTrace, actor: Actor, name: str) -> SourceRecord:
    """One source, with its policy (any signed-in actor)."""
    record = engine.store.get_source(name)
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
) -> SourceRecord:
    """Register a source with its lawful basis; nothing is collected without one."""
    require(engine, actor, Action.SOURCES_MANAGE, f"source:{name}")
    return engine.add_source(
        name,
        lawful_basis=lawful_basis,
        kind=kind,
        jurisdiction=jurisdiction,
        policy=policy,
        actor=actor.label,
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
    )


def block(engine: FaceTrace, actor: Actor, name: str) -> SourceRecord:
    """Stop collecting from a source (what it yielded stays until a takedown)."""
    require(engine, actor, Action.SOURCES_MANAGE, f"source:{name}")
    return engine.set_source_status(name, SourceStatus.BLOCKED, actor=actor.label)

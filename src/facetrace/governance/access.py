"""Who may do what: users with roles, hashed API keys, and the one permission check.

Every permission question is :func:`authorize` ``(actor, action, resource)``; the CLI
and the HTTP API both call it (through :func:`require`, which also audits refusals).

API keys look like ``ftk_<key_id>_<secret>``: ``key_id`` is a public 12-hex-digit
prefix used to find the key, ``secret`` 32 random bytes (URL-safe base64). Only the
SHA-256 of the whole token is stored; it is compared in constant time. A key is
scoped (a subset of its user's role's actions; empty = all of them), may expire, and
is refused on its next use once revoked (keys are looked up on every request).

Bootstrap: while no user exists, the local operating-system user is an admin
(``local:<os user>``), so a new installation can create its first admin. Once a user
exists every request needs a key.

Organisations: every user belongs to one, and acts for it. Organisation 1 is the
operator's (:data:`~facetrace.events.PLATFORM_ORG`): its admins are the platform
admins, who alone manage organisations and run what spans every organisation
(:data:`PLATFORM_ACTIONS`). Another organisation's users, keys,
private sources, cases and audit trail are not found rather than refused, so that
a refusal tells nothing of what exists.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from facetrace.errors import AccessDeniedError, NotFoundError, UsageError
from facetrace.events import (
    PLATFORM_ORG,
    AccessDenied,
    KeyIssued,
    KeyRevoked,
    UserAdded,
    UserRevoked,
)
from facetrace.governance.repository import GovernanceStore, KeyRecord, UserRecord

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

TOKEN_PREFIX = "ftk"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}")


class Role(StrEnum):
    ADMIN = "admin"
    INVESTIGATOR = "investigator"
    AUDITOR = "auditor"
    PUBLIC = "public"  # someone without an account (a public opt-out request); no user has it


USER_ROLES = (Role.ADMIN, Role.INVESTIGATOR, Role.AUDITOR)


class Action(StrEnum):
    SEARCH = "search"
    VERIFY = "verify"
    INGEST = "ingest"
    SOURCES_MANAGE = "sources.manage"
    TAKEDOWN = "takedown"
    TAKEDOWN_HOST = "takedown.host"
    OPTOUT = "optout"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    CASES_READ = "cases.read"
    USERS_MANAGE = "users.manage"
    KEYS_MANAGE = "keys.manage"
    RETENTION_RUN = "retention.run"
    MATCH_CONFIRM = "match.confirm"
    PEOPLE_VIEW = "people.view"
    PEOPLE_EDIT = "people.edit"
    DOCTOR = "doctor"
    BACKUP = "backup"
    INDEX_MANAGE = "index.manage"
    CALIBRATE = "calibrate"
    ORGS_MANAGE = "orgs.manage"


PLATFORM_ACTIONS: frozenset[Action] = frozenset(
    {
        Action.ORGS_MANAGE,
        # A host spans every organisation's sources.
        Action.TAKEDOWN_HOST,
        # An opt-out reaches every organisation's photos and its receipt counts them.
        Action.OPTOUT,
        # Installation-wide upkeep: every organisation's data, or counts of it.
        Action.RETENTION_RUN,
        Action.DOCTOR,
        Action.BACKUP,
        Action.INDEX_MANAGE,
        Action.CALIBRATE,
        # People group faces from every organisation's sources, and their names and
        # corrections are shared; they stay with the platform until they are kept
        # per organisation.
        Action.PEOPLE_VIEW,
        Action.PEOPLE_EDIT,
    }
)
"""Actions only the platform organisation's users may take (given their role allows)."""


ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = {
    # Admins run the installation: collection, takedowns, opt-outs, people and keys.
    Role.ADMIN: frozenset(Action),
    # Investigators search and verify, read their organisation's cases, take part in
    # two-person confirmation, and group, correct and name the people their searches
    # find.
    Role.INVESTIGATOR: frozenset(
        {
            Action.SEARCH,
            Action.VERIFY,
            Action.CASES_READ,
            Action.MATCH_CONFIRM,
            Action.PEOPLE_VIEW,
            Action.PEOPLE_EDIT,
        }
    ),
    # Auditors read and check the trail and the cases it records, nothing else.
    Role.AUDITOR: frozenset({Action.AUDIT_READ, Action.AUDIT_VERIFY, Action.CASES_READ}),
    # The public may only ask to be removed (an operation that needs no action).
    Role.PUBLIC: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting. ``user_id`` is ``None`` only for the bootstrap admin.

    ``scopes``: the key's actions (``None``: every action of the role).
    """

    name: str
    role: Role
    user_id: int | None
    key_id: str | None = None
    scopes: frozenset[Action] | None = None
    org_id: int = PLATFORM_ORG

    @property
    def platform(self) -> bool:
        """Whether the actor acts for the platform organisation."""
        return self.org_id == PLATFORM_ORG

    @property
    def label(self) -> str:
        """How the audit log names the actor: user and key."""
        return self.name if self.key_id is None else f"{self.name} (key {self.key_id})"

    @property
    def bootstrap(self) -> bool:
        return self.user_id is None and self.role is Role.ADMIN


PUBLIC = Actor(name="public", role=Role.PUBLIC, user_id=None)
"""Whoever asks without an account."""


def allowed_actions(actor: Actor) -> frozenset[Action]:
    """What ``actor`` may do: the role's actions, less the platform's outside the
    platform organisation, narrowed by the key's scopes."""
    actions = ROLE_ACTIONS[actor.role]
    if not actor.platform:
        actions = actions - PLATFORM_ACTIONS
    return actions if actor.scopes is None else actions & actor.scopes


def authorize(actor: Actor, action: Action, resource: str | None = None) -> None:
    """The one permission check. Returns if allowed, else raises AccessDeniedError.

    ``resource`` names what is acted on (``case:<id>``, ``source:<name>``,
    ``user:<name>``, ``key:<id>``, ``host:<name>``...). One resource rule: a user may
    manage their own keys (``keys.manage`` on ``user:<own name>``), but only with an
    unscoped key: a key narrowed to some actions must not mint itself a wider one.
    Whether the resource belongs to the actor's organisation is for the operation to
    check, where it looks the resource up.
    """
    if action in allowed_actions(actor):
        return
    if (
        action is Action.KEYS_MANAGE
        and resource == f"user:{actor.name}"
        and not actor.bootstrap
        and actor.scopes is None
    ):
        return
    where = f" on {resource}" if resource else ""
    raise AccessDeniedError(f"access denied: {actor.label} ({actor.role}) may not {action}{where}")


def require(engine: FaceTrace, actor: Actor, action: Action, resource: str | None = None) -> None:
    """:func:`authorize`, recording a refusal in the audit log before raising."""
    try:
        authorize(actor, action, resource)
    except AccessDeniedError as exc:
        audit_refusal(engine, actor.label, action.value, str(exc), resource, org=actor.org_id)
        raise


def audit_refusal(
    engine: FaceTrace,
    actor: str,
    action: str,
    reason: str,
    resource: str | None = None,
    *,
    org: int = PLATFORM_ORG,
) -> None:
    """Record a refusal (``access.denied``): who, what they tried, on what, and why, in
    the chain of the organisation the actor speaks for (the platform's when unknown)."""
    engine.track_event(
        AccessDenied(
            actor=actor,
            at=engine.clock(),
            org=org,
            action=action,
            resource=resource,
            reason=reason,
        )
    )


# --- keys ----------------------------------------------------------------------


def token_digest(token: str) -> str:
    """SHA-256 hex of a whole token: what is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh ``(key_id, token)``; the token is shown once and never stored."""
    key_id = secrets.token_hex(6)
    return key_id, f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: ``token`` is the secret to hand over, shown once."""

    key: KeyRecord
    user: str
    token: str

    def to_dict(self) -> dict[str, object]:
        return {
            "key_id": self.key.key_id,
            "user": self.user,
            "token": self.token,
            "scopes": list(self.key.scopes),
            "expires_at": self.key.expires_at.isoformat() if self.key.expires_at else None,
        }


_DUMMY_DIGEST = token_digest("ftk_000000000000_dummy")


def authenticate(engine: FaceTrace, token: str | None, local_name: str) -> Actor:
    """The actor a request speaks for.

    No token: the bootstrap admin ``local_name`` while no user exists, else refused.
    A token must match a stored, unrevoked, unexpired key of an unrevoked user.
    """
    repo = GovernanceStore(engine.store.engine)
    if not token:
        if repo.count_users() == 0:
            return Actor(name=local_name, role=Role.ADMIN, user_id=None)
        raise AccessDeniedError(
            "access denied: users exist, so an API key is needed (--api-key or FACETRACE_API_KEY)"
        )
    parts = token.strip().split("_", 2)
    key = repo.get_key(parts[1]) if len(parts) == 3 and parts[0] == TOKEN_PREFIX else None
    digest = token_digest(token.strip())
    stored = key.digest if key is not None else _DUMMY_DIGEST
    if not hmac.compare_digest(stored, digest) or key is None:
        raise AccessDeniedError("access denied: invalid API key")
    if key.revoked_at is not None:
        raise AccessDeniedError(f"access denied: key {key.key_id} was revoked")
    if key.expires_at is not None and engine.clock() >= key.expires_at:
        raise AccessDeniedError(f"access denied: key {key.key_id} has expired")
    user = repo.get_user_by_id(key.user_id)
    if user is None or user.revoked_at is not None:
        raise AccessDeniedError(f"access denied: the user of key {key.key_id} was revoked")
    scopes = frozenset(Action(s) for s in key.scopes) if key.scopes else None
    return Actor(user.name, Role(user.role), user.id, key.key_id, scopes, user.org_id)


def user_actor(user: UserRecord) -> Actor:
    """The actor a signed-in user (no key) speaks for."""
    return Actor(user.name, Role(user.role), user.id, org_id=user.org_id)


def find_user(repo: GovernanceStore, actor: Actor, name: str) -> UserRecord | None:
    """The user ``name`` if ``actor`` may see them: of the actor's organisation, or any
    for the platform's admins. Another organisation's user is not found."""
    user = repo.get_user(name)
    if user is None or (user.org_id != actor.org_id and not actor.platform):
        return None
    return user


def _parse_scopes(role: Role, scopes: Iterable[str]) -> list[str]:
    out = []
    for s in scopes:
        try:
            action = Action(s)
        except ValueError as exc:
            raise UsageError(
                f"unknown scope {s!r}; one of {', '.join(a.value for a in Action)}"
            ) from exc
        if action not in ROLE_ACTIONS[role]:
            raise UsageError(f"a {role} cannot be given the scope {action}")
        out.append(action.value)
    return sorted(set(out))


def issue_key(
    engine: FaceTrace,
    actor: Actor,
    user_name: str,
    *,
    scopes: Iterable[str] = (),
    expires_days: float | None = None,
) -> IssuedKey:
    """Issue a key for ``user_name`` (``keys.manage``; users may issue their own)."""
    require(engine, actor, Action.KEYS_MANAGE, f"user:{user_name}")
    repo = GovernanceStore(engine.store.engine)
    user = find_user(repo, actor, user_name)
    if user is None or user.revoked_at is not None:
        raise NotFoundError(f"no active user named {user_name!r}")
    return _issue(engine, actor, user, scopes, expires_days)


def _issue(
    engine: FaceTrace,
    actor: Actor,
    user: UserRecord,
    scopes: Iterable[str],
    expires_days: float | None,
) -> IssuedKey:
    repo = GovernanceStore(engine.store.engine)
    clean = _parse_scopes(Role(user.role), scopes)
    if expires_days is not None and expires_days <= 0:
        raise UsageError("--expires-days must be positive")
    now = engine.clock()
    expires = now + timedelta(days=expires_days) if expires_days is not None else None
    key_id, token = new_token()
    record = repo.add_key(
        key_id=key_id,
        user_id=user.id,
        digest=token_digest(token),
        scopes=clean,
        now=now,
        expires_at=expires,
    )
    engine.track_event(
        KeyIssued(
            actor=actor.label,
            at=now,
            org=actor.org_id,
            key_id=key_id,
            user=user.name,
            scopes=clean,
            expires_at=expires.isoformat() if expires else None,
        )
    )
    return IssuedKey(record, user.name, token)


def revoke_key(engine: FaceTrace, actor: Actor, key_id: str) -> None:
    """Revoke a key at once (``keys.manage``; users may revoke their own)."""
    repo = GovernanceStore(engine.store.engine)
    key = repo.get_key(key_id)
    owner = repo.get_user_by_id(key.user_id) if key is not None else None
    if owner is not None and find_user(repo, actor, owner.name) is None:
        key, owner = None, None  # another organisation's key: as if it did not exist
    require(engine, actor, Action.KEYS_MANAGE, f"user:{owner.name}" if owner else f"key:{key_id}")
    if key is None or not repo.revoke_key(key_id, engine.clock()):
        raise NotFoundError(f"no active key {key_id!r}")
    engine.track_event(
        KeyRevoked(actor=actor.label, at=engine.clock(), org=actor.org_id, key_id=key_id)
    )


def list_keys(engine: FaceTrace, actor: Actor, user_name: str | None = None) -> list[KeyRecord]:
    """Keys (never their secrets); all users' with ``keys.manage``, else one's own."""
    repo = GovernanceStore(engine.store.engine)
    everyone = user_name is None and Action.KEYS_MANAGE in allowed_actions(actor)
    name = None if everyone else (user_name if user_name is not None else actor.name)
    require(engine, actor, Action.KEYS_MANAGE, f"user:{name}" if name else None)
    if name is None:
        return repo.list_keys(org_id=None if actor.platform else actor.org_id)
    user = find_user(repo, actor, name)
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    return repo.list_keys(user.id)


# --- users -----------------------------------------------------------------------


def add_user(
    engine: FaceTrace,
    actor: Actor,
    name: str,
    role: str,
    *,
    expires_days: float | None = None,
    org: str | None = None,
) -> IssuedKey:
    """Create a user (``users.manage``) and issue their first key, returned once.

    The user joins the actor's organisation; a platform admin may name another
    (``org``)."""
    require(engine, actor, Action.USERS_MANAGE, f"user:{name}")
    org_id = actor.org_id
    if org is not None:
        require(engine, actor, Action.ORGS_MANAGE, f"org:{org}")
        found = GovernanceStore(engine.store.engine).get_org(org)
        if found is None:
            raise NotFoundError(f"no organisation named {org!r}")
        org_id = found.id
    if not _NAME.fullmatch(name):
        raise UsageError("a user name is 1-100 letters, digits, '.', '_', '@' or '-'")
    parsed = Role(role) if role in {r.value for r in USER_ROLES} else None
    if parsed is None:
        raise UsageError(f"role must be one of {', '.join(r.value for r in USER_ROLES)}")
    repo = GovernanceStore(engine.store.engine)
    user = repo.add_user(name, parsed.value, engine.clock(), org_id)
    engine.track_event(
        UserAdded(actor=actor.label, at=engine.clock(), org=actor.org_id, name=name, role=parsed)
    )
    return _issue(engine, actor, user, (), expires_days)


def revoke_user(engine: FaceTrace, actor: Actor, name: str) -> None:
    """Revoke a user and all their keys at once (``users.manage``)."""
    require(engine, actor, Action.USERS_MANAGE, f"user:{name}")
    repo = GovernanceStore(engine.store.engine)
    user = find_user(repo, actor, name)
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    repo.revoke_user(user.id, engine.clock())
    engine.track_event(
        UserRevoked(actor=actor.label, at=engine.clock(), org=actor.org_id, name=name)
    )


def list_users(engine: FaceTrace, actor: Actor) -> list[UserRecord]:
    """The organisation's users (every organisation's for a platform admin)."""
    require(engine, actor, Action.USERS_MANAGE)
    repo = GovernanceStore(engine.store.engine)
    return repo.list_users(None if actor.platform else actor.org_id)

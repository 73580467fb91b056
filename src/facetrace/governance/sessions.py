"""People sign in with a password and hold a session; machines use API keys.

Passwords are hashed with argon2id (``argon2-cffi``, its default parameters); a
sign-in with an unknown name verifies against a dummy hash, so the answer takes the
same time either way. A session token (``fts_<random>``) travels in an HttpOnly
cookie and is stored as its SHA-256 only; each session has a CSRF token that every
state-changing request made with the cookie must echo in a header. Changing a
password, or revoking the user, ends their sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from facetrace.errors import AccessDeniedError, NotFoundError, UsageError
from facetrace.events import PLATFORM_ORG, PasswordSet, SignedIn, SignedOut, SignInFailed
from facetrace.governance.access import Action, Actor, find_user, require, user_actor
from facetrace.governance.repository import GovernanceStore

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

SESSION_PREFIX = "fts"
MIN_PASSWORD = 12
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of anyone's")


@dataclass(frozen=True, slots=True)
class Session:
    """A new session: ``token`` goes in the cookie, ``csrf`` to the page; both once."""

    token: str
    csrf: str
    expires_at: datetime
    actor: Actor

    def to_dict(self) -> dict[str, object]:
        """What the client may see: never the session token itself."""
        return {
            "user": self.actor.name,
            "role": self.actor.role.value,
            "csrf_token": self.csrf,
            "expires_at": self.expires_at.isoformat(),
        }


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def set_password(engine: FaceTrace, actor: Actor, name: str, password: str) -> None:
    """Set ``name``'s password (``users.manage``, or one's own with an unscoped key)."""
    repo = GovernanceStore(engine.store.engine)
    own = name == actor.name and not actor.bootstrap and actor.scopes is None
    if not own:
        require(engine, actor, Action.USERS_MANAGE, f"user:{name}")
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"a password has at least {MIN_PASSWORD} characters")
    user = find_user(repo, actor, name)
    if user is None or user.revoked_at is not None:
        raise NotFoundError(f"no active user named {name!r}")
    repo.set_password_hash(user.id, _HASHER.hash(password), engine.clock())
    engine.track_event(
        PasswordSet(actor=actor.label, at=engine.clock(), org=actor.org_id, name=name)
    )


def sign_in(engine: FaceTrace, name: str, password: str, *, address: str, hours: float) -> Session:
    """Check a password and open a session; every outcome is audited."""
    repo = GovernanceStore(engine.store.engine)
    user = repo.get_user(name)
    stored = repo.password_hash(user.id) if user is not None else None
    try:
        ok = _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        ok = False
    now = engine.clock()
    if not ok or user is None or user.revoked_at is not None:
        engine.track_event(  # in the chain of the named user's organisation, if any
            SignInFailed(
                actor="unauthenticated",
                at=now,
                org=user.org_id if user is not None else PLATFORM_ORG,
                name=name[:100],
                address=address,
            )
        )
        raise AccessDeniedError("access denied: wrong name or password")
    token = f"{SESSION_PREFIX}_{secrets.token_urlsafe(32)}"
    csrf = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=hours)
    repo.add_session(_digest(token), user.id, csrf, now, expires)
    actor = user_actor(user)
    engine.track_event(
        SignedIn(actor=actor.label, at=now, org=actor.org_id, name=user.name, address=address)
    )
    return Session(token, csrf, expires, actor)


def authenticate_session(engine: FaceTrace, token: str) -> tuple[Actor, str]:
    """The actor a session token speaks for, and the session's CSRF token."""
    repo = GovernanceStore(engine.store.engine)
    session = repo.get_session(_digest(token.strip()))
    if session is None:
        raise AccessDeniedError("access denied: not signed in")
    if session.revoked_at is not None or engine.clock() >= session.expires_at:
        raise AccessDeniedError("access denied: the session has ended; sign in again")
    user = repo.get_user_by_id(session.user_id)
    if user is None or user.revoked_at is not None:
        raise AccessDeniedError("access denied: the user was revoked")
    return user_actor(user), session.csrf


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected, given or "")


def sign_out(engine: FaceTrace, actor: Actor, token: str) -> None:
    """End a session (its owner's, from the cookie)."""
    if GovernanceStore(engine.store.engine).revoke_session(_digest(token.strip()), engine.clock()):
        engine.track_event(SignedOut(actor=actor.label, at=engine.clock(), org=actor.org_id))

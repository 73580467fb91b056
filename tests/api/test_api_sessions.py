"""People sign in with a password (argon2id) and a session cookie with CSRF protection;
anyone can ask to be removed, and learns nothing about the gallery from the answer."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest

from facetrace import FaceTrace
from facetrace.api.app import create_app
from facetrace.governance import access, sessions
from facetrace.governance.audit import AuditLog
from facetrace.vision.analyzer import FaceAnalyzer
from tests.api.conftest import Api, Served, make_gallery
from tests.conftest import DLIB, FR

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory, analyzer: FaceAnalyzer) -> Iterator[Served]:
    settings, keys = make_gallery(
        tmp_path_factory.mktemp("api-people"),
        analyzer,
        api_signin_rate=6,  # bursts of 1 per address and per name
        api_optout_rate=600,
        public_optout_seconds=1.5,
    )
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        admin = access.authenticate(ft, keys["admin"], "x")
        for name in ("inv1", "aud1"):
            sessions.set_password(ft, admin, name, PASSWORD)
    api = Api(create_app(settings, analyzer=analyzer))
    yield Served(settings, api, keys)
    api.close()


def test_sign_in_sets_a_safe_cookie_and_csrf_guards_changes(people: Served) -> None:
    api = people.api
    response = api.request("POST", "/v1/session", json={"name": "inv1", "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert (
        "HttpOnly" in cookie and "SameSite=strict" in cookie and "facetrace_session=fts_" in cookie
    )
    csrf = response.json()["csrf_token"]
    assert response.json()["role"] == "investigator" and "fts_" not in response.text
    assert api.request("GET", "/v1/people").status_code == 200  # the cookie signs it in
    probe = {"files": {"photo": ("p.jpg", (FR / "obama2.jpg").read_bytes(), "image/jpeg")}}
    form = {"case_id": "C1", "reason": "r"}
    no_csrf = api.request("POST", "/v1/search", data=form, **probe)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]["message"]
    wrong = api.request("POST", "/v1/search", data=form, headers={"X-CSRF-Token": "x"}, **probe)
    assert wrong.status_code == 403
    ok = api.request("POST", "/v1/search", data=form, headers={"X-CSRF-Token": csrf}, **probe)
    assert ok.status_code == 200 and ok.json()["faces"][0]["matches"]
    # a role is a role, however one signs in
    assert api.request("GET", "/v1/users").status_code == 403
    out = api.request("DELETE", "/v1/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204 and 'facetrace_session=""' in out.headers["set-cookie"]
    api.client.cookies.set("facetrace_session", cookie.split(";")[0].split("=", 1)[1])
    assert api.request("GET", "/v1/people").status_code == 401  # the session is over
    api.client.cookies.clear()


def test_wrong_passwords_and_unknown_names_are_refused_alike(people: Served) -> None:
    tries = [("aud1", "nope" * 4), ("ghost", PASSWORD), ("admin1", PASSWORD)]  # admin1: none set
    for n, (name, password) in enumerate(tries):
        response = people.api.request(
            "POST",
            "/v1/session",
            json={"name": name, "password": password},
            address=f"198.51.100.{n}",
        )
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "wrong name or password"


def test_the_password_is_stored_as_argon2id_only(people: Served) -> None:
    db = people.settings.home / "facetrace.db"
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT password_hash FROM users WHERE name = 'inv1'").fetchone()[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    raw = db.read_bytes() + (db.parent / "facetrace.db-wal").read_bytes()
    assert PASSWORD.encode() not in raw


def test_sign_in_is_rate_limited(people: Served) -> None:
    def attempt(name: str, address: str) -> int:
        return people.api.request(
            "POST",
            "/v1/session",
            json={"name": name, "password": "wrong password!"},
            address=address,
        ).status_code

    assert attempt("nobody-yet", "192.0.2.1") == 401
    assert attempt("someone-else", "192.0.2.1") == 429  # this address, again at once
    assert attempt("nobody-yet", "192.0.2.2") == 429  # this name, from another address


def test_a_new_password_ends_old_sessions(people: Served) -> None:
    with FaceTrace.open(people.settings) as ft:
        admin = access.authenticate(ft, people.keys["admin"], "x")
        sessions.set_password(ft, admin, "admin1", PASSWORD)
        session = sessions.sign_in(ft, "admin1", PASSWORD, address="t", hours=1)
        actor, _ = sessions.authenticate_session(ft, session.token)
        assert actor.name == "admin1"
        with pytest.raises(Exception, match="at least 12"):
            sessions.set_password(ft, actor, "admin1", "short")
        sessions.set_password(ft, actor, "admin1", PASSWORD + "!")
        with pytest.raises(Exception, match="ended"):
            sessions.authenticate_session(ft, session.token)


def test_public_optout_looks_the_same_whether_or_not_the_person_is_there(
    people: Served,
) -> None:
    api = people.api

    def ask(photo: bytes) -> tuple[dict[str, object], float]:
        started = time.monotonic()
        response = api.request(
            "POST", "/v1/public/optout", files={"photo": ("me.jpg", photo, "image/jpeg")}
        )
        assert response.status_code == 200, response.text
        return response.json(), time.monotonic() - started

    stats = api.request("GET", "/v1/stats", key=people.keys["admin"]).json()
    absent, t_absent = ask((FR / "biden.jpg").read_bytes())
    present, t_present = ask((FR / "obama2.jpg").read_bytes())
    assert set(absent) == set(present) == {"request_id", "status", "at", "message"}
    assert absent["status"] == present["status"] and absent["message"] == present["message"]
    assert min(t_absent, t_present) >= 1.5  # both held to the floor
    assert abs(t_absent - t_present) < 0.5
    after = api.request("GET", "/v1/stats", key=people.keys["admin"]).json()
    assert after["faces"] == stats["faces"] - 1  # Obama's face is gone
    kinds = [(e.kind, e.actor) for e in AuditLog_for(people).entries()]
    assert kinds.count(("optout.processed", "public")) == 2
    faceless = api.request(
        "POST", "/v1/public/optout", files={"photo": ("d.jpg", (DLIB / "dogs.jpg").read_bytes())}
    )
    assert faceless.status_code == 400 and "no face" in faceless.json()["error"]["message"]


def AuditLog_for(served: Served) -> AuditLog:
    from sqlalchemy import create_engine

    return AuditLog(create_engine(served.settings.resolved_database_url))

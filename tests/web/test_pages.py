"""Every page against every role, in process: a page refuses exactly what the operation
it calls refuses (nothing is checked only in the browser), changes need the session's
CSRF token, and errors are pages, not JSON or tracebacks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from facetrace import FaceTrace
from facetrace.api.app import create_app
from facetrace.governance import access, sessions
from facetrace.governance.access import Action
from facetrace.vision.analyzer import FaceAnalyzer
from tests.api.conftest import Api, Served, make_gallery
from tests.conftest import FR

PASSWORD = "correct horse battery staple"
ROLES = {"admin": "admin1", "investigator": "inv1", "auditor": "aud1"}
OBAMA = (FR / "obama2.jpg").read_bytes()
BIDEN = (FR / "biden.jpg").read_bytes()
CASE = "CASE-PAGES"

# (method, path, form, files, what the operation behind it needs; None: anyone signed in)
PAGES: list[tuple[str, str, dict[str, str], dict[str, Any] | None, Action | None]] = [
    ("GET", "/ui/search", {}, None, None),
    (
        "POST",
        "/ui/search",
        {"case_id": CASE, "reason": "page matrix"},
        {"photo": ("p.jpg", OBAMA, "image/jpeg")},
        Action.SEARCH,
    ),
    ("GET", "/ui/cases", {}, None, Action.CASES_READ),
    ("GET", f"/ui/cases/{CASE}", {}, None, Action.CASES_READ),
    ("POST", f"/ui/cases/{CASE}/confirm", {"face_id": "1"}, None, Action.MATCH_CONFIRM),
    ("GET", "/ui/sources", {}, None, None),
    (
        "POST",
        "/ui/sources",
        {"name": "new-{role}", "lawful_basis": "test"},
        None,
        Action.SOURCES_MANAGE,
    ),
    (
        "POST",
        "/ui/sources/s1/photos",
        {},
        {"photos": ("b.jpg", BIDEN, "image/jpeg")},
        Action.INGEST,
    ),
    ("POST", "/ui/sources/victim/block", {}, None, Action.SOURCES_MANAGE),
    ("POST", "/ui/sources/victim/takedown", {}, None, Action.TAKEDOWN),
    ("GET", "/ui/tasks/1", {}, None, Action.TAKEDOWN),
    ("GET", "/ui/optout", {}, None, None),
    ("POST", "/ui/optout", {}, {"photo": ("b.jpg", BIDEN, "image/jpeg")}, Action.OPTOUT),
    ("GET", "/ui/audit", {}, None, Action.AUDIT_VERIFY),
    ("GET", f"/ui/audit?case_id={CASE}", {}, None, Action.AUDIT_READ),
    ("GET", "/ui/admin", {}, None, None),
    ("POST", "/ui/admin/users", {"name": "u-{role}", "role": "auditor"}, None, Action.USERS_MANAGE),
    ("POST", "/ui/admin/keys", {"user": "{user}"}, None, None),  # one's own key
    (
        "POST",
        "/ui/admin/orgs",
        {"name": "org-{role}", "admin": "oa-{role}"},
        None,
        Action.ORGS_MANAGE,
    ),
    # Last: a new password ends the user's sessions (aud1 may set their own).
    ("POST", "/ui/admin/users/aud1/password", {"password": PASSWORD}, None, Action.USERS_MANAGE),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, analyzer: FaceAnalyzer) -> Iterator[Served]:
    rates = {f"api_{kind}_rate": 1e4 for kind in ("search", "address", "optout", "signin")}
    settings, keys = make_gallery(tmp_path_factory.mktemp("ui-pages"), analyzer, **rates)
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        admin = access.authenticate(ft, keys["admin"], "x")
        for name in ROLES.values():
            sessions.set_password(ft, admin, name, PASSWORD)
        ft.search(FR / "obama2.jpg", case_id=CASE, reason="the case the pages open")
    api = Api(create_app(settings, analyzer=analyzer))
    yield Served(settings, api, keys)
    api.close()


def _sign_in(api: Api, user: str) -> tuple[str, str]:
    """Signs ``user`` in from an address of their own; returns it and the CSRF token."""
    address = f"198.51.100.{list(ROLES.values()).index(user) + 1}"
    out = api.request(
        "POST", "/ui/signin", data={"name": user, "password": PASSWORD}, address=address
    )
    assert out.status_code == 303, out.text
    page = api.request("GET", "/ui/search", address=address)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return address, token.group(1)


@pytest.mark.parametrize("role", list(ROLES))
def test_pages_refuse_exactly_what_their_operations_refuse(site: Served, role: str) -> None:
    api, user = site.api, ROLES[role]
    address, csrf = _sign_in(api, user)
    with FaceTrace.open(site.settings) as ft:
        from facetrace.governance.repository import GovernanceStore

        record = GovernanceStore(ft.store.engine).get_user(user)
        assert record is not None
        allowed = access.allowed_actions(access.user_actor(record))
    wrong = []
    for method, path, form, files, needs in PAGES:
        data = {k: v.format(role=role, user=user) for k, v in form.items()}
        if method == "POST":
            data["csrf"] = csrf
        out = api.request(method, path, data=data or None, files=files, address=address)
        own = path == f"/ui/admin/users/{user}/password"
        expected_ok = needs is None or needs in allowed or own
        signed_out = out.headers.get("location", "").startswith("/ui/signin")
        ok = out.status_code in (200, 303) and not signed_out
        if ok != expected_ok or (not ok and out.status_code != 403):
            wrong.append(f"{method} {path}: {out.status_code} {out.text[:200]}")
        if not ok and not signed_out:  # a refusal is a page saying so
            assert out.headers["content-type"].startswith("text/html"), path
        assert "Traceback" not in out.text
    assert wrong == []


def test_changes_need_the_sessions_csrf_token(site: Served) -> None:
    api = site.api
    address, _ = _sign_in(api, "admin1")
    for token in (None, "not-the-token"):
        data = {"name": "csrf-test", "lawful_basis": "x"}
        if token:
            data["csrf"] = token
        out = api.request("POST", "/ui/sources", data=data, address=address)
        assert out.status_code in (403, 422)
        assert "csrf-test" not in api.request("GET", "/ui/sources", address=address).text


def test_errors_are_pages_and_the_api_still_answers_json(site: Served) -> None:
    api = site.api
    address, _ = _sign_in(api, "inv1")
    missing = api.request("GET", "/ui/cases/NO-SUCH-CASE", address=address)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Not found" in missing.text and "Traceback" not in missing.text
    anonymous = api.request("GET", "/ui/cases")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/ui/signin?next=/ui/cases"
    assert api.request("GET", "/v1/cases").json()["error"]["code"] == "unauthorized"
    # After signing in, a visitor goes only to a page of this UI.
    out = api.request(
        "POST",
        "/ui/signin",
        data={"name": "inv1", "password": PASSWORD, "next": "https://evil.example/"},
        address="198.51.100.77",
    )
    assert out.headers["location"] == "/ui/search"

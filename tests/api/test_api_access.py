"""Every endpoint x every actor through the HTTP API: 0 unauthorised successes.

Each endpoint calls one operation; what it needs comes from the operations'
catalogue, and the roles' grants from the policy written out in test_access.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from facetrace.governance.access import Role
from facetrace.operations import ANYONE, CATALOGUE
from tests.api.conftest import Served
from tests.conftest import DLIB, FR
from tests.governance.test_access import EXPECTED


def photo(path: Any, field: str = "photo") -> Callable[[], dict[str, Any]]:
    return lambda: {"files": {field: (path.name, path.read_bytes(), "image/jpeg")}}


def two_photos() -> dict[str, Any]:
    a, b = FR / "obama.jpg", FR / "obama2.jpg"
    return {
        "files": {
            "photo_a": (a.name, a.read_bytes(), "image/jpeg"),
            "photo_b": (b.name, b.read_bytes(), "image/jpeg"),
        }
    }


def search_form() -> dict[str, Any]:
    return {**photo(FR / "obama2.jpg")(), "data": {"case_id": "C1", "reason": "r"}}


def nothing() -> dict[str, Any]:
    return {}


def body(data: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: {"json": data}


# (method, path, request, operation called)
ENDPOINTS: list[tuple[str, str, Callable[[], dict[str, Any]], str]] = [
    ("POST", "/v1/search", search_form, "search"),
    ("POST", "/v1/verify", two_photos, "verify"),
    ("GET", "/v1/faces/1/thumbnail", nothing, "search"),
    ("GET", "/v1/stats", nothing, "stats"),
    ("GET", "/v1/people", nothing, "people.list"),
    ("GET", "/v1/people/999", nothing, "people.show"),
    ("GET", "/v1/sources", nothing, "sources.list"),
    ("POST", "/v1/sources", body({"name": "new-src", "lawful_basis": "b"}), "sources.add"),
    ("GET", "/v1/sources/s1", nothing, "sources.show"),
    ("PATCH", "/v1/sources/s1", body({"jurisdiction": "GB"}), "sources.update"),
    ("POST", "/v1/sources/victim/block", nothing, "sources.block"),
    ("POST", "/v1/sources/s1/photos", photo(DLIB / "dogs.jpg", "photos"), "ingest"),
    ("GET", "/v1/jobs", nothing, "jobs.list"),
    ("GET", "/v1/jobs/999", nothing, "jobs.show"),
    ("POST", "/v1/takedowns", body({"host": "nothing.example"}), "tasks.takedown.host"),
    ("POST", "/v1/optout", photo(DLIB / "dogs.jpg"), "tasks.optout"),
    ("GET", "/v1/tasks/999", nothing, "tasks.show"),
    (
        "POST",
        "/v1/sources/s1/urls",
        body({"urls": ["http://127.0.0.1:9/x.jpg"]}),
        "tasks.ingest.urls",
    ),
    ("POST", "/v1/confirmations", body({"face_id": 999999, "case_id": "C1"}), "confirm"),
    ("POST", "/v1/retention/run", nothing, "retention.run"),
    ("GET", "/v1/audit/head", nothing, "audit.head"),
    ("GET", "/v1/audit/verify", nothing, "audit.verify"),
    ("GET", "/v1/audit/export?case_id=C1", nothing, "audit.export"),
    ("GET", "/v1/cases", nothing, "cases.list"),
    ("GET", "/v1/cases/C1", nothing, "cases.show"),
    ("GET", "/v1/cases/C1/report", nothing, "cases.report"),
    ("GET", "/v1/users", nothing, "users.list"),
    ("POST", "/v1/users", body({"name": "zed", "role": "auditor"}), "users.add"),
    ("DELETE", "/v1/users/nobody", nothing, "users.revoke"),
    ("PUT", "/v1/users/admin1/password", body({"password": "x" * 12}), "users.password"),
    ("GET", "/v1/keys?user=admin1", nothing, "keys.list"),
    ("POST", "/v1/keys", body({"user": "admin1"}), "keys.add"),
    ("DELETE", "/v1/keys/000000000000", nothing, "keys.revoke"),
    ("GET", "/v1/index", nothing, "index.stats"),
    ("GET", "/v1/orgs", nothing, "orgs.list"),
    ("POST", "/v1/orgs", body({"name": "new-org", "admin": "new-org-admin"}), "orgs.add"),
]
ACTORS = ["admin", "investigator", "auditor", "anonymous", "bad-key", "revoked", "expired"]
OUTCOMES: dict[str, int] = {"unauthorised_successes": 0, "checked": 0}


def expected_allowed(actor: str, op_name: str) -> bool | None:
    """True/False for a signed-in role; None where the key itself is refused (401)."""
    if actor not in ("admin", "investigator", "auditor"):
        return None
    needs = CATALOGUE[op_name].needs
    if needs is ANYONE:
        return True
    action = getattr(needs, "action", needs)
    return action in EXPECTED[Role(actor)]


# Signing in and out, and the public opt-out, are for people without a key: they are
# tested in test_api_sessions.py.
NOT_IN_MATRIX = {("POST", "/v1/session"), ("DELETE", "/v1/session"), ("POST", "/v1/public/optout")}
PATH_PARAMS = {"face_id", "person_id", "name", "job_id", "key_id", "task_id", "case_id"}


def test_every_route_is_in_the_matrix(served: Served) -> None:
    routes = {
        (method, route.path)  # type: ignore[attr-defined]
        for route in served.api.app.routes
        for method in getattr(route, "methods", set()) - {"HEAD"}
        if route.path.startswith("/v1/")  # type: ignore[attr-defined]
    } - NOT_IN_MATRIX
    listed = set()
    for method, path, _, _ in ENDPOINTS:
        for route_method, route_path in routes:
            pattern = route_path.replace("{", "").replace("}", "")
            parts, given = pattern.split("/"), path.split("?")[0].split("/")
            if route_method == method and len(parts) == len(given):
                same = all(
                    a == b or r in PATH_PARAMS for a, b, r in zip(parts, given, parts, strict=True)
                )
                if same:
                    listed.add((route_method, route_path))
    assert routes == listed


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(
    ("method", "path", "request_", "op"), ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS]
)
def test_every_endpoint_for_every_actor(
    served: Served,
    method: str,
    path: str,
    request_: Callable[[], dict[str, Any]],
    op: str,
    actor: str,
) -> None:
    response = served.api.request(method, path, key=served.keys[actor], **request_())
    if response.status_code != 204:
        assert response.headers["content-type"].startswith(
            ("application/json", "image/", "application/pdf")
        ), path
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"] and "Traceback" not in error["message"]
    allowed = expected_allowed(actor, op)
    OUTCOMES["checked"] += 1
    if allowed is None:
        assert response.status_code == 401, response.text
    else:
        judge(response, allowed, OUTCOMES)


def judge(response: Any, allowed: bool, outcomes: dict[str, int]) -> None:
    """An allowed request is neither refused nor a server error; a refused one is 403
    (counted in ``outcomes`` when it succeeded instead)."""
    if allowed:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text
    else:
        if response.status_code < 400:
            outcomes["unauthorised_successes"] += 1
        assert response.status_code == 403, response.text


def test_matrix_summary() -> None:
    """Printed for the record (run with -s): the matrix's size and its failures."""
    print(
        f"\nAPI access matrix: {len(ENDPOINTS)} endpoints x {len(ACTORS)} actors = "
        f"{OUTCOMES['checked']} requests checked, "
        f"{OUTCOMES['unauthorised_successes']} unauthorised successes"
    )
    assert OUTCOMES["unauthorised_successes"] == 0

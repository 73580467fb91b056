"""Organisations through the HTTP API: every endpoint x role x organisation, with 0
unauthorised successes and 0 cross-organisation leaks, and what each organisation
sees of a shared gallery.

Three organisations share one gallery: the platform's (1, the operator's), acme and
beta. Each holds a private source, a case searched under a secret case ID and reason,
and a photo whose origin names it. No response to one organisation's users may carry
another's secrets; a platform admin sees other organisations' users (they manage
them), nothing else of theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from facetrace import FaceTrace, Settings
from facetrace import operations as ops
from facetrace.api.app import create_app
from facetrace.governance import access
from facetrace.governance.access import Actor, Role
from facetrace.operations import ANYONE, CATALOGUE
from facetrace.vision.analyzer import FaceAnalyzer
from tests.api.conftest import Api
from tests.api.test_api_access import ENDPOINTS, judge
from tests.conftest import FR, JOHNS
from tests.governance.conftest import ADMIN
from tests.governance.test_access import expected_actions
from tests.governance.test_cases import pdf_text

ORGS = ["platform", "acme", "beta"]
ROLES = ["admin", "investigator", "auditor"]
SALLEY = sorted((JOHNS / "John_Salley").glob("*.jpg"))
SAVAGE = sorted((JOHNS / "John_Savage").glob("*.jpg"))
SCHNEIDER = sorted((JOHNS / "John_Schneider").glob("*.jpg"))
# Each organisation's private photo (a second photo of the person is the probe).
PRIVATE_PHOTO = {"platform": FR / "biden.jpg", "acme": SALLEY[0], "beta": SCHNEIDER[0]}


@dataclass
class World:
    settings: Settings
    api: Api
    keys: dict[tuple[str, str], str]  # (org, role) -> key
    org_ids: dict[str, int]

    def call(self, org: str, role: str, method: str, path: str, **kw: Any) -> Any:
        return self.api.request(method, path, key=self.keys[(org, role)], **kw)


def secrets_of(org: str) -> list[str]:
    """What no other organisation may see of ``org``."""
    return [f"secret-{org}-src", f"SECRET-{org}-CASE", f"SECRET-{org}-REASON", f"{org}-origin"]


def user_names(org: str) -> list[str]:
    return [f"{org}-{role}" for role in ROLES]


def _upload(ft: FaceTrace, actor: Actor, source: str, org: str, path: Path) -> None:
    summary = ops.ingest.upload(
        ft, actor, source, [(f"{org}-origin-{path.name}", path.read_bytes())]
    )
    assert summary.faces_added == 1, summary


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, analyzer: FaceAnalyzer) -> Iterator[World]:
    limits = {"api_search_rate": 1e4, "api_address_rate": 1e4, "api_optout_rate": 1e4}
    settings = Settings(
        home=tmp_path_factory.mktemp("orgs"), workers=1, match_threshold=0.6, **limits
    )
    keys: dict[tuple[str, str], str] = {}
    org_ids = {"platform": 1}
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        # The sources the shared endpoint matrix names (s1, victim) are the platform's.
        ft.add_source("s1", lawful_basis="t")
        ft.add_source("victim", lawful_basis="t")
        ft.ingest([FR / "obama.jpg"], source="s1", workers=1)
        keys[("platform", "admin")] = access.add_user(ft, ADMIN, "admin1", "admin").token
        platform = access.authenticate(ft, keys[("platform", "admin")], "x")
        for role in ("investigator", "auditor"):
            keys[("platform", role)] = access.add_user(ft, platform, f"platform-{role}", role).token
        for org in ("acme", "beta"):
            keys[(org, "admin")] = ops.orgs.add(ft, platform, org, admin=f"{org}-admin").token
            admin = access.authenticate(ft, keys[(org, "admin")], "x")
            org_ids[org] = admin.org_id
            for role in ("investigator", "auditor"):
                keys[(org, role)] = access.add_user(ft, admin, f"{org}-{role}", role).token
        actors = {k: access.authenticate(ft, v, "x") for k, v in keys.items()}
        for org in ORGS:
            admin = actors[(org, "admin")]
            ops.sources.add(ft, admin, f"secret-{org}-src", lawful_basis="t")
            _upload(ft, admin, f"secret-{org}-src", org, PRIVATE_PHOTO[org])
        # acme shares John Savage's photo; beta holds the same photo privately too.
        ops.sources.add(
            ft, actors[("acme", "admin")], "acme-shared", lawful_basis="t", visibility="shared"
        )
        _upload(ft, actors[("acme", "admin")], "acme-shared", "shared", SAVAGE[0])
        beta_admin = actors[("beta", "admin")]
        ops.ingest.upload(
            ft, beta_admin, "secret-beta-src", [("beta-origin-savage.jpg", SAVAGE[0].read_bytes())]
        )
        for org in ORGS:
            ops.gallery.search(
                ft,
                actors[(org, "investigator")],
                PRIVATE_PHOTO[org],
                case_id=f"SECRET-{org}-CASE",
                reason=f"SECRET-{org}-REASON",
            )
    api = Api(create_app(settings, analyzer=analyzer))
    yield World(settings, api, keys, org_ids)
    api.close()


def search(world: World, org: str, probe: Path, case: str = "C-probe") -> dict[str, Any]:
    response = world.call(
        org,
        "investigator",
        "POST",
        "/v1/search",
        files={"photo": (probe.name, probe.read_bytes(), "image/jpeg")},
        data={"case_id": case, "reason": "r"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def origins(result: dict[str, Any]) -> set[str]:
    return {p["origin"] for f in result["faces"] for m in f["matches"] for p in m["provenance"]}


def test_a_private_source_is_found_by_its_owner_only(world: World) -> None:
    probe = SALLEY[1]  # another photo of acme's private person
    mine = search(world, "acme", probe)
    assert any("acme-origin" in o for o in origins(mine))  # the control: it is findable
    for other in ("platform", "beta"):
        theirs = search(world, other, probe)
        assert not any("acme-origin" in o for o in origins(theirs)), theirs


def test_a_shared_photo_shows_each_organisation_only_the_sightings_it_sees(world: World) -> None:
    probe = SAVAGE[1]
    seen = {org: origins(search(world, org, probe)) for org in ORGS}
    for org in ORGS:
        assert any(o.startswith("upload:shared-origin") for o in seen[org]), (org, seen[org])
    assert any("beta-origin" in o for o in seen["beta"])  # beta's own private sighting
    assert not any("beta-origin" in o for o in seen["acme"] | seen["platform"])


def test_gallery_size_counts_what_the_organisation_sees(world: World) -> None:
    sizes = {org: search(world, org, SAVAGE[1])["gallery_size"] for org in ORGS}
    stats = {org: world.call(org, "investigator", "GET", "/v1/stats").json() for org in ORGS}
    # Each sees its own private face(s) and the shared one; beta's copy of the shared
    # photo is the same photo (one face), so each sees two faces.
    assert sizes == {"platform": 3, "acme": 2, "beta": 2}, sizes  # platform: s1 + its own
    assert {org: s["faces"] for org, s in stats.items()} == sizes


def test_another_organisations_things_are_not_found_alike(world: World) -> None:
    """A private source, job, task, face or user of another organisation answers as one
    that does not exist: same status, same message but for the name."""

    def shape(response: Any, name: str) -> tuple[int, str]:
        return response.status_code, response.json()["error"]["message"].replace(name, "NAME")

    pairs = [
        ("GET", "/v1/sources/{}", "secret-beta-src", "no-such-src"),
        ("PATCH", "/v1/sources/{}", "secret-beta-src", "no-such-src"),
        ("POST", "/v1/sources/{}/block", "secret-beta-src", "no-such-src"),
        ("DELETE", "/v1/users/{}", "beta-auditor", "no-such-user"),
        ("PUT", "/v1/users/{}/password", "beta-auditor", "no-such-user"),
        ("GET", "/v1/keys?user={}", "beta-auditor", "no-such-user"),
    ]
    for method, path, theirs, missing in pairs:
        kw: dict[str, Any] = {}
        if method == "PATCH":
            kw = {"json": {"jurisdiction": "GB"}}
        if method == "PUT":
            kw = {"json": {"password": "x" * 12}}
        a = world.call("acme", "admin", method, path.format(theirs), **kw)
        b = world.call("acme", "admin", method, path.format(missing), **kw)
        assert shape(a, theirs) == shape(b, missing), (path, a.text, b.text)
        assert a.status_code == 404
    # a face only beta sees: no thumbnail, no confirmation
    beta = search(world, "beta", SCHNEIDER[1])
    face = beta["faces"][0]["matches"][0]["face_id"]
    for org in ("acme", "platform"):
        got = world.call(org, "investigator", "GET", f"/v1/faces/{face}/thumbnail")
        none = world.call(org, "investigator", "GET", "/v1/faces/99999999/thumbnail")
        assert shape(got, str(face)) == shape(none, "99999999")
        confirm = world.call(
            org, "investigator", "POST", "/v1/confirmations", json={"face_id": face, "case_id": "X"}
        )
        assert confirm.status_code == 404


def test_each_organisation_audits_its_own_chain(world: World) -> None:
    heads = {}
    for org in ORGS:
        exported = world.call(org, "auditor", "GET", f"/v1/audit/export?case_id=SECRET-{org}-CASE")
        assert exported.status_code == 200
        assert [e["kind"] for e in exported.json()["entries"]] == ["search.performed"]
        verified = world.call(org, "auditor", "GET", "/v1/audit/verify").json()
        assert verified["ok"], verified
        heads[org] = verified["head"]
        for other in ORGS:
            if other != org:
                theirs = world.call(
                    org, "auditor", "GET", f"/v1/audit/export?case_id=SECRET-{other}-CASE"
                ).json()
                assert theirs["entries"] == []
    assert len({h["hash"] for h in heads.values()}) == 3  # three chains


def test_another_organisations_case_is_not_found_and_no_case_leaks(
    world: World, tmp_path: Path
) -> None:
    for path in ("/v1/cases/{}", "/v1/cases/{}/report"):
        theirs = world.call("acme", "auditor", "GET", path.format("SECRET-beta-CASE"))
        missing = world.call("acme", "auditor", "GET", path.format("no-such-case"))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["error"]["message"].replace("SECRET-beta-CASE", "X") == (
            missing.json()["error"]["message"].replace("no-such-case", "X")
        )
    listed = {c["case_id"] for c in world.call("acme", "investigator", "GET", "/v1/cases").json()}
    assert "SECRET-acme-CASE" in listed
    assert not listed & {"SECRET-beta-CASE", "SECRET-platform-CASE"}
    own = world.call("acme", "auditor", "GET", "/v1/cases/SECRET-acme-CASE")
    assert own.status_code == 200  # the control: an organisation reads its own case
    assert own.json()["searches"][0]["reason"] == "SECRET-acme-REASON"
    report = world.call("acme", "auditor", "GET", "/v1/cases/SECRET-acme-CASE/report")
    assert report.status_code == 200
    shown = own.text + pdf_text(report.content, tmp_path / "acme.pdf")  # the PDF is compressed
    assert "SECRET-acme-REASON" in shown
    assert not [s for s in _forbidden_text("acme") if s in shown]


def test_only_platform_admins_manage_organisations(world: World) -> None:
    made = world.call(
        "platform", "admin", "POST", "/v1/orgs", json={"name": "gamma", "admin": "g-admin"}
    )
    assert made.status_code == 201 and made.json()["user"] == "g-admin"
    listed = world.call("platform", "admin", "GET", "/v1/orgs").json()
    assert {o["name"] for o in listed} >= {"default", "acme", "beta", "gamma"}
    for org in ("acme", "beta"):
        refused = world.call(org, "admin", "POST", "/v1/orgs", json={"name": "x", "admin": "x"})
        assert refused.status_code == 403
        # an organisation's admin sees its own users only
        users = {u["name"] for u in world.call(org, "admin", "GET", "/v1/users").json()}
        assert users == set(user_names(org))


def test_one_organisations_source_names_do_not_collide_with_anothers(world: World) -> None:
    for org in ("acme", "beta"):
        made = world.call(
            org, "admin", "POST", "/v1/sources", json={"name": "archive", "lawful_basis": "b"}
        )
        assert made.status_code == 201, made.text
    again = world.call(
        "acme", "admin", "POST", "/v1/sources", json={"name": "archive", "lawful_basis": "b"}
    )
    assert again.status_code == 409


def test_another_organisations_shared_source_is_seen_not_changed(world: World) -> None:
    shown = world.call("beta", "admin", "GET", "/v1/sources/acme-shared")
    assert shown.status_code == 200 and shown.json()["visibility"] == "shared"
    for method, path in (
        ("POST", "/v1/sources/acme-shared/block"),
        ("PATCH", "/v1/sources/acme-shared"),
    ):
        refused = world.call("beta", "admin", method, path, json={"jurisdiction": "GB"})
        assert refused.status_code == 403, refused.text
    taken = world.call("beta", "admin", "POST", "/v1/takedowns", json={"source": "acme-shared"})
    assert taken.status_code == 403 and "another organisation" in taken.text
    gone = world.call("beta", "admin", "POST", "/v1/takedowns", json={"source": "secret-acme-src"})
    missing = world.call("beta", "admin", "POST", "/v1/takedowns", json={"source": "no-such"})
    assert gone.status_code == missing.status_code == 404
    host = world.call("beta", "admin", "POST", "/v1/takedowns", json={"host": "example.org"})
    assert host.status_code == 403  # hosts span every organisation: the platform's


OUTCOMES: dict[str, int] = {"checked": 0, "unauthorised_successes": 0, "leaks": 0}


def _expected(org: str, role: str, op_name: str) -> bool:
    needs = CATALOGUE[op_name].needs
    if needs is ANYONE:
        return True
    action = getattr(needs, "action", needs)
    return action in expected_actions(Role(role), 1 if org == "platform" else 2)


def _forbidden_text(viewer: str) -> list[str]:
    out = [s for org in ORGS if org != viewer for s in secrets_of(org)]
    if viewer != "platform":  # platform admins manage every organisation's users
        out += [n for org in ORGS if org != viewer for n in user_names(org)]
        out += ["admin1"]
    return out


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("org", ORGS)
@pytest.mark.parametrize(
    ("method", "path", "request_", "op"), ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS]
)
def test_every_endpoint_for_every_role_of_every_organisation(
    world: World,
    method: str,
    path: str,
    request_: Callable[[], dict[str, Any]],
    op: str,
    org: str,
    role: str,
) -> None:
    sent = request_()
    response = world.call(org, role, method, path, **sent)
    OUTCOMES["checked"] += 1
    asked = path + repr(sent.get("json", ""))  # a name the caller gave may be echoed
    text = (
        response.text
        if response.status_code != 200 or "image" not in response.headers.get("content-type", "")
        else ""
    )
    leaked = [s for s in _forbidden_text(org) if s in text and s not in asked]
    if leaked:
        OUTCOMES["leaks"] += 1
    assert not leaked, (org, role, path, leaked)
    if response.status_code >= 400:
        assert "Traceback" not in response.json()["error"]["message"]
    judge(response, _expected(org, role, op), OUTCOMES)


def test_org_matrix_summary() -> None:
    """Printed for the record (run with -s)."""
    print(
        f"\nAPI organisation matrix: {len(ENDPOINTS)} endpoints x {len(ROLES)} roles x "
        f"{len(ORGS)} organisations = {OUTCOMES['checked']} requests checked, "
        f"{OUTCOMES['unauthorised_successes']} unauthorised successes, "
        f"{OUTCOMES['leaks']} cross-organisation leaks"
    )
    assert OUTCOMES["checked"] == len(ENDPOINTS) * len(ROLES) * len(ORGS)
    assert OUTCOMES["unauthorised_successes"] == 0 and OUTCOMES["leaks"] == 0

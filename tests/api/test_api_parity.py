"""The CLI and the API are two faces over the same operations: the same scenario run
through both gives the same result."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from facetrace.cli.main import app
from tests.api.conftest import Served
from tests.conftest import DLIB, FR


def cli(served: Served, who: str, *args: str) -> Any:
    env = {"FACETRACE_API_KEY": served.keys[who], "FACETRACE_MATCH_THRESHOLD": "0.6"}
    result = CliRunner().invoke(app, ["--home", str(served.settings.home), *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def api(served: Served, who: str, method: str, path: str, **kw: Any) -> Any:
    response = served.api.request(method, path, key=served.keys[who], **kw)
    assert response.status_code < 300, response.text
    return response.json()


def files(**paths: Path) -> dict[str, Any]:
    return {"files": {k: (p.name, p.read_bytes(), "image/jpeg") for k, p in paths.items()}}


def without_thumbnails(result: dict[str, Any]) -> dict[str, Any]:
    for face in result["faces"]:
        for match in face["matches"]:
            assert match.pop("thumbnail")  # a server path in one, a link in the other
    return result


SCENARIOS: dict[str, tuple[Callable[[Served], Any], Callable[[Served], Any]]] = {
    "search": (
        lambda s: without_thumbnails(
            cli(
                s,
                "investigator",
                "search",
                str(FR / "obama2.jpg"),
                "--case",
                "C9",
                "--reason",
                "parity",
                "--json",
            )
        ),
        lambda s: without_thumbnails(
            api(
                s,
                "investigator",
                "POST",
                "/v1/search",
                **files(photo=FR / "obama2.jpg"),
                data={"case_id": "C9", "reason": "parity"},
            )
        ),
    ),
    "search, no face": (
        lambda s: cli(
            s,
            "investigator",
            "search",
            str(DLIB / "dogs.jpg"),
            "--case",
            "C9",
            "--reason",
            "parity",
            "--json",
        ),
        lambda s: api(
            s,
            "investigator",
            "POST",
            "/v1/search",
            **files(photo=DLIB / "dogs.jpg"),
            data={"case_id": "C9", "reason": "parity"},
        ),
    ),
    "verify": (
        lambda s: cli(
            s, "investigator", "verify", str(FR / "obama.jpg"), str(FR / "obama2.jpg"), "--json"
        ),
        lambda s: api(
            s,
            "investigator",
            "POST",
            "/v1/verify",
            **files(photo_a=FR / "obama.jpg", photo_b=FR / "obama2.jpg"),
        ),
    ),
    "stats": (
        lambda s: cli(s, "auditor", "stats", "--json"),
        lambda s: api(s, "auditor", "GET", "/v1/stats"),
    ),
    "sources": (
        lambda s: cli(s, "admin", "sources", "list", "--json"),
        lambda s: api(s, "admin", "GET", "/v1/sources"),
    ),
    "source": (
        lambda s: cli(s, "admin", "sources", "show", "s1", "--json"),
        lambda s: api(s, "admin", "GET", "/v1/sources/s1"),
    ),
    "people": (
        lambda s: cli(s, "investigator", "people", "list", "--json"),
        lambda s: api(s, "investigator", "GET", "/v1/people"),
    ),
    "users": (
        lambda s: cli(s, "admin", "users", "list", "--json"),
        lambda s: api(s, "admin", "GET", "/v1/users"),
    ),
    "audit verify": (
        lambda s: {
            k: v
            for k, v in cli(s, "auditor", "audit", "verify", "--json").items()
            if k not in ("entries", "head")
        },
        lambda s: {
            k: v
            for k, v in api(s, "auditor", "GET", "/v1/audit/verify").items()
            if k not in ("entries", "head")
        },
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_cli_and_api_agree(served: Served, scenario: str) -> None:
    through_cli, through_api = SCENARIOS[scenario]
    assert through_cli(served) == through_api(served)


def test_both_faces_write_the_same_audit_entry(served: Served) -> None:
    before = api(served, "auditor", "GET", "/v1/audit/export", params={"case_id": "C10"})
    assert before["entries"] == []
    cli(
        served,
        "investigator",
        "search",
        str(FR / "obama2.jpg"),
        "--case",
        "C10",
        "--reason",
        "both",
        "--json",
    )
    api(
        served,
        "investigator",
        "POST",
        "/v1/search",
        **files(photo=FR / "obama2.jpg"),
        data={"case_id": "C10", "reason": "both"},
    )
    entries = cli(served, "auditor", "audit", "export", "--case", "C10")["entries"]
    searches = [e for e in entries if e["kind"] == "search.performed"]
    assert len(searches) == 2
    assert searches[0]["actor"] == searches[1]["actor"]  # the same user and key
    keep = ("reason", "probe_sha256", "results", "gallery_size")
    first, second = ({k: e["payload"][k] for k in keep} for e in searches)
    assert first == second

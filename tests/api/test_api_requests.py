"""Bad requests through the API: each gets a clear JSON error and the server keeps
serving; limits on rate and size; thumbnails as links; the OpenAPI document."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from facetrace.api.app import create_app
from facetrace.vision.analyzer import FaceAnalyzer
from tests.api.conftest import Api, Served, make_gallery
from tests.conftest import DLIB, FR
from tests.test_imaging import png_bomb

OBAMA2 = (FR / "obama2.jpg").read_bytes()


def search(served: Served, data: bytes, name: str = "probe.jpg", **form: str) -> object:
    fields = {"case_id": "C1", "reason": "find the speaker", **form}
    return served.api.request(
        "POST",
        "/v1/search",
        key=served.keys["investigator"],
        files={"photo": (name, data, "application/octet-stream")},
        data=fields,
    )


def assert_still_serving(served: Served) -> None:
    response = search(served, OBAMA2)
    assert response.status_code == 200  # type: ignore[attr-defined]
    faces = response.json()["faces"]  # type: ignore[attr-defined]
    assert faces[0]["matches"][0]["origin"].endswith("obama.jpg")


def error_of(response: object, status: int) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert "Traceback" not in error["message"] and 'File "' not in error["message"]
    return str(error["message"])


def test_a_search_returns_matches_with_links_not_server_paths(served: Served) -> None:
    response = search(served, OBAMA2)
    assert response.status_code == 200  # type: ignore[attr-defined]
    match = response.json()["faces"][0]["matches"][0]  # type: ignore[attr-defined]
    assert match["distance"] < 0.6 and match["false_match_rate"] is not None
    assert match["thumbnail"] == f"/v1/faces/{match['face_id']}/thumbnail"
    thumb = served.api.request("GET", match["thumbnail"], key=served.keys["investigator"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size[0] > 0
    assert (
        served.api.request("GET", "/v1/faces/999/thumbnail", key=served.keys["admin"]).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("what", "data", "status", "says"),
    [
        ("decompression bomb", png_bomb(), 413, "pixels"),
        ("wrong type", b"%PDF-1.4 this is not a photo", 415, "not a supported image"),
        ("empty file", b"", 422, "empty"),
        ("truncated JPEG", OBAMA2[: len(OBAMA2) // 3], 422, "truncated"),
    ],
)
def test_bad_photos_get_clear_errors(
    served: Served, what: str, data: bytes, status: int, says: str
) -> None:
    assert says in error_of(search(served, data), status), what
    assert_still_serving(served)


def test_a_photo_with_no_face_is_a_clear_empty_result(served: Served) -> None:
    response = search(served, (DLIB / "dogs.jpg").read_bytes())
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.json()["faces"] == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("missing", ["case_id", "reason"])
def test_case_and_reason_are_required(served: Served, missing: str) -> None:
    fields = {"case_id": "C1", "reason": "r"}
    del fields[missing]
    response = served.api.request(
        "POST",
        "/v1/search",
        key=served.keys["investigator"],
        files={"photo": ("p.jpg", OBAMA2, "image/jpeg")},
        data=fields,
    )
    assert missing in error_of(response, 422)
    blank = search(served, OBAMA2, **{missing: "   "})
    assert "needs" in error_of(blank, 400)


def test_malformed_multipart_is_refused(served: Served) -> None:
    response = served.api.request(
        "POST",
        "/v1/search",
        key=served.keys["investigator"],
        content=b'--xyz\r\nContent-Disposition: form-data; name="photo"\r\n\r\nnot closed',
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code in (400, 422)
    error_of(response, response.status_code)
    no_boundary = served.api.request(
        "POST",
        "/v1/search",
        key=served.keys["investigator"],
        content=b"garbage",
        headers={"content-type": "multipart/form-data"},
    )
    error_of(no_boundary, no_boundary.status_code)
    assert no_boundary.status_code in (400, 422)
    assert_still_serving(served)


@pytest.mark.parametrize("which", ["expired", "revoked", "bad-key", "anonymous"])
def test_refused_keys_get_401(served: Served, which: str) -> None:
    response = served.api.request("GET", "/v1/stats", key=served.keys[which])
    message = error_of(response, 401)
    assert response.headers["www-authenticate"] == "ApiKey"
    if which in ("expired", "revoked"):
        assert which in message


def test_unknown_routes_and_methods_answer_json(served: Served) -> None:
    error_of(served.api.request("GET", "/v1/nothing-here"), 404)
    error_of(served.api.request("PUT", "/v1/stats", key=served.keys["admin"]), 405)


def test_a_duplicate_source_is_a_conflict(served: Served) -> None:
    response = served.api.request(
        "POST", "/v1/sources", key=served.keys["admin"], json={"name": "s1", "lawful_basis": "b"}
    )
    assert "already exists" in error_of(response, 409)


def test_openapi_declares_the_key_scheme_and_examples(served: Served) -> None:
    spec = served.api.request("GET", "/openapi.json").json()
    assert spec["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": spec["components"]["securitySchemes"]["APIKeyHeader"]["description"],
    }
    assert {"post"} <= set(spec["paths"]["/v1/search"])
    assert spec["paths"]["/v1/search"]["post"]["security"] == [{"APIKeyHeader": []}]
    schema = spec["components"]["schemas"]["SourceIn"]
    assert schema["properties"]["lawful_basis"]["examples"]


# --- limits: a server of its own, with small ones ----------------------------------------


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, analyzer: FaceAnalyzer) -> Served:
    settings, keys = make_gallery(
        tmp_path_factory.mktemp("api-limits"),
        analyzer,
        api_max_upload_bytes=1_000_000,
        api_search_rate=3,  # bursts of 1: a second search at once is refused
        api_optout_rate=2,
    )
    api = Api(create_app(settings, analyzer=analyzer))
    yield Served(settings, api, keys)
    api.close()


def test_an_oversized_body_is_refused_before_it_is_read(strict: Served) -> None:
    chunks_read = 0
    chunk = b"x" * 65_536

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        yield (
            b'--b\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n"
        )
        for _ in range(200):  # a 13 MB photo, sent without a length
            chunks_read += 1
            yield chunk

    response = strict.api.request(
        "POST",
        "/v1/search",
        key=strict.keys["investigator"],
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert "larger than" in error_of(response, 413)
    assert chunks_read <= 1_000_000 // len(chunk) + 2  # stopped at the cap, not at 200
    declared = strict.api.request(
        "POST",
        "/v1/search",
        key=strict.keys["investigator"],
        content=b"x" * 10,
        headers={"content-length": "50000000", "content-type": "multipart/form-data; boundary=b"},
    )
    error_of(declared, 413)
    photo = strict.api.request(
        "POST",
        "/v1/search",
        key=strict.keys["investigator"],
        files={"photo": ("p.jpg", OBAMA2, "image/jpeg")},
        data={"case_id": "C1", "reason": "r"},
    )
    assert photo.status_code == 200


def fresh_key(served: Served, user: str) -> str:
    response = served.api.request("POST", "/v1/keys", key=served.keys["admin"], json={"user": user})
    assert response.status_code == 201
    return str(response.json()["token"])


def test_search_and_optout_are_rate_limited(strict: Served) -> None:
    first_key, second_key = fresh_key(strict, "inv1"), fresh_key(strict, "inv1")

    def one_search() -> object:
        return strict.api.request(
            "POST",
            "/v1/search",
            key=first_key,
            files={"photo": ("p.jpg", (DLIB / "dogs.jpg").read_bytes(), "image/jpeg")},
            data={"case_id": "C1", "reason": "r"},
        )

    first, second = one_search(), one_search()
    assert first.status_code == 200  # type: ignore[attr-defined]
    error_of(second, 429)
    assert 1 <= int(second.headers["retry-after"]) <= 20  # type: ignore[attr-defined]
    other_key = strict.api.request(
        "POST",
        "/v1/search",
        key=second_key,
        files={"photo": ("p.jpg", (DLIB / "dogs.jpg").read_bytes(), "image/jpeg")},
        data={"case_id": "C1", "reason": "r"},
    )
    assert other_key.status_code == 200  # the limit is per key
    codes = [
        strict.api.request(
            "POST",
            "/v1/optout",
            key=strict.keys["admin"],
            files={"photo": ("p.jpg", (DLIB / "dogs.jpg").read_bytes(), "image/jpeg")},
        ).status_code
        for _ in range(2)
    ]
    assert codes[-1] == 429


def test_the_server_start_command_builds_the_app(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from facetrace.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.output

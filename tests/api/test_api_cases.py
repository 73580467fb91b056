"""Cases through the HTTP API: the list, one case as JSON, and the report as a PDF."""

from __future__ import annotations

from tests.api.conftest import Served
from tests.conftest import FR


def test_a_case_and_its_report_through_the_api(served: Served) -> None:
    probe = FR / "obama2.jpg"
    searched = served.api.request(
        "POST",
        "/v1/search",
        key=served.keys["investigator"],
        files={"photo": (probe.name, probe.read_bytes(), "image/jpeg")},
        data={"case_id": "CASE-API-2", "reason": "api report"},
    )
    assert searched.status_code == 200, searched.text
    auditor = served.keys["auditor"]
    listed = served.api.request("GET", "/v1/cases", key=auditor).json()
    assert "CASE-API-2" in {c["case_id"] for c in listed}
    shown = served.api.request("GET", "/v1/cases/CASE-API-2", key=auditor)
    assert shown.status_code == 200, shown.text
    case = shown.json()
    (search,) = case["searches"]
    assert search["reason"] == "api report" and search["actor"].startswith("inv1")
    assert search["probe_sha256"] == searched.json()["probe_sha256"]
    assert search["matches"][0]["source"] == "s1" and case["verify"]["ok"]
    report = served.api.request("GET", "/v1/cases/CASE-API-2/report", key=auditor)
    assert report.status_code == 200, report.text
    assert report.headers["content-type"] == "application/pdf"
    assert report.headers["content-disposition"] == 'attachment; filename="case-CASE-API-2.pdf"'
    assert report.content.startswith(b"%PDF")
    missing = served.api.request("GET", "/v1/cases/CASE-404/report", key=auditor)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

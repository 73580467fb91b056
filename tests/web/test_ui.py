"""The web UI in a real headless Chromium: the investigator's and the admin's story,
organisations kept apart, phone width, and axe-core on every main page."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FR
from tests.web.conftest import Site, serious_violations, sign_in, sign_out

CASE = "CASE-UI-1"


def _search(
    page: Any, photo: Path, case_id: str = CASE, reason: str = "identify the speaker"
) -> None:
    page.goto("/ui/search")
    page.get_by_label("Photo", exact=False).set_input_files(photo)
    page.get_by_label("Case ID").fill(case_id)
    page.get_by_label("Reason for this search").fill(reason)
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_selector("#results")


def _pdf_text(data: bytes, tmp_path: Path) -> str | None:
    if shutil.which("pdftotext") is None:
        return None
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode()


def test_investigator_searches_admin_takes_down_other_org_sees_nothing(
    page: Any, site: Site, tmp_path: Path
) -> None:
    # Signed out, any page leads to the sign-in page, and back after signing in.
    page.goto("/ui/cases")
    page.wait_for_load_state()
    assert "/ui/signin?next=" in page.url, page.url
    sign_in(page, "inv1")

    # A search needs a case ID and a reason before it runs (the browser asks first).
    page.get_by_label("Photo", exact=False).set_input_files(FR / "obama2.jpg")
    page.get_by_role("button", name="Search", exact=True).click()
    assert page.url.endswith("/ui/search")
    assert page.locator("#results").count() == 0

    _search(page, FR / "obama2.jpg")
    face = page.locator("#face-1")
    match = face.locator("li.match").first  # the nearest

    text = match.inner_text()
    assert "council" in text and "obama.jpg" in text  # source and where the photo was found
    assert re.search(r"False-match rate\s+\d\.\de-\d\d", text), text
    assert "Expected false matches" in text and "Date found" in text
    thumb = match.locator("img")
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator(".probe svg rect.box").count() == 1  # the face is boxed
    shot = os.environ.get("FACETRACE_UI_SCREENSHOT")
    if shot:  # how docs/img/ui-search.png is made
        page.locator("section", has=page.locator("#results")).screenshot(path=shot)

    # The case page holds the search; its report is a PDF with the case in it.
    page.get_by_role("link", name="Open the case").click()
    page.wait_for_url(f"**/ui/cases/{CASE}")
    body = page.locator("main").inner_text()
    assert CASE in body and "identify the speaker" in body and "inv1" in body
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("case report", re.I)).click()
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"%PDF")
    text = _pdf_text(data, tmp_path)
    if text is not None:
        assert CASE in text and "identify the speaker" in text

    # A change without the session's CSRF token is refused, whoever's cookie it carries.
    refused = page.request.post("/ui/sources/council/block", form={"csrf": "wrong"})
    assert refused.status == 403
    sign_out(page)

    # The admin takes the source down and sees the deletion receipt...
    sign_in(page, "admin1")
    page.goto("/ui/sources")
    page.get_by_role("button", name="Take down council").click()
    page.wait_for_url("**/ui/tasks/*")
    page.wait_for_selector("#receipt-h", timeout=60_000)
    receipt = page.locator("main").inner_text()
    assert "Status: completed" in receipt and "council" in receipt
    # ...and the same search finds nothing now.
    _search(page, FR / "obama2.jpg", reason="check after takedown")
    after = page.locator("#face-1").inner_text()
    assert "council" not in after and "obama.jpg" not in after
    sign_out(page)

    # Another organisation cannot open the case, nor its report.
    sign_in(page, "beta1")
    response = page.goto(f"/ui/cases/{CASE}")
    assert response is not None and response.status == 404
    assert "Not found" in page.locator("h1").inner_text()
    assert page.request.get(f"/v1/cases/{CASE}/report").status == 404


def test_search_page_fits_a_phone(browser: Any, site: Site) -> None:
    context = browser.new_context(base_url=site.url, viewport={"width": 360, "height": 740})
    page = context.new_page()
    try:
        sign_in(page, "inv1")
        _search(page, FR / "biden.jpg", case_id="CASE-PHONE", reason="phone check")
        assert "archive" in page.locator("#face-1").inner_text()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > 361)
                .map(e => e.tagName + '.' + e.className + ' '
                    + Math.round(e.getBoundingClientRect().right))
                .sort((a, b) => b.split(' ').pop() - a.split(' ').pop()).slice(0, 8)"""
        )
        assert width <= 360, f"the page is {width} px wide at a 360 px viewport: {wide}"
        for box in (page.locator("li.match").first, page.get_by_role("button", name="Search")):
            bounds = box.bounding_box()
            assert bounds is not None and bounds["x"] >= 0 and bounds["x"] + bounds["width"] <= 360
        assert serious_violations(page) == []
    finally:
        context.close()


MAIN_PAGES = [
    "/ui/search",
    "/ui/cases",
    "/ui/sources",
    "/ui/optout",
    "/ui/audit?verify=1",
    "/ui/admin",
]


@pytest.mark.parametrize("width", [1280, 360])
def test_main_pages_have_no_serious_accessibility_violations(
    browser: Any, site: Site, width: int
) -> None:
    context = browser.new_context(base_url=site.url, viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto("/ui/signin")
        problems = {"/ui/signin": serious_violations(page)}
        page.goto("/ui/public/optout")
        problems["/ui/public/optout"] = serious_violations(page)
        sign_in(page, "admin1")
        for path in MAIN_PAGES:
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            problems[path] = serious_violations(page)
        _search(page, FR / "biden.jpg", case_id="CASE-A11Y", reason="accessibility check")
        problems["search results"] = serious_violations(page)
        page.goto("/ui/cases/CASE-A11Y")
        problems["case page"] = serious_violations(page)
        page.goto("/ui/audit?case_id=CASE-A11Y")
        problems["audit entries"] = serious_violations(page)
        if width == 360:
            for path in MAIN_PAGES:
                page.goto(path)
                wide = page.evaluate("() => document.documentElement.scrollWidth")
                assert wide <= 360, f"{path} is {wide} px wide at 360 px"
    finally:
        context.close()
    assert {path: found for path, found in problems.items() if found} == {}

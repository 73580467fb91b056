"""A served gallery and a real headless Chromium (Debian's, driven by Playwright).

The app runs in uvicorn on a free loopback port in a thread of the test process; the
browser is Debian's ``chromium`` (``FACETRACE_CHROMIUM`` overrides the path), never a
browser that Playwright downloads. Where the browser is missing the tests skip, except
under ``.ci/run`` (``FACETRACE_REQUIRE_BROWSER=1``), where that is a failure.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from facetrace import FaceTrace, Settings
from facetrace import operations as ops
from facetrace.api.app import create_app
from facetrace.governance import access, sessions
from facetrace.vision.analyzer import FaceAnalyzer
from tests.conftest import FR
from tests.governance.conftest import ADMIN

CHROMIUM = os.environ.get("FACETRACE_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PASSWORD = "correct horse battery staple"
# Chromium as root in a sandboxed machine with no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Site:
    """A served gallery: its base URL and settings."""

    url: str
    settings: Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gallery(home: Path, analyzer: FaceAnalyzer) -> Settings:
    """Sources council (Obama) and archive (Biden) in organisation 1; users admin1,
    inv1, aud1 there and beta1, the admin of organisation beta; all with PASSWORD."""
    rates = {f"api_{kind}_rate": 1e4 for kind in ("search", "address", "optout", "signin")}
    settings = Settings(
        home=home, workers=1, match_threshold=0.6, public_optout_seconds=0.0, **rates
    )
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        ft.add_source("council", lawful_basis="public-interest investigation")
        ft.add_source("archive", lawful_basis="newsroom archive")
        ft.ingest([FR / "obama.jpg"], source="council", workers=1)
        ft.ingest([FR / "biden.jpg"], source="archive", workers=1)
        for name, role in (("admin1", "admin"), ("inv1", "investigator"), ("aud1", "auditor")):
            access.add_user(ft, ADMIN, name, role)
            sessions.set_password(ft, ADMIN, name, PASSWORD)
        admin = access.user_actor(_user(ft, "admin1"))
        beta = ops.orgs.add(ft, admin, "beta", admin="beta1")
        beta_admin = access.authenticate(ft, beta.token, "")
        sessions.set_password(ft, beta_admin, "beta1", PASSWORD)
    return settings


def _user(ft: FaceTrace, name: str) -> Any:
    from facetrace.governance.repository import GovernanceStore

    user = GovernanceStore(ft.store.engine).get_user(name)
    assert user is not None
    return user


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, analyzer: FaceAnalyzer) -> Iterator[Site]:
    settings = _gallery(tmp_path_factory.mktemp("ui"), analyzer)
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, analyzer=analyzer), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the UI server did not start"
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{port}", settings)
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("FACETRACE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    """A new browser context (no cookies) on a laptop-sized window."""
    context = browser.new_context(
        base_url=site.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


def sign_in(page: Any, name: str) -> None:
    page.goto("/ui/signin")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/search")


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/signin")


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(content=AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document)).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]

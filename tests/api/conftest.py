"""The HTTP API in process: the real app over httpx's ASGI transport, a real gallery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from facetrace import FaceTrace, Settings
from facetrace.api.app import create_app
from facetrace.governance import access
from facetrace.vision.analyzer import FaceAnalyzer
from tests.conftest import FR
from tests.governance.conftest import ADMIN


class Api:
    """A synchronous face over an async httpx client speaking ASGI to the app; runs
    the app's lifespan (which opens the engine) for as long as it lives."""

    def __init__(self, app: FastAPI, address: str = "203.0.113.7") -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._lifespan = app.router.lifespan_context(app)
        self.loop.run_until_complete(self._lifespan.__aenter__())
        self.client = self._client(address)
        self._others: dict[str, httpx.AsyncClient] = {}

    def _client(self, address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(
            app=self.app, raise_app_exceptions=False, client=(address, 4000)
        )
        return httpx.AsyncClient(transport=transport, base_url="http://facetrace.test")

    def request(
        self,
        method: str,
        url: str,
        *,
        key: str | None = None,
        address: str | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """One request, with an API key if given, from another client address if given
        (a client of its own, with its own cookies)."""
        headers = dict(kw.pop("headers", {}))
        if key:
            headers["X-API-Key"] = key
        client = self.client
        if address is not None:
            client = self._others.setdefault(address, self._client(address))
        return self.run(client.request(method, url, headers=headers, **kw))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        for client in (self.client, *self._others.values()):
            self.run(client.aclose())
        self.run(self._lifespan.__aexit__(None, None, None))
        self.loop.close()


@dataclass
class Served:
    """A served gallery: its settings, the client, and a key per actor."""

    settings: Settings
    api: Api
    keys: dict[str, str]


def make_gallery(
    home: Path, analyzer: FaceAnalyzer, **overrides: Any
) -> tuple[Settings, dict[str, str]]:
    """A gallery with sources s1 (Obama) and victim, and users of every role."""
    settings = Settings(home=home, workers=1, match_threshold=0.6, **overrides)
    keys: dict[str, str] = {}
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        ft.add_source("s1", lawful_basis="t")
        ft.add_source("victim", lawful_basis="t")
        ft.ingest([FR / "obama.jpg"], source="s1", workers=1)
        for name, role in (("admin1", "admin"), ("inv1", "investigator"), ("aud1", "auditor")):
            keys[role] = access.add_user(ft, ADMIN, name, role).token
        admin = access.authenticate(ft, keys["admin"], "x")
        revoked = access.issue_key(ft, admin, "inv1")
        access.revoke_key(ft, admin, revoked.key.key_id)
        keys["revoked"] = revoked.token
        keys["expired"] = access.issue_key(ft, admin, "inv1", expires_days=1e-5).token
        keys["bad-key"] = "ftk_000000000000_" + "A" * 43
        keys["anonymous"] = ""
    time.sleep(1.0)  # the expired key's 0.86 s run out
    return settings, keys


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, analyzer: FaceAnalyzer) -> Iterator[Served]:
    limits = {"api_search_rate": 1e4, "api_address_rate": 1e4, "api_optout_rate": 1e4}
    settings, keys = make_gallery(tmp_path_factory.mktemp("api"), analyzer, **limits)
    api = Api(create_app(settings, analyzer=analyzer))
    yield Served(settings, api, keys)
    api.close()

"""Every source policy setting can be given to ``sources add`` and changed by ``sources set``."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.main import get_command
from typer.testing import CliRunner

from facetrace import FaceTrace, Settings
from facetrace.cli.main import app
from facetrace.cli.sources import POLICY_OPTIONS
from facetrace.governance.audit import AuditLog
from facetrace.ingest.fetch.policy import SourcePolicy
from tests.conftest import FR
from tests.ingest.conftest import LocalServer

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULTS = SourcePolicy().as_dict()

runner = CliRunner()


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, ["--home", str(home), *args], env=env)


def show(home: Path, name: str) -> dict[str, Any]:
    result = run(home, "sources", "show", name, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def readme_collection_example() -> list[str]:
    """README's ``facetrace sources add council-site ...`` line, continuations joined."""
    text = README.read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines()]
    line = next(ln for ln in lines if ln.startswith("facetrace sources add council-site"))
    return shlex.split(line, comments=True)[1:]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A gallery with README's council-site source registered through the CLI."""
    home = tmp_path / "home"
    result = run(home, *readme_collection_example())
    assert result.exit_code == 0, result.output
    return home


def test_readme_collection_example_registers_the_whole_policy(home: Path) -> None:
    source = show(home, "council-site")
    assert source["kind"] == "url-list"
    assert source["policy"] == {
        **DEFAULTS,
        "allowed_hosts": ["council.example"],
        "url_prefixes": ["https://council.example/people/"],
        "max_depth": 1,
        "rate_limit": 1.0,
        "retention_days": None,
    }
    plain = run(home, "sources", "show", "council-site")
    assert "max_pages: 100" in plain.stdout and "council.example" in plain.stdout


def test_every_policy_field_has_an_option_on_add_and_set() -> None:
    assert set(POLICY_OPTIONS) == SourcePolicy.field_names() | {"retention_days"}
    group = get_command(app)
    sources = group.commands["sources"]  # type: ignore[attr-defined]
    for verb in ("add", "set"):
        command = sources.commands[verb]
        names = {opt for p in command.params for opt in p.opts}
        assert set(POLICY_OPTIONS.values()) <= names, verb
        for param in command.params:
            if param.name in ("name", "as_json"):
                continue
            assert (getattr(param, "help", None) or "").strip(), (verb, param.name)


def test_add_takes_every_setting(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run(
        home,
        "sources",
        "add",
        "full",
        "--basis",
        "b",
        "--allow-host",
        "b.example",
        "--allow-host",
        "a.example",
        "--url-prefix",
        "https://a.example/p/",
        "--url-prefix",
        "https://b.example/q/",
        "--deny-host",
        "ads.example",
        "--max-depth",
        "3",
        "--max-pages",
        "7",
        "--rate-limit",
        "0.5",
        "--max-concurrency-per-host",
        "4",
        "--max-bytes",
        "1000",
        "--timeout",
        "12.5",
        "--retention-days",
        "30",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["policy"] == {
        "allowed_hosts": ["a.example", "b.example"],
        "url_prefixes": ["https://a.example/p/", "https://b.example/q/"],
        "denied_hosts": ["ads.example"],
        "max_depth": 3,
        "max_pages": 7,
        "rate_limit": 0.5,
        "max_concurrency_per_host": 4,
        "max_bytes": 1000,
        "timeout": 12.5,
        "retention_days": 30.0,
    }


def _audit(home: Path) -> list[Any]:
    with FaceTrace.open(Settings(home=home, workers=1)) as ft:
        return AuditLog(ft.store.engine).entries()


def test_set_changes_only_what_is_given_and_is_audited(home: Path) -> None:
    before = show(home, "council-site")
    result = run(home, "sources", "set", "council-site", "--max-depth", "2")
    assert result.exit_code == 0, result.output
    after = show(home, "council-site")
    assert after["policy"] == {**before["policy"], "max_depth": 2}
    assert {k: v for k, v in after.items() if k != "policy"} == {
        k: v for k, v in before.items() if k != "policy"
    }

    entry = _audit(home)[-1]
    assert entry.kind == "source.updated"
    assert entry.actor
    assert entry.payload == {
        "name": "council-site",
        "changes": {"max_depth": {"old": 1, "new": 2}},
    }


def test_set_basis_jurisdiction_lists_and_reset(home: Path) -> None:
    result = run(
        home,
        "sources",
        "set",
        "council-site",
        "--basis",
        "case 13",
        "--jurisdiction",
        "GB",
        "--allow-host",
        "b.example",
        "--allow-host",
        "a.example",
        "--reset",
        "url-prefix",
        "--json",
    )
    assert result.exit_code == 0, result.output
    source = json.loads(result.stdout)
    assert (source["lawful_basis"], source["jurisdiction"]) == ("case 13", "GB")
    assert source["policy"]["allowed_hosts"] == ["a.example", "b.example"]  # replaced
    assert source["policy"]["url_prefixes"] == []  # back to the default
    assert source["policy"]["max_depth"] == 1  # kept
    changes = _audit(home)[-1].payload["changes"]
    assert changes == {
        "lawful_basis": {"old": "public-interest investigation, case 12", "new": "case 13"},
        "jurisdiction": {"old": None, "new": "GB"},
        "allowed_hosts": {"old": ["council.example"], "new": ["a.example", "b.example"]},
        "url_prefixes": {"old": ["https://council.example/people/"], "new": None},
    }

    cleared = run(home, "sources", "set", "council-site", "--jurisdiction", "", "--json")
    assert cleared.exit_code == 0, cleared.output
    assert json.loads(cleared.stdout)["jurisdiction"] is None


def test_set_with_no_change_records_nothing(home: Path) -> None:
    entries = len(_audit(home))
    result = run(home, "sources", "set", "council-site", "--max-depth", "1")
    assert result.exit_code == 0, result.output
    assert len(_audit(home)) == entries


BAD = [
    (["--max-depth", "-1"], "max_depth"),
    (["--max-pages", "0"], "max_pages"),
    (["--rate-limit", "0"], "rate_limit"),
    (["--rate-limit", "-2"], "rate_limit"),
    (["--max-concurrency-per-host", "0"], "max_concurrency_per_host"),
    (["--max-bytes", "0"], "max_bytes"),
    (["--timeout", "0"], "timeout"),
    (["--url-prefix", "council.example/people/"], "http"),
    (["--allow-host", ""], "allowed_hosts"),
    (["--retention-days", "0"], "retention_days"),
]


def _one_line_error(result: Result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0]


@pytest.mark.parametrize(("args", "needle"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_values_are_refused_with_one_line(home: Path, args: list[str], needle: str) -> None:
    before = show(home, "council-site")
    _one_line_error(run(home, "sources", "set", "council-site", *args), needle)
    assert show(home, "council-site") == before
    _one_line_error(run(home, "sources", "add", "other", "--basis", "b", *args), needle)
    assert run(home, "sources", "show", "other").exit_code == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nope", "--max-depth", "2"], "not registered"),
        (["council-site"], "nothing to change"),
        (["council-site", "--reset", "colour"], "--reset takes one of"),
        (["council-site", "--max-depth", "2", "--reset", "max-depth"], "both set and reset"),
        (["council-site", "--basis", " "], "lawful basis"),
    ],
)
def test_set_usage_errors(home: Path, args: list[str], needle: str) -> None:
    _one_line_error(run(home, "sources", "set", *args), needle)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_the_fetcher_uses_the_changed_policy(tmp_path: Path, server: LocalServer) -> None:
    home = tmp_path / "home"
    env = {"FACETRACE_ALLOW_LOOPBACK": "1"}
    obama = server.image("/people/obama.jpg", (FR / "obama.jpg").read_bytes())
    biden = server.image("/other/biden.jpg", (FR / "biden.jpg").read_bytes())
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{obama}\n{biden}\n")
    fast = ["--rate-limit", "1000", "--timeout", "5"]
    add = ["sources", "add", "web", "--kind", "url-list", "--basis", "case 12", *fast]
    assert run(home, *add, "--url-prefix", server.url("/people/")).exit_code == 0
    ingest = ["ingest", str(urls), "--source", "web", "--workers", "1", "--json"]

    first = run(home, *ingest, env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["photos_added"] == 1
    assert server.hits_for("/other/biden.jpg") == []

    changed = run(home, "sources", "set", "web", "--url-prefix", server.url("/other/"))
    assert changed.exit_code == 0, changed.output
    with FaceTrace.open(Settings(home=home, workers=1)) as ft:
        policy = SourcePolicy.from_source(ft.source("web").policy)
    assert policy.url_prefixes == (server.url("/other/"),)
    assert (policy.rate_limit, policy.timeout) == (1000.0, 5.0)  # kept

    second = run(home, *ingest, env=env)
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["photos_added"] == 1
    assert len(server.hits_for("/other/biden.jpg")) == 1
    assert len(server.hits_for("/people/obama.jpg")) == 1  # now out of scope: not fetched

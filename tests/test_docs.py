"""Settings and commands are documented: a setting without a description fails here."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from facetrace import Settings
from facetrace.cli.main import app

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_has_a_description() -> None:
    missing = [n for n, f in Settings.model_fields.items() if not (f.description or "").strip()]
    assert missing == []


def test_every_top_level_command_has_help_and_is_in_the_readme() -> None:
    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert (command.help or "").strip(), name
        assert re.search(rf"(facetrace (--home \S+ )?{name}\b)|`{name}\b", README), name

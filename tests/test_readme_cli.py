"""README's commands exist: every ``facetrace`` line in a ```bash block, and the commands
quoted in prose, name a real command and only its real options (click introspection
of the typer app, as datasette's documentation tests check its docs against the code).

typer vendors its own click, so commands are inspected by their attributes (``commands``,
``params``), not by ``isinstance`` against the ``click`` package."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from facetrace.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SEPARATORS = {";", "&&", "||", "|", "&"}
REDIRECTS = {">", ">>", "<", "2>", "&>"}
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
BASH_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\s*\n(.*?)^```", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")  # a span may wrap onto a second line


@dataclass(frozen=True)
class Usage:
    """One command as written in a document: where, and its words after ``facetrace``."""

    where: str
    words: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: facetrace {' '.join(self.words)}"


def _tokens(line: str) -> list[str]:
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
    lex.whitespace_split = True
    lex.commenters = "#"
    return list(lex)


def _segments(tokens: list[str]) -> list[list[str]]:
    """Split a shell line into simple commands on ``;``, ``&&``, ``|`` ..., dropping
    redirections; ``[a | b]`` (usage syntax for alternatives) is not a pipe."""
    out: list[list[str]] = [[]]
    depth = 0
    skip = False
    for token in tokens:
        if skip:
            skip = False
            continue
        if token in REDIRECTS:
            skip = True
        elif token in SEPARATORS and not (token == "|" and depth > 0):
            out.append([])
        elif token != "|":
            depth += token.count("[") - token.count("]")
            word = token.strip("[]")
            if word:
                out[-1].append(word)
    return [s for s in out if s]


def _facetrace_words(segment: list[str]) -> tuple[str, ...] | None:
    """The words after ``facetrace`` when the simple command runs facetrace, else None
    (``python``, ``bash``, ``pip``, ``export`` ... lines are someone else's commands)."""
    i = 0
    while i < len(segment) and ENV_ASSIGNMENT.match(segment[i]):
        i += 1
    if i < len(segment) and (segment[i] == "facetrace" or segment[i].endswith("/facetrace")):
        return tuple(segment[i + 1 :])
    return None


def code_block_usages(path: Path) -> list[Usage]:
    """Every facetrace command in the document's shell blocks (``\\`` continuations joined)."""
    usages = []
    for block in BASH_BLOCK.finditer(path.read_text()):
        text = block.group(1).replace("\\\n", " ")
        for line in text.splitlines():
            for segment in _segments(_tokens(line)):
                words = _facetrace_words(segment)
                if words is not None:
                    usages.append(Usage(f"{path.name} ```bash", words))
    return usages


def _words(text: str) -> list[str]:
    """Shell words of usage text, without the brackets around optional parts."""
    return [w.strip("[]") for w in shlex.split(text) if w.strip("[]")]


def _prefixes(words: list[str], root: Any) -> tuple[list[str], list[str]]:
    """The words up to the last group named, and up to the command named."""
    current, group_end, command_end, i = root, 0, 0, 0
    while i < len(words) and hasattr(current, "commands"):
        word = words[i]
        if word.startswith("-"):
            i += 2 if _opts(current).get(word, False) else 1
            continue
        current = current.commands.get(word)
        if current is None:
            break
        i += 1
        if hasattr(current, "commands"):
            group_end = i
        else:
            command_end = i
    return words[:group_end], words[: command_end or group_end]


def prose_usages(path: Path, root: Any) -> list[Usage]:
    """Commands quoted in backticks outside code blocks: ``facetrace ...`` spans, and
    spans that start with a top-level command and go on (`sources add NAME --basis TEXT`).

    ``|`` in a span separates alternatives: `index stats|rebuild|migrate --to B` reads
    as ``index stats``, ``index rebuild`` and ``index migrate --to B``, and
    `--fmr F | --threshold T` as two ways to give the same command an option."""
    text = BASH_BLOCK.sub("", re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S))
    usages = []
    for span in CODE_SPAN.findall(text):
        try:
            first, *others = [_words(part) for part in span.split("|")]
        except ValueError:  # unbalanced quotes: not a command
            continue
        if first[:1] == ["facetrace"]:
            first = first[1:]
        elif not (len(first) > 1 and first[0] in root.commands):
            continue
        group, command = _prefixes(first, root)
        usages.append(Usage(f"{path.name} `...`", tuple(first)))
        for words in others:
            prefix = command if words[:1] and words[0].startswith("-") else group
            usages.append(Usage(f"{path.name} `...`", tuple(prefix + words)))
    return usages


def _opts(command: Any) -> dict[str, bool]:
    """Option spelling -> whether it takes a value, ``--help`` included."""
    out = {"--help": False}
    for param in command.params:
        if param.param_type_name == "option":
            takes_value = not (param.is_flag or param.count)
            for name in (*param.opts, *param.secondary_opts):
                out[name] = takes_value
    return out


def problems(usage: Usage, root: Any) -> list[str]:
    """What does not exist in ``usage``: a command, or an option of its command."""
    words = list(usage.words)
    found: list[str] = []

    def options(commands: list[Any], i: int, stop_at_word: bool) -> int:
        """Check options from ``words[i]``; returns where a non-option word stopped it,
        or -1 after an unknown option."""
        known: dict[str, bool] = {}
        for c in commands:
            known.update(_opts(c))
        while i < len(words):
            word = words[i]
            if word == "--":
                return len(words)
            if re.match(r"--?[A-Za-z]", word):
                name = word.split("=", 1)[0]
                if name not in known:
                    paths = " or ".join(repr(c.name) for c in commands)
                    found.append(f"{usage}: no option {name} on {paths}")
                    return -1  # whether it takes a value is unknown: stop here
                if known[name] and "=" not in word:
                    i += 1  # its value, which may look like an option (-1)
            elif stop_at_word:
                return i
            i += 1
        return i

    commands: list[Any] = [root]
    i = 0
    while hasattr(commands[0], "commands"):
        i = options(commands, i, stop_at_word=True)
        if i < 0 or i >= len(words):
            return found  # a group named alone (its usage is printed)
        group = commands[0]
        subcommands = []
        for name in words[i].split("|"):  # `index stats|rebuild|migrate`
            sub = group.commands.get(name)
            if sub is None:
                found.append(f"{usage}: no command {name!r} under {group.name!r}")
                return found
            subcommands.append(sub)
        commands = subcommands
        i += 1
    options(commands, i, stop_at_word=False)
    return found


@pytest.fixture(scope="module")
def root() -> Any:
    group = get_command(app)
    assert hasattr(group, "commands")
    return group


def all_usages(root: Any) -> list[Usage]:
    usages = [u for doc in DOCUMENTS for u in code_block_usages(doc)]
    return usages + prose_usages(ROOT / "README.md", root)


def test_readme_commands_and_options_exist(root: Any) -> None:
    usages = all_usages(root)
    # The parser finds README's commands: an empty list would pass vacuously.
    assert sum(u.where.startswith("README.md ```") for u in usages) >= 30
    assert sum(u.where.endswith("`...`") for u in usages) >= 15
    assert [p for u in usages for p in problems(u, root)] == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("facetrace --home ./c sources add x --basis b --allow-hots h", ["no option --allow-hots"]),
        ("facetrace sources ad x", ["no command 'ad'"]),
        ("facetrace ingest x --source s --home h", ["no option --home"]),  # root option, late
        ("facetrace --hme ./c stats", ["no option --hme"]),
        ("X=1 .venv/bin/facetrace search p.jpg --case C --reason 'a --b' --top-k 5", []),
        ("facetrace jobs list; facetrace jobs shw 3 && facetrace jobs resume 3", ["'shw'"]),
        ("facetrace audit head > out.json  # --nope in a comment", []),
        ("facetrace sources set s --max-depth -1 --rate-limit=2 --json", []),
        ("facetrace eval demographics --labels L [--fmr F | --thresh T] [--json]", ["--thresh"]),
        ("python x.py --whatever; pip install facetrace; export A=b", []),
    ],
)
def test_the_checker_catches_drift(root: Any, line: str, expected: list[str]) -> None:
    usages = [
        Usage("t", words)
        for segment in _segments(_tokens(line))
        if (words := _facetrace_words(segment)) is not None
    ]
    found = [p for u in usages for p in problems(u, root)]
    assert len(found) == len(expected), found
    for problem, needle in zip(found, expected, strict=True):
        assert needle in problem


def test_prose_spans(root: Any, tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Use `index stats|rebuild|migrate --to BACKEND` and `sources add NAME --bsis T`;\n"
        "`people list|show ID|split ID --faces 1|name ID NAME` and\n"
        "`facetrace --home H eval demographics --labels L [--fmr F | --thres T]`;\n"
        "`search` is audited, `facetrace verify A B --jsn` too.\n"
        "```bash\nfacetrace --nope\n```\n"
    )
    found = [p for u in prose_usages(doc, root) for p in problems(u, root)]
    assert len(found) == 3, found
    assert "--bsis" in found[0] and "--thres" in found[1] and "--jsn" in found[2], found

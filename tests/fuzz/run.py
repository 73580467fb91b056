"""Run one fuzz target under atheris: ``python -m tests.fuzz.run TARGET [libFuzzer flags]``.

For example ``python -m tests.fuzz.run image -runs=1000000 tests/fuzz/corpus/image``.
A finding is written as ``crash-*`` (``-artifact_prefix``); copy it to
``tests/fuzz/regressions/TARGET/`` once fixed, so the suite replays it.
"""

from __future__ import annotations

import importlib
import sys

import atheris

from tests.fuzz.targets import MODULES, TARGETS, run_one

with atheris.instrument_imports(include=["facetrace"]):
    for _module in MODULES:  # first imported here, so instrumented for coverage
        importlib.import_module(_module)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: python -m tests.fuzz.run {{{','.join(TARGETS)}}} [flags]")
    name = sys.argv[1]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], lambda data: run_one(name, data))
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""Crash points for the fault-injection campaign (``scripts/fault_campaign.py``).

Off unless the environment asks, and then deterministic:

- ``FACETRACE_FAULT_AT=N``: the process kills itself with SIGKILL at the N-th crash
  point it passes (no cleanup, no flush: as a power cut or the OOM killer would);
- ``FACETRACE_FAULT_COUNT=FILE``: the number of crash points passed is written to
  ``FILE`` at exit (to size a campaign).

Crash points are every SQL statement the metadata store sends (before it runs, so a
transaction can die half-done), and the steps of every file the engine writes: index
files (between writing and renaming), thumbnails and secure wipes. With one ingest
worker the sequence is the same run after run, so a seed gives the same kill point.
"""

from __future__ import annotations

import atexit
import os
import signal
from pathlib import Path
from typing import Any

_AT = int(os.environ.get("FACETRACE_FAULT_AT", "0") or 0)
_COUNT_FILE = os.environ.get("FACETRACE_FAULT_COUNT", "")
ARMED = _AT > 0 or bool(_COUNT_FILE)
_passed = 0


def point() -> None:
    """One crash point: count it, and die here if this is the one."""
    global _passed
    if not ARMED:
        return
    _passed += 1
    if _passed == _AT:
        os.kill(os.getpid(), signal.SIGKILL)


def _on_statement(*_args: Any, **_kwargs: Any) -> None:
    point()


def watch(engine: Any) -> None:
    """Make every statement ``engine`` sends a crash point (when armed)."""
    if ARMED:
        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", _on_statement)


def _write_count() -> None:
    Path(_COUNT_FILE).write_text(str(_passed))


if _COUNT_FILE:
    atexit.register(_write_count)

"""Shared CLI plumbing: settings from the context, engine opening, errors, output."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from facetrace.config import Settings
from facetrace.errors import ConfigError, FaceTraceError, StorageFullError, is_storage_full
from facetrace.store.repository import STORAGE_FULL_MESSAGE

if TYPE_CHECKING:
    from facetrace.ingest.pipeline import ItemOutcome
    from facetrace.types import IngestSummary

P = ParamSpec("P")
R = TypeVar("R")

EXIT_USAGE = 2
EXIT_INTERNAL = 1

err_console = Console(stderr=True, highlight=False)
console = Console(highlight=False)


def settings_from(ctx: typer.Context) -> Settings:
    """The Settings the root command built (``ctx.obj``)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        raise ConfigError("settings were not initialised")
    return root.obj


def build_settings(home: str | None) -> Settings:
    """Settings from the environment, with ``--home`` taking precedence."""
    try:
        return Settings(home=home) if home else Settings()  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise ConfigError(f"invalid setting {where}: {first.get('msg')}") from exc


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    # Plain write: one line, never wrapped by the terminal width.
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    sys.stderr.flush()
    return typer.Exit(code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn facetrace errors into a one-line message and exit status 2 (never a traceback).

    Unexpected errors exit 1 with one line; set FACETRACE_DEBUG=1 to see the traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except FaceTraceError as exc:
            if is_storage_full(exc) and not isinstance(exc, StorageFullError):
                raise fail(STORAGE_FULL_MESSAGE) from None
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as exc:
            if os.environ.get("FACETRACE_DEBUG"):
                raise
            if is_storage_full(exc):
                raise fail(STORAGE_FULL_MESSAGE) from None
            raise fail(
                f"unexpected {type(exc).__name__}: {exc} (set FACETRACE_DEBUG=1 for details)",
                EXIT_INTERNAL,
            ) from None

    return wrapper


@contextmanager
def opened(ctx: typer.Context) -> Iterator[Any]:
    """Open the engine for the command's settings and close it afterwards.

    The caller is authenticated first (:func:`~facetrace.cli.governance.sign_in`); each
    operation the command then calls checks its own permission.
    """
    from facetrace.app import FaceTrace
    from facetrace.cli.governance import _actor, sign_in

    engine = FaceTrace.open(settings_from(ctx))
    token = _actor.set(None)
    try:
        sign_in(ctx, engine)
        yield engine
    finally:
        _actor.reset(token)
        engine.close()


def authorize(ctx: typer.Context, check: Callable[[Any, Any], None]) -> None:
    """Authenticate the caller and run an operation's permission ``check(engine, actor)``,
    for commands that do their work without the engine (they write files themselves)."""
    from facetrace.cli.governance import actor_or_fail

    with opened(ctx) as engine:
        check(engine, actor_or_fail())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def local_actor_name() -> str:
    """The local actor: ``local:<os user>``."""
    try:
        import getpass

        return f"local:{getpass.getuser()}"
    except Exception:
        return "local:unknown"


def run_with_progress(
    total: int | None,
    run: Callable[[Callable[[ItemOutcome], None]], IngestSummary],
) -> IngestSummary:
    """Run an ingest (``run(on_item)``) with a progress bar (rate and ETA) on stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    with progress:
        task = progress.add_task("ingest", total=total, rate="")
        done = 0
        faces = 0
        start = time.perf_counter()

        def on_item(outcome: ItemOutcome) -> None:
            nonlocal done, faces
            done += 1
            faces += outcome.faces
            elapsed = max(time.perf_counter() - start, 1e-9)
            progress.update(
                task,
                advance=1,
                rate=f"{done / elapsed:.1f} img/s, {faces / elapsed:.1f} faces/s",
            )

        return run(on_item)


def print_summary(summary: IngestSummary, as_json: bool) -> None:
    """An ingest summary as JSON, or as a line plus one line per failed item."""
    if as_json:
        print_json(summary.to_dict())
        return
    console.print(
        f"job {summary.job_id}: {summary.photos_seen} photos seen, {summary.photos_added} added, "
        f"{summary.duplicates} duplicates, {summary.faces_added} faces added, "
        f"{len(summary.errors)} errors ({summary.seconds:.1f} s)"
    )
    for error in summary.errors:
        console.print(f"  error {error.item}: {error.error}", markup=False)

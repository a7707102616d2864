"""What the ``surplus`` commands share: failing with exit status 2, progress bars, options.

Every command reports bad input as one line per problem on standard error with exit
status 2 (:func:`fail`), and checks an output target before any work
(:func:`check_out`, :func:`check_out_file`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

BAD_INPUT = 2


def fail(problems: list[str]) -> None:
    """Print problems to standard error and exit with status 2."""
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(BAD_INPUT)


class Progress:
    """A progress bar with an ETA on standard error, shown only on a terminal.

    Use as a context manager; call :meth:`update` with ``(done, total)``.
    """

    def __init__(self, description: str, enabled: bool = True):
        from rich.console import Console

        console = Console(stderr=True)
        self._bar = None
        if enabled and console.is_terminal:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

            self._bar = Progress(
                "{task.description}",
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self._task = self._bar.add_task(description, total=None)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, done: float, total: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)


MAX_WORKERS = 1024
"""Local worker processes compare and sweep may start."""


def option_problems(workers: int | None, out: Path | None) -> list[str]:
    """What is wrong with the --workers and --out options of compare and sweep."""
    problems = []
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        problems.append(f"--workers: need 1 to {MAX_WORKERS:,} worker processes, got {workers:,}")
    if out is not None and out.exists() and not out.is_dir():
        problems.append(f"--out: {out} exists and is not a directory")
    return problems


def load_or_fail(path: Path, overrides: list[str] | None, seed: int | None) -> Any:
    from sim.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path, overrides or [], seed)
    except ScenarioError as exc:
        fail(exc.problems)


def check_out(out: Path, kind: str) -> None:
    """Exit 2 unless output of ``kind`` can be written to the directory ``out``."""
    from sim.outputs import OutputError, check_directory

    try:
        check_directory(out, kind)
    except OutputError as exc:
        fail([f"--out: {exc}"])


def check_out_file(out: Path) -> None:
    """Exit 2 unless a file can be written at ``out``."""
    from sim.outputs import OutputError, check_file

    try:
        check_file(out)
    except OutputError as exc:
        fail([f"--out: {exc}"])


def write_out(write: Any, *args: Any) -> None:
    """Call ``write(*args)`` (a whole-directory writer); exit 2 if the target refuses it."""
    from sim.outputs import OutputError

    try:
        write(*args)
    except OutputError as exc:  # the target changed since it was checked
        fail([f"--out: {exc}"])


def report_failures(out_dir: Path, keys: list[str]) -> None:
    """Print, on standard error, the last line of each failed run's ``error.txt``."""
    for key in keys:
        error = (out_dir / "points" / key / "error.txt").read_text(encoding="utf-8").strip()
        typer.echo(f"failed: {key}: {error.splitlines()[-1]}", err=True)


def print_points_table(directory: Path, metrics: list[str] | None) -> None:
    """Print a sweep's or plan's results per point (:func:`sim.report.print_points`).

    Reads ``table.parquet``, or builds it from ``results.parquet``; warns (standard
    error) about each chosen metric no point has.
    """
    import pandas as pd

    from sim.points_table import points_table, read_points
    from sim.report import print_points

    document, results = read_points(directory)
    paths = list(document.get("paths", []))
    saved = directory / "table.parquet"
    table = pd.read_parquet(saved) if saved.is_file() else points_table(results, paths)
    title = str(document.get("scenario", directory.name))
    for metric in print_points(table, paths, title, metrics):
        typer.echo(f"warning: --metric {metric}: no point has this figure", err=True)


WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", "-j", help="Local worker processes (default: one per CPU)."),
]
"""``--workers/-j`` of the commands that run many runs."""

BackendOption = Annotated[
    str, typer.Option(help="local (worker processes) or dask (an existing Dask cluster).")
]
"""``--backend`` of the commands that may run on Dask."""

AddressOption = Annotated[str | None, typer.Option(help="Dask scheduler address, tcp://HOST:PORT.")]
"""``--address`` of the commands that may run on Dask."""

"""The ``surplus`` command line.

Commands import their heavy dependencies lazily, so ``surplus --help`` and
quick commands start fast. Bad input of any kind is reported as one line per
problem on standard error with exit status 2, never as a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="surplus",
    help="Simulate a GPU capacity marketplace: surplus compute sold over a shared fabric.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

BAD_INPUT = 2


def _fail(problems: list[str]) -> None:
    """Print problems to standard error and exit with status 2."""
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(BAD_INPUT)


def _load(path: Path, overrides: list[str] | None, seed: int | None) -> Any:
    from sim.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path, overrides or [], seed)
    except ScenarioError as exc:
        _fail(exc.problems)


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run directory (default: runs/NAME-sSEED).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed; overrides the file's seed.")] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field: dotted.path=value (YAML). Repeatable."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print no table.")] = False,
) -> None:
    """Run SCENARIO to its horizon and write a run directory."""
    if seed is not None and seed < 0:
        _fail([f"--seed: must not be negative, got {seed}"])
    resolved = _load(scenario, overrides, seed)
    from sim.runner import simulate, write_run

    out_dir = out if out is not None else Path("runs") / f"{resolved.name}-s{resolved.seed}"
    if out_dir.exists() and not out_dir.is_dir():
        _fail([f"--out: {out_dir} exists and is not a directory"])
    result = simulate(resolved)
    write_run(result, out_dir)
    if not quiet:
        from sim.report import print_summary

        print_summary(result.summary)
    typer.echo(f"wrote {out_dir}")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scenario files to check.")],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field: dotted.path=value (YAML). Repeatable."),
    ] = None,
) -> None:
    """Check scenario files without running them."""
    from sim.scenario import ScenarioError, load_scenario

    problems: list[str] = []
    for path in files:
        try:
            load_scenario(path, overrides or [])
            typer.echo(f"ok {path}")
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if problems:
        _fail(problems)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to a file.")] = None,
) -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    from sim.scenario.models import Scenario

    document = Scenario.model_json_schema(mode="validation")
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "Surplus scenario"
    text = json.dumps(document, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


def _version(value: bool) -> None:
    if value:
        from sim import __version__

        typer.echo(f"surplus {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Surplus: how much usable compute tenants really get, and at what tail latency."""


def main() -> None:
    """Entry point of the ``surplus`` console script."""
    app()

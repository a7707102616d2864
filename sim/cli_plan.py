"""The ``surplus plan`` command: a capacity search over one scenario parameter (:mod:`sim.plan`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sim.cli_common import (
    AddressOption,
    BackendOption,
    Progress,
    WorkersOption,
    fail,
    load_or_fail,
    option_problems,
    report_failures,
)


def plan(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file with SLA terms.")],
    vary: Annotated[
        list[str],
        typer.Option(
            "--vary",
            help="The parameter, as --set names it: e.g. tenants.0.contract.gpus, "
            "tenants.1.workload.arrivals.rate_per_hour, provider.sites.0.power.cap_mw. "
            "Repeat (each with its --range) to move several together; the first is reported.",
        ),
    ],
    range_text: Annotated[
        list[str],
        typer.Option(
            "--range",
            help="LO:HI[:STEP]: the values tried (STEP 1 for integers, else (HI-LO)/32).",
        ),
    ],
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            help="Terms that must hold: all (default), TENANT, or TENANT.TERM; "
            "repeat or separate with commas.",
        ),
    ] = None,
    confidence: Annotated[
        float,
        typer.Option(help="Share of each tenant's windows (over seeds) its terms must hold in."),
    ] = 0.9,
    seeds: Annotated[
        int | None, typer.Option(help="Runs per value (default: compare.seeds, else 5).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="First seed (default: the file's).")] = None,
    find: Annotated[
        str, typer.Option(help="max: the largest value that holds; min: the smallest.")
    ] = "max",
    search: Annotated[
        str,
        typer.Option(help="bisect (the verdict is monotone in the value) or grid (try all)."),
    ] = "bisect",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Plan directory (default: runs/plan-NAME)."),
    ] = None,
    workers: WorkersOption = None,
    backend: BackendOption = "local",
    address: AddressOption = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field of every run: dotted.path=value."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress.")] = False,
) -> None:
    """Find the most (or least) of one parameter at which every tenant's SLA terms hold.

    Every value runs on the same seeds; a value holds when each kept tenant's terms hold in at
    least --confidence of its windows (days, weeks or runs, as its sla.window says) over all
    seeds. Rerun to resume.
    """
    problems = option_problems(workers, out)
    if seed is not None and seed < 0:
        problems.insert(0, f"--seed: must not be negative, got {seed}")
    if problems:
        fail(problems)
    from sim.outputs import OutputError
    from sim.plan import plan as run_plan
    from sim.scenario import ScenarioError

    resolved = load_or_fail(scenario, overrides, seed)
    out_dir = out if out is not None else Path("runs") / f"plan-{resolved.name}"
    try:
        with Progress("rounds", enabled=not quiet) as bar:
            outcome = run_plan(
                scenario, out_dir, vary, range_text, keep or [], confidence, seeds, seed,
                find, search, overrides or [], workers, backend, address, bar.update,
            )  # fmt: skip
    except ScenarioError as exc:
        fail(exc.problems)
    except OutputError as exc:
        fail([f"--out: {exc}"])
    if not quiet:
        print_plan(outcome)
    typer.echo(f"{outcome.ran} runs made, {outcome.skipped} already finished")
    report_failures(out_dir, outcome.failed)
    typer.echo(f"wrote {out_dir}")
    if outcome.failed:
        raise typer.Exit(1)


def _share(verdict: Any, tenant: str) -> str:
    share, low, high = verdict.share(tenant)
    total = verdict.windows[tenant][1]
    if share is None:
        return "no windows"
    return f"{share:.0%} [{low:.0%}, {high:.0%}] of {total:,}"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_plan(outcome: Any) -> None:
    """Print every value tried with each kept tenant's share of windows held, then the answer."""
    from rich.table import Table

    from sim.plan import value_override
    from sim.report import add_column, console_for_tables

    console = console_for_tables()
    tenants = sorted(outcome.verdicts[0].windows) if outcome.verdicts else []
    table = Table(title=f"{outcome.path}: terms held (share of windows, 95 % interval)")
    add_column(table, outcome.path, right=True)
    others = [p for p in outcome.together if p != outcome.path]
    for other in others:
        add_column(table, other, right=True)
    for tenant in tenants:
        add_column(table, tenant, right=True)
    add_column(table, "holds")
    add_column(table, "revenue USD (net)", right=True)
    add_column(table, "credits USD", right=True)
    for verdict in outcome.verdicts:
        cells = [_share(verdict, t) for t in tenants]
        mark = "yes" if verdict.holds else "no"
        money = [_usd(verdict.revenue_usd), _usd(verdict.credits_usd)]
        beside = outcome.companions(verdict.value)
        moved = [value_override(beside[p]) for p in others]
        table.add_row(value_override(verdict.value), *moved, *cells, mark, *money)
    console.print(table)
    if outcome.status == "failed":
        typer.echo("no answer: a run failed (below)")
        return
    confidence = outcome.verdicts[0].confidence if outcome.verdicts else 0.0
    word = "largest" if outcome.find == "max" else "smallest"
    if outcome.status == "none":
        end = "lowest" if outcome.find == "max" else "highest"
        typer.echo(
            f"no value holds: even the {end} value of the range breaks the terms in more "
            f"than {1 - confidence:.0%} of windows"
        )
        return
    frontier = outcome.verdict(outcome.frontier)
    line = (
        f"frontier: {word} {outcome.path} that holds = {value_override(outcome.frontier)} "
        f"(binding: {frontier.binding}, {_share(frontier, frontier.binding)} windows held)"
    )
    typer.echo(line)
    if outcome.status == "at_end":
        typer.echo("  the end of the range holds: widen --range to find where the terms break")
    else:
        beyond = outcome.verdict(outcome.beyond)
        typer.echo(
            f"  next value {value_override(outcome.beyond)} breaks them "
            f"({beyond.binding}: {_share(beyond, beyond.binding)} windows held)"
        )
    if outcome.not_monotone:
        values = ", ".join(value_override(v) for v in outcome.not_monotone)
        typer.echo(f"  not monotone: the terms also hold at {values}, past a value that fails")

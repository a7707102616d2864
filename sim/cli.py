"""The ``surplus`` command line.

Commands import their heavy dependencies lazily, so ``surplus --help`` and
quick commands start fast. Bad input of any kind is reported as one line per
problem on standard error with exit status 2, never as a traceback; so is an
unexpected error (:func:`main`; ``surplus --debug`` shows its traceback). Output
directories are written whole and checked before any work (:mod:`sim.outputs`).
"""

from __future__ import annotations

import json
import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sim.cli_common import (
    BAD_INPUT,
    AddressOption,
    BackendOption,
    Progress,
    WorkersOption,
    check_out,
    check_out_file,
    fail,
    load_or_fail,
    option_problems,
    print_points_table,
    report_failures,
    write_out,
)
from sim.cli_plan import plan

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

app = typer.Typer(
    name="surplus",
    help="Simulate a GPU capacity marketplace: surplus compute sold over a shared fabric.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


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
        fail([f"--seed: must not be negative, got {seed}"])
    resolved = load_or_fail(scenario, overrides, seed)
    from sim.results import write_run
    from sim.runner import simulate

    out_dir = out if out is not None else Path("runs") / f"{resolved.name}-s{resolved.seed}"
    check_out(out_dir, "run")
    from sim.scenario import ScenarioError

    try:
        with Progress(f"{resolved.name}, simulated hours", enabled=not quiet) as bar:
            result = simulate(resolved, bar.update)
    except ScenarioError as exc:  # found while building the provider (e.g. too few pods)
        fail(exc.problems)
    write_out(write_run, result, out_dir)
    if not quiet:
        from sim.report import print_summary

        print_summary(result.summary)
    typer.echo(f"wrote {out_dir}")


@app.command()
def compare(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            "-p",
            help="NAME, or NAME=dotted.path=value; repeat a NAME to give it more overrides. "
            "Default: the scenario's compare block.",
        ),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help="Seeds per policy (default: compare.seeds of the file).")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Policy the others are measured against (default: first).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Comparison directory (default: runs/compare-NAME)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-j", help="Worker processes (default: one per CPU)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="First seed (default: the file's seed).")] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field of every policy: dotted.path=value."),
    ] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="Metric to print (a summary.json key). Repeatable."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print no table.")] = False,
) -> None:
    """Run policies on the same seeds and compare them with 95 % confidence intervals."""
    problems = option_problems(workers, out)
    if seed is not None and seed < 0:
        problems.insert(0, f"--seed: must not be negative, got {seed}")
    if problems:
        fail(problems)
    from sim.compare import compare as run_comparison
    from sim.compare import parse_policies, prepare, write_comparison
    from sim.scenario import ScenarioError

    try:
        chosen, seed_values = prepare(
            scenario, parse_policies(policy or []), seeds, baseline, overrides or [], seed
        )
    except ScenarioError as exc:
        fail(exc.problems)
    if out is None:  # named as the comparison will be: by its baseline's scenario
        name = load_or_fail(scenario, [*(overrides or []), *chosen[0].overrides], seed).name
        out_dir = Path("runs") / f"compare-{name}"
    else:
        out_dir = out
    check_out(out_dir, "comparison")

    if len(seed_values) == 1:
        typer.echo(
            "warning: 1 seed per policy: no confidence intervals (they need 2 or more seeds)",
            err=True,
        )
    with Progress("runs", enabled=not quiet) as bar:
        comparison = run_comparison(
            scenario, chosen, seed_values, overrides or [], workers, progress=bar.update
        )
    known = {row["metric"] for row in comparison.table}
    unknown = [m for m in metrics or [] if m not in known]
    write_out(write_comparison, comparison, out_dir)
    if not quiet:
        from sim.report import print_comparison

        print_comparison(comparison, [m for m in metrics or [] if m in known] or None)
    for metric in unknown:
        typer.echo(f"warning: --metric {metric}: no run has this figure", err=True)
    typer.echo(f"wrote {out_dir}")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scenario files to check.")],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field: dotted.path=value (YAML). Repeatable."),
    ] = None,
) -> None:
    """Check scenario files without running them (building each provider, as a run would)."""
    from sim.runner import Simulation
    from sim.scenario import ScenarioError, load_scenario

    problems: list[str] = []
    for path in files:
        try:
            # Building the simulation finds what the file alone cannot (e.g. too few pods).
            Simulation(load_scenario(path, overrides or []))
            typer.echo(f"ok {path}")
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if problems:
        fail(problems)


@app.command()
def sweep(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file with a sweep block.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Sweep directory (default: runs/sweep-NAME)."),
    ] = None,
    workers: WorkersOption = None,
    backend: BackendOption = "local",
    address: AddressOption = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field of every point: dotted.path=value."),
    ] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", "-m", help="Metric to print per point (a results metric). Repeatable."
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar and no results table.")
    ] = False,
) -> None:
    """Run every point of the scenario's sweep (grid and zip times seeds); rerun to resume.

    Prints each point's mean and 95 % interval of the chosen metrics over its seeds, and
    the probability each SLA tenant's terms held (table.parquet holds every metric).
    """
    problems = option_problems(workers, out)
    if problems:
        fail(problems)
    from sim.outputs import OutputError
    from sim.scenario import ScenarioError
    from sim.sweep import sweep as run_sweep

    resolved = load_or_fail(scenario, overrides, None)
    out_dir = out if out is not None else Path("runs") / f"sweep-{resolved.name}"
    try:
        with Progress("points", enabled=not quiet) as bar:
            # Checks every point, then claims out_dir, before any point runs.
            outcome = run_sweep(
                scenario, out_dir, overrides or [], workers, backend, address, bar.update
            )
    except ScenarioError as exc:
        fail(exc.problems)
    except OutputError as exc:
        fail([f"--out: {exc}"])
    typer.echo(
        f"{outcome.ran - len(outcome.failed)} points run, {outcome.skipped} already finished, "
        f"{len(outcome.failed)} failed"
    )
    report_failures(out_dir, outcome.failed)
    if not quiet:
        print_points_table(out_dir, metrics)
    typer.echo(f"wrote {out_dir}")
    if outcome.failed:
        raise typer.Exit(1)


app.command()(plan)


class SchemaFormat(StrEnum):
    """What ``surplus schema`` prints."""

    json = "json"
    markdown = "markdown"


class PlotKind(StrEnum):
    """What ``surplus plot`` draws."""

    latency = "latency"
    allocation = "allocation"
    pfc = "pfc"
    heatmap = "heatmap"
    timeline = "timeline"
    bars = "bars"
    frontier = "frontier"


@app.command()
def plot(
    directory: Annotated[Path, typer.Argument(help="A run, comparison, sweep or plan directory.")],
    kind: Annotated[
        PlotKind,
        typer.Option(
            "--kind",
            "-k",
            help="latency: CDF and CCDF per tenant or policy; allocation: GPUs by class "
            "and power over time; pfc: pauses by link tier and port; heatmap: the most "
            "paused ports' pauses over time; timeline: every job's wait and run, by tenant; "
            "bars: policies with 95 % intervals; frontier: a sweep's or plan's net revenue "
            "against a tenant's tail, Pareto front marked.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Image (.png or .svg; default DIRECTORY/KIND.png)."),
    ] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="For bars: a metric to draw. Repeatable."),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="For frontier: the tenant whose tail is the x axis.")
    ] = None,
    tail: Annotated[
        str | None,
        typer.Option(
            help="For frontier: breach (1 - P(SLA held)) or a results metric "
            "(default tenants.TENANT.iteration_slowdown_p99)."
        ),
    ] = None,
) -> None:
    """Draw a plot of a run, comparison, sweep or plan directory (PNG or SVG)."""
    from sim.plotting import PlotError
    from sim.plotting import plot as draw

    if not directory.is_dir():
        fail([f"{directory}: no such directory"])
    target = out if out is not None else directory / f"{kind.value}.png"
    check_out_file(target)
    try:
        draw(directory, kind.value, target, metrics or [], tenant, tail)
    except PlotError as exc:
        fail([str(exc)])
    typer.echo(f"wrote {target}")


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to a file.")] = None,
    format: Annotated[
        SchemaFormat,
        typer.Option("--format", "-f", help="json: JSON Schema; markdown: the reference."),
    ] = SchemaFormat.json,
) -> None:
    """Print the JSON Schema of scenario files (for editor completion), or their reference."""
    if out is not None:
        check_out_file(out)
    if format is SchemaFormat.markdown:
        from sim.scenario.reference import scenario_reference_markdown

        text = scenario_reference_markdown()
    else:
        from sim.scenario.models import Scenario

        document = Scenario.model_json_schema(mode="validation")
        document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        document["title"] = "Surplus scenario"
        text = json.dumps(document, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        from sim.files import atomic_write

        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        typer.echo(f"wrote {out}")


FABRIC_SUMMARY = (
    ("FCT slowdown P50", "fct_slowdown_p50", "{:.3f}"),
    ("FCT slowdown P99", "fct_slowdown_p99", "{:.3f}"),
    ("max FCT us", "max_fct_us", "{:,.1f}"),
    ("PFC pause fraction", "pfc_pause_fraction", "{:.2%}"),
    ("credit stall fraction", "credit_stall_fraction", "{:.2%}"),
    ("ECN mark fraction", "ecn_mark_fraction", "{:.2%}"),
    ("message latency P50 us", "message_latency_us_p50", "{:,.2f}"),
    ("message latency P99 us", "message_latency_us_p99", "{:,.2f}"),
    ("message latency P99.9 us", "message_latency_us_p999", "{:,.2f}"),
)
"""The figures of ``summary.json`` a fabric run always has: label, key, format."""


def _load_fabric(path: Path) -> Any:
    from sim.scenario import ScenarioError
    from sim.scenario.fabric_loader import load_fabric

    try:
        return load_fabric(path)
    except ScenarioError as exc:
        fail(exc.problems)


def _json_ready(value: Any) -> Any:
    """Plain JSON data: numpy values as Python ones, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print_fabric_summary(summary: dict[str, Any], title: str, setup: dict[str, str]) -> None:
    from rich.table import Table

    from sim.report import add_column, console_for_tables

    table = Table(title=title, show_header=False)
    add_column(table, "figure")
    add_column(table, "value", right=True)
    for label, text in setup.items():
        table.add_row(label, text)
    for label, key, fmt in FABRIC_SUMMARY:
        value = summary.get(key)
        table.add_row(label, "—" if value is None else fmt.format(value))
    console_for_tables().print(table)


@app.command()
def fabric(
    fabric_file: Annotated[
        Path, typer.Argument(metavar="FABRIC.yaml", help="Fabric file: topology and transport.")
    ],
    traffic_file: Annotated[
        Path, typer.Option("--traffic", "-t", metavar="FLOWS.csv", help="Flows to send.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output directory: flows.csv, latency.csv and summary.json."
        ),
    ],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print no table.")] = False,
) -> None:
    """Run the fabric alone: push the flows of FLOWS.csv through FABRIC.yaml."""
    config = _load_fabric(fabric_file)
    from sim.fabric.paths import equal_cost_path_count
    from sim.fabric.traffic import read_flow_arrays
    from sim.scenario import ScenarioError

    topology = config.build_topology()
    try:
        flows = read_flow_arrays(
            traffic_file,
            topology.n_hosts,
            lambda src, dst: equal_cost_path_count(topology, src, dst),
        )
    except ScenarioError as exc:
        fail(exc.problems)
    check_out(out, "fabric")
    from sim.fabric.flows import simulate_flows
    from sim.fabric.latency import latency_cdf
    from sim.files import write_csv
    from sim.outputs import write_directory

    try:
        with Progress(f"{traffic_file.name}, flows done", enabled=not quiet) as bar:
            result = simulate_flows(config, flows, progress=bar.update, source=str(traffic_file))
    except ScenarioError as exc:
        fail(exc.problems)
    summary = _json_ready(dict(result.summary))
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"

    def fill(directory: Path) -> None:
        write_csv(directory / "flows.csv", result.flow_table)
        write_csv(directory / "latency.csv", latency_cdf(result.message_table["latency_us"]))
        (directory / "summary.json").write_text(text, encoding="utf-8")

    write_out(write_directory, out, "fabric", fill)
    if not quiet:
        setup = {
            "topology": f"{topology.kind}, {topology.n_hosts:,} hosts",
            "transport": config.transport.kind,
            "flows": f"{flows['src'].size:,}",
        }
        _print_fabric_summary(summary, fabric_file.name, setup)
    typer.echo(f"wrote {out}")


class TrafficPattern(StrEnum):
    """Traffic patterns ``surplus traffic`` generates."""

    incast = "incast"
    permutation = "permutation"
    alltoall = "alltoall"
    workload = "workload"


@app.command()
def traffic(
    pattern: Annotated[TrafficPattern, typer.Argument(help="Traffic pattern.")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FLOWS.csv", help="File to write.")],
    size: Annotated[
        str | None,
        typer.Option(
            "--size", help="Bytes per flow: 4096, 64KiB, 2MB (decimal), 1GiB (not for workload)."
        ),
    ] = None,
    fabric_file: Annotated[
        Path | None,
        typer.Option("--fabric", metavar="FABRIC.yaml", help="Take the host count from here."),
    ] = None,
    hosts: Annotated[int | None, typer.Option("--hosts", help="Number of hosts.")] = None,
    senders: Annotated[
        int | None, typer.Option(help="incast: senders (default: every other host).")
    ] = None,
    receiver: Annotated[
        int | None, typer.Option(help="incast: receiving host (default 0).")
    ] = None,
    start_us: Annotated[float, typer.Option("--start-us", help="Start time of every flow.")] = 0.0,
    flow_count: Annotated[
        int | None, typer.Option("--flows", help="workload: how many flows (default 10,000).")
    ] = None,
    load: Annotated[
        float | None,
        typer.Option(help="workload: fraction of each host's link offered (default 0.5)."),
    ] = None,
    sizes: Annotated[
        str | None,
        typer.Option(
            help="workload: flow sizes, websearch (default) or a CSV of size_bytes,cdf points."
        ),
    ] = None,
    link_gbps: Annotated[
        float | None,
        typer.Option(
            "--link-gbps", help="workload: host link rate (default: the fabric's, or 100)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random choices.")] = 0,
) -> None:
    """Write a FLOWS.csv: incast, permutation, alltoall, or an open-loop workload.

    A workload is Poisson flow arrivals at every host at --load of its link, to
    destinations drawn uniformly, with sizes from a measured distribution (DCTCP's
    web search by default), as transport papers benchmark.
    """
    problems: list[str] = []
    workload = pattern is TrafficPattern.workload
    if workload and size is not None:
        problems.append("--size: a workload's sizes come from --sizes, not --size")
    if not workload and size is None:
        problems.append(f"--size: {pattern.value} needs the bytes per flow, e.g. --size 2MB")
    if not workload:
        for flag, value in (
            ("--flows", flow_count),
            ("--load", load),
            ("--sizes", sizes),
            ("--link-gbps", link_gbps),
        ):
            if value is not None:
                problems.append(f"{flag}: only applies to workload, not {pattern.value}")
    if (fabric_file is None) == (hosts is None):
        problems.append("give exactly one of --fabric FABRIC.yaml and --hosts N")
    if hosts is not None and hosts < 2:
        problems.append(f"--hosts: need at least 2 hosts, got {hosts}")
    if seed < 0:
        problems.append(f"--seed: must not be negative, got {seed}")
    if pattern is not TrafficPattern.incast:
        for flag, value in (("--senders", senders), ("--receiver", receiver)):
            if value is not None:
                problems.append(f"{flag}: only applies to incast, not {pattern.value}")
    if out.is_dir():
        problems.append(f"--out: {out} is a directory; give the CSV file to write")
    if problems:
        fail(problems)
    check_out_file(out)
    from sim.fabric.traffic import alltoall, incast, parse_size_bytes, permutation, write_flows

    size_bytes = 0
    if size is not None:
        try:
            size_bytes = parse_size_bytes(size)
        except ValueError as exc:
            fail([f"--size: {exc}"])
    nic_gbps = 100.0
    if fabric_file is not None:
        topology = _load_fabric(fabric_file).build_topology()
        n_hosts, nic_gbps = topology.n_hosts, float(topology.nic_gbps.mean())
    else:
        n_hosts = hosts
    from sim.rng import Streams

    rng = Streams(seed).get(f"traffic/{pattern.value}")
    try:
        if workload:
            flows = _workload(n_hosts, flow_count, load, sizes, link_gbps or nic_gbps, rng)
        elif pattern is TrafficPattern.incast:
            flows = incast(
                n_hosts,
                n_hosts - 1 if senders is None else senders,
                0 if receiver is None else receiver,
                size_bytes,
                start_us,
                rng=rng,
            )
        elif pattern is TrafficPattern.permutation:
            flows = permutation(n_hosts, size_bytes, start_us, rng=rng)
        else:
            flows = alltoall(list(range(n_hosts)), size_bytes, start_us)
    except ValueError as exc:
        fail([f"{pattern.value}: {exc}"])
    write_flows(flows, out)
    typer.echo(f"wrote {len(flows):,} flows to {out}")


def _workload(
    n_hosts: int,
    flow_count: int | None,
    load: float | None,
    sizes: str | None,
    link_gbps: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """``surplus traffic workload``: the open-loop flows, or exit 2 naming the bad option."""
    from sim.fabric.open_loop import SIZE_DISTRIBUTIONS, open_loop, read_sizes

    name = sizes or "websearch"
    try:
        distribution = SIZE_DISTRIBUTIONS[name] if name in SIZE_DISTRIBUTIONS else read_sizes(name)
    except ValueError as exc:
        known = ", ".join(sorted(SIZE_DISTRIBUTIONS))
        fail([f"--sizes: {exc} (built in: {known}; or a CSV file of size_bytes,cdf)"])
    return open_loop(
        n_hosts,
        10_000 if flow_count is None else flow_count,
        0.5 if load is None else load,
        distribution,
        link_gbps,
        rng=rng,
    )


trace_app = typer.Typer(help="Public GPU cluster traces.", no_args_is_help=True)
app.add_typer(trace_app, name="trace")


@trace_app.command("inspect")
def trace_inspect(
    file: Annotated[Path, typer.Argument(help="Trace file (PAI 2020: its pai_task_table).")],
    format: Annotated[str, typer.Option("--format", "-f", help="Trace format, e.g. philly.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What a trace holds: jobs, arrivals, GPUs, durations, GPU-hours, rows skipped."""
    from sim.scenario import ScenarioError
    from sim.traces import formats, inspect, inspect_table

    try:
        stats = inspect.trace_statistics(formats.read_trace(format, file))
    except ScenarioError as exc:
        fail(exc.problems)
    if as_json:
        typer.echo(json.dumps(_json_ready(stats), allow_nan=False))
    else:
        inspect_table.print_inspection(stats)


def _version(value: bool) -> None:
    if value:
        from sim import __version__

        typer.echo(f"surplus {__version__}")
        raise typer.Exit()


_debug = False
"""Whether ``--debug`` was given: internal errors then show their traceback."""


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="On an internal error, show the full traceback.")
    ] = False,
) -> None:
    """Surplus: how much usable compute tenants really get, and at what tail latency."""
    global _debug
    _debug = debug


INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""

MESSAGE_CHARACTERS = 300
"""An internal error's message is cut to its first line and at most this many characters."""


def _one_line(exc: BaseException) -> str:
    """An exception's message as one short line."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if len(text) > MESSAGE_CHARACTERS:
        text = text[: MESSAGE_CHARACTERS - 3] + "..."
    return text


def _interrupted(exc: BaseException) -> bool:
    """Whether an exception was caused by Ctrl-C (typer turns it into exit status 130)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def main() -> None:
    """Entry point of the ``surplus`` console script (and of ``python -m sim``).

    The last resort: an exception no command turned into a message is printed as one
    line (``--debug``: its traceback) with exit status 2; Ctrl-C prints ``interrupted``
    and exits 130. Output directories being written are removed on the way out (see
    :mod:`sim.outputs`), so neither leaves a half-written one.
    """
    global _debug
    _debug = False
    try:
        app()
    except SystemExit as exc:
        if exc.code == INTERRUPTED and _interrupted(exc):
            typer.echo("interrupted", err=True)
        raise
    except KeyboardInterrupt:  # outside the command, where typer does not catch it
        typer.echo("interrupted", err=True)
        sys.exit(INTERRUPTED)
    except Exception as exc:
        if _debug:
            import traceback

            traceback.print_exception(exc)
        elif isinstance(exc, MemoryError):
            typer.echo(
                "error: out of memory; try a shorter horizon, a smaller scenario or fewer "
                "--workers; rerun with --debug for the traceback",
                err=True,
            )
        else:
            message = _one_line(exc)
            what = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
            typer.echo(
                f"error: internal error: {what}; rerun with --debug for the traceback", err=True
            )
        sys.exit(BAD_INPUT)

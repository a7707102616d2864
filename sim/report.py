"""Terminal tables of run summaries and comparisons (rich).

On a terminal the tables fit its width, folding long cells onto more lines; piped
or redirected, they are printed as wide as they need, so no header or name is cut.
Numbers keep one style: thousands separators and, in a comparison, the same
fixed decimals for every cell of a metric, chosen by the metric's magnitude.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

OVERALL = (
    ("GPUs", "gpus_total", "{:,.0f}"),
    ("capacity GPU-h", "capacity_gpu_hours", "{:,.0f}"),
    ("internal GPU-h", "internal_gpu_hours", "{:,.0f}"),
    ("sold GPU-h", "sold_gpu_hours", "{:,.0f}"),
    ("idle GPU-h", "idle_gpu_hours", "{:,.0f}"),
    ("spare GPU-h", "spare_gpu_hours", "{:,.0f}"),
    ("down GPU-h", "down_gpu_hours", "{:,.0f}"),
    ("parked GPU-h", "parked_gpu_hours", "{:,.0f}"),
    ("usable compute", "usable_compute_fraction", "{:.1%}"),
    ("iteration slowdown P99", "iteration_slowdown_p99", "{:.3f}"),
    ("inference P99 ms", "inference_latency_ms_p99", "{:.2f}"),
    ("PFC pause fraction", "pfc_pause_fraction", "{:.2%}"),
    ("jobs submitted", "jobs_submitted", "{:,}"),
    ("jobs completed", "jobs_completed", "{:,}"),
    ("jobs rejected", "jobs_rejected", "{:,}"),
    ("preemptions", "preemptions", "{:,}"),
    ("failures", "failures", "{:,}"),
    ("queue wait mean h", "queue_wait_hours_mean", "{:.2f}"),
    ("queue wait P99 h", "queue_wait_hours_p99", "{:.2f}"),
    ("energy MWh", "energy_mwh", "{:,.1f}"),
    ("peak power MW", "power_mw_peak", "{:,.3f}"),
    ("compute speed (power cap)", "compute_speed_mean", "{:.1%}"),
    ("revenue USD (net of SLA credits)", "revenue_usd", "{:,.0f}"),
    ("SLA credits USD", "sla_credits_usd", "{:,.0f}"),
    ("cost of the surplus USD", "cost_usd", "{:,.0f}"),
    ("margin USD", "margin_usd", "{:,.0f}"),
    ("margin USD per GPU-h sold", "margin_usd_per_gpu_hour", "{:,.2f}"),
)

PER_TENANT = (  # sold: a reserved block's whole term; held: what its jobs held of it
    ("contract", "contract", "{}"),
    ("sold GPU-h", "sold_gpu_hours", "{:,.0f}"),
    ("held GPU-h", "allocated_gpu_hours", "{:,.0f}"),
    ("usable", "usable_compute_fraction", "{:.1%}"),
    ("jobs", "jobs_submitted", "{:,}"),
    ("done", "jobs_completed", "{:,}"),
    ("rejected", "jobs_rejected", "{:,}"),
    ("preempted", "preemptions", "{:,}"),
    ("wait mean h", "queue_wait_hours_mean", "{:.2f}"),
    ("wait P99 h", "queue_wait_hours_p99", "{:.2f}"),
    ("slowdown P99", "iteration_slowdown_p99", "{:.3f}"),
    ("SLA held", "sla_held", "{}"),
    ("credits USD", "sla_credits_usd", "{:,.0f}"),
    ("revenue USD", "revenue_usd", "{:,.0f}"),
    ("margin USD", "margin_usd", "{:,.0f}"),
)


CREDIT_STALL = ("credit stall fraction", "credit_stall_fraction", "{:.2%}")
"""InfiniBand's line for the PFC pause fraction (a run with credit-based fabrics)."""


def _with_credit_stall(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """:data:`OVERALL`, the PFC line shown as credit stalls where the run has them.

    A run whose fabrics all have credits shows credit stalls in place of PFC pauses;
    one that mixes PFC and credit fabrics shows both lines.
    """
    if "credit_stall_fraction" not in summary:
        return list(OVERALL)
    rows: list[tuple[str, str, str]] = []
    for row in OVERALL:
        if row[1] != "pfc_pause_fraction":
            rows.append(row)
            continue
        if summary.get("pfc_pause_fraction") is not None:
            rows.append(row)
        rows.append(CREDIT_STALL)
    return rows


PIPED_WIDTH = 10_000
"""Console width when the output is not a terminal: wide enough for any table."""


def console_for_tables() -> Console:
    """A console that never cuts a table: the terminal's width, or unlimited when piped."""
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


def add_column(table: Table, header: str, *, right: bool = False) -> None:
    """Add a column that folds (never truncates) its header and cells."""
    table.add_column(header, justify="right" if right else "left", overflow="fold")


def _cell(value: Any, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """Print the overall figures and one row per tenant.

    Args:
        summary: A run's ``summary.json``.
        console: Where to print (default: :func:`console_for_tables`).
    """
    console = console if console is not None else console_for_tables()
    overall = Table(
        title=f"{summary['scenario']} (seed {summary['seed']}, {summary['horizon_hours']:g} h)",
        show_header=False,
    )
    add_column(overall, "figure")
    add_column(overall, "value", right=True)
    for label, key, fmt in _with_credit_stall(summary):
        overall.add_row(label, _cell(summary.get(key), fmt))
    console.print(overall)
    tenants = Table(title="tenants")
    add_column(tenants, "tenant")
    for label, _, _ in PER_TENANT:
        add_column(tenants, label, right=True)
    for name, figures in summary.get("tenants", {}).items():
        tenants.add_row(name, *(_cell(figures.get(key), fmt) for _, key, fmt in PER_TENANT))
    console.print(tenants)


COMPARED = (
    "usable_compute_fraction",
    "sold_gpu_hours",
    "iteration_slowdown_p99",
    "inference_latency_ms_p99",
    "inference_slo_attainment",
    "pfc_pause_fraction",
    "credit_stall_fraction",
    "queue_wait_hours_mean",
    "jobs_completed",
    "jobs_rejected",
    "preemptions",
    "revenue_usd",
    "margin_usd",
)
"""Metrics ``surplus compare`` prints when none are chosen (those the runs have)."""


def decimals_for(magnitude: float) -> int:
    """Decimals that show three significant digits of ``magnitude`` (none from 100 up).

    Args:
        magnitude: The largest absolute value a metric's cells show.
    """
    if not math.isfinite(magnitude) or magnitude <= 0:
        return 0
    return min(6, max(0, 2 - math.floor(math.log10(magnitude))))


def _number(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text  # no "-0.00"


def _interval(mean: float | None, low: float | None, high: float | None, decimals: int) -> str:
    """``mean ± half-width`` with thousands separators and ``decimals`` decimals."""
    if mean is None:
        return "—"
    if low is None or high is None:
        return _number(mean, decimals)
    return f"{_number(mean, decimals)} ± {_number((high - low) / 2, decimals)}"


def seeds_text(count: int) -> str:
    """``1 seed``, ``5 seeds``."""
    return f"{count} seed" if count == 1 else f"{count} seeds"


def print_comparison(
    comparison: Any, metrics: list[str] | None = None, console: Console | None = None
) -> None:
    """Print each policy's mean ± 95 % half-width, and its paired difference to the baseline.

    Every cell of a metric has the same decimals, chosen by the largest mean of its
    policies. With one seed there are no intervals: the title says so. Tenants with SLA
    terms get a second table (:func:`print_sla`).

    Args:
        comparison: What :func:`sim.compare.compare` returned.
        metrics: The metrics to print (default: those of :data:`COMPARED` the runs have).
        console: Where to print (default: :func:`console_for_tables`).
    """
    console = console if console is not None else console_for_tables()
    rows = {(row["policy"], row["metric"]): row for row in comparison.table}
    present = {metric for _, metric in rows}
    chosen = metrics or [m for m in COMPARED if m in present]
    names = [policy.name for policy in comparison.policies]
    count = len(comparison.seeds)
    what = (
        "mean ± 95 % CI half-width"
        if count > 1
        else "one run each, no intervals: they need 2 or more seeds"
    )
    console.print(  # above the table, not as its title: a title would wrap to its width
        f"{comparison.scenario}: {seeds_text(count)} per policy "
        f"({what}; Δ = paired difference to {comparison.baseline})",
        soft_wrap=True,
    )
    result = Table()
    add_column(result, "metric")
    for name in names:
        add_column(result, name, right=True)
    for name in names[1:]:
        add_column(result, f"Δ {name}", right=True)
    for metric in chosen:
        own = [rows.get((name, metric)) for name in names]
        means = [abs(row["mean"]) for row in own if row is not None and row["mean"] is not None]
        decimals = decimals_for(max(means, default=0.0))
        cells = [
            "—" if row is None else _interval(row["mean"], row["ci_low"], row["ci_high"], decimals)
            for row in own
        ]
        for row in own[1:]:
            cells.append(
                "—"
                if row is None
                else _interval(row["diff_mean"], row["diff_ci_low"], row["diff_ci_high"], decimals)
            )
        result.add_row(metric, *cells)
    console.print(result)
    print_sla(comparison, console)


def print_sla(comparison: Any, console: Console | None = None) -> None:
    """Print, per tenant with SLA terms, the probability over seeds that its terms held.

    Each cell is ``probability [low, high] held/n``, the interval Wilson's at 95 %
    (see :func:`sim.compare.sla_table`); nothing is printed without terms.

    Args:
        comparison: What :func:`sim.compare.compare` returned.
        console: Where to print (default: :func:`console_for_tables`).
    """
    rows = getattr(comparison, "sla", None) or []
    if not rows:
        return
    console = console if console is not None else console_for_tables()
    names = [policy.name for policy in comparison.policies]
    cells = {(row["policy"], row["tenant"]): row for row in rows}
    table = Table(title="SLA terms held: probability over seeds [Wilson 95 % interval] held/n")
    add_column(table, "tenant")
    for name in names:
        add_column(table, name, right=True)
    for tenant in sorted({row["tenant"] for row in rows}):
        line = []
        for name in names:
            row = cells.get((name, tenant))
            if row is None or row["probability"] is None:
                line.append("—" if row is None else f"— 0/{row['n']}")
                continue
            line.append(
                f"{row['probability']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}] "
                f"{row['held']}/{row['n']}"
            )
        table.add_row(tenant, *line)
    console.print(table)


SWEPT = (
    "revenue_usd",
    "margin_usd",
    "usable_compute_fraction",
    "iteration_slowdown_p99",
    "queue_wait_hours_p99",
)
"""Metrics ``surplus sweep`` prints per point when none are chosen, before hold probabilities."""

HOLD_SUFFIX = ".sla_held_probability"
"""How a tenant's hold probability is named in a sweep's table (see :mod:`sim.points_table`)."""


def _present(value: Any) -> float | None:
    """A table cell as a float, None for a null or NaN."""
    return None if value is None or value != value else float(value)


def print_points(
    table: Any,
    paths: list[str],
    title: str,
    metrics: list[str] | None = None,
    console: Console | None = None,
) -> list[str]:
    """Print one row per point of a sweep or plan: its values, seeds and chosen metrics.

    A metric's cell is ``mean ± 95 % CI half-width`` (the same decimals down the column);
    a hold probability's is ``probability [low, high] held/n``, Wilson's interval.

    Args:
        table: :func:`sim.points_table.points_table`'s frame (``table.parquet``).
        paths: Its columns that name a point.
        title: Printed above the table (the scenario's name).
        metrics: The metrics to print (default: those of :data:`SWEPT` the table has, then
            every tenant's hold probability).
        console: Where to print (default: :func:`console_for_tables`).

    Returns:
        The chosen metrics the table does not have (not printed).
    """
    console = console if console is not None else console_for_tables()
    present = list(dict.fromkeys(table["metric"]))
    if metrics:
        chosen = [m for m in metrics if m in present]
    else:
        holds = sorted(m for m in present if m.startswith("tenants.") and m.endswith(HOLD_SUFFIX))
        chosen = [m for m in SWEPT if m in present] + holds
    cells = {}
    points: dict[tuple[str, ...], int] = {}
    for row in table.to_dict("records"):
        point = tuple(str(row[p]) for p in paths)
        points[point] = max(points.get(point, 0), int(row["n"]))
        cells[(point, row["metric"])] = row
    count = f"{len(points)} point" if len(points) == 1 else f"{len(points)} points"
    console.print(
        f"{title}: {count} (mean ± 95 % CI half-width; SLA terms held: probability over "
        "seeds [Wilson 95 % interval] held/n)",
        soft_wrap=True,
    )
    result = Table()
    for path in paths:
        add_column(result, path)
    add_column(result, "seeds", right=True)
    for metric in chosen:
        add_column(result, metric, right=True)
    columns = []
    for metric in chosen:
        own = [cells.get((point, metric)) for point in points]
        means = [
            abs(m) for row in own if row is not None and (m := _present(row["mean"])) is not None
        ]
        decimals = decimals_for(max(means, default=0.0))
        column = []
        for row in own:
            mean = None if row is None else _present(row["mean"])
            if mean is None:
                column.append("—")
            elif metric.endswith(HOLD_SUFFIX):
                low, high, n = _present(row["low"]), _present(row["high"]), int(row["n"])
                column.append(f"{mean:.2f} [{low:.2f}, {high:.2f}] {round(mean * n)}/{n}")
            else:
                column.append(
                    _interval(mean, _present(row["low"]), _present(row["high"]), decimals)
                )
        columns.append(column)
    for index, (point, seeds) in enumerate(points.items()):
        result.add_row(*point, f"{seeds:,}", *(column[index] for column in columns))
    console.print(result)
    return [m for m in metrics or [] if m not in present]

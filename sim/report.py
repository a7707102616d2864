"""Terminal tables of run summaries (rich)."""

from __future__ import annotations

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
    ("revenue USD", "revenue_usd", "{:,.0f}"),
    ("cost of the surplus USD", "cost_usd", "{:,.0f}"),
    ("margin USD", "margin_usd", "{:,.0f}"),
    ("margin USD per GPU-h sold", "margin_usd_per_gpu_hour", "{:,.2f}"),
)

PER_TENANT = (
    ("contract", "contract", "{}"),
    ("GPU-h", "allocated_gpu_hours", "{:,.0f}"),
    ("usable", "usable_compute_fraction", "{:.1%}"),
    ("jobs", "jobs_submitted", "{:,}"),
    ("done", "jobs_completed", "{:,}"),
    ("rejected", "jobs_rejected", "{:,}"),
    ("preempted", "preemptions", "{:,}"),
    ("wait mean h", "queue_wait_hours_mean", "{:.2f}"),
    ("wait P99 h", "queue_wait_hours_p99", "{:.2f}"),
    ("slowdown P99", "iteration_slowdown_p99", "{:.3f}"),
    ("revenue USD", "revenue_usd", "{:,.0f}"),
    ("margin USD", "margin_usd", "{:,.0f}"),
)


def _cell(value: Any, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """Print the overall figures and one row per tenant."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=120)
    overall = Table(
        title=f"{summary['scenario']} (seed {summary['seed']}, {summary['horizon_hours']:g} h)",
        show_header=False,
    )
    overall.add_column("figure")
    overall.add_column("value", justify="right")
    for label, key, fmt in OVERALL:
        overall.add_row(label, _cell(summary.get(key), fmt))
    console.print(overall)
    tenants = Table(title="tenants")
    tenants.add_column("tenant")
    for label, _, _ in PER_TENANT:
        tenants.add_column(label, justify="right")
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
    "queue_wait_hours_mean",
    "jobs_completed",
    "jobs_rejected",
    "preemptions",
    "revenue_usd",
    "margin_usd",
)
"""Metrics ``surplus compare`` prints when none are chosen (those the runs have)."""


def _interval(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return "—"
    if low is None or high is None:
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {(high - low) / 2:.2g}"


def print_comparison(comparison: Any, metrics: list[str] | None = None) -> None:
    """Print each policy's mean ± 95 % half-width, and its paired difference to the baseline."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    rows = {(row["policy"], row["metric"]): row for row in comparison.table}
    present = {metric for _, metric in rows}
    chosen = metrics or [m for m in COMPARED if m in present]
    names = [policy.name for policy in comparison.policies]
    table = Table(
        title=f"{comparison.scenario}: {len(comparison.seeds)} seeds per policy "
        f"(mean ± 95 % CI half-width; Δ = paired difference to {comparison.baseline})"
    )
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    for name in names[1:]:
        table.add_column(f"Δ {name}", justify="right")
    for metric in chosen:
        cells = []
        for name in names:
            row = rows.get((name, metric))
            own = None if row is None else (row["mean"], row["ci_low"], row["ci_high"])
            cells.append("—" if own is None else _interval(*own))
        for name in names[1:]:
            row = rows.get((name, metric))
            cells.append(
                "—"
                if row is None
                else _interval(row["diff_mean"], row["diff_ci_low"], row["diff_ci_high"])
            )
        table.add_row(metric, *cells)
    console.print(table)

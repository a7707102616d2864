"""``surplus trace inspect`` as terminal tables (rich), never cut when piped."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from sim.report import add_column, console_for_tables


def _number(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _split(title: str, gpu_hours: dict[str, float], jobs: dict[str, int] | None = None) -> Table:
    """GPU-hours (and jobs) per value of one column."""
    table = Table(title=f"GPU-h demanded by {title}")
    add_column(table, title)
    if jobs is not None:
        add_column(table, "jobs", right=True)
    add_column(table, "GPU-h", right=True)
    for key, value in gpu_hours.items():
        counted = [] if jobs is None else [f"{jobs[key]:,}"]
        table.add_row(key, *counted, f"{value:,.1f}")
    return table


def print_inspection(stats: dict[str, Any]) -> None:
    """Print :func:`sim.traces.inspect.trace_statistics` as tables."""
    console = console_for_tables()
    heading = f"{stats['source']} ({stats['format']})"
    console.print(heading, soft_wrap=True, markup=False, highlight=False)
    overview = Table(show_header=False)
    add_column(overview, "figure")
    add_column(overview, "value", right=True)
    rows = (
        ("jobs", _number(stats["jobs"], "{:,}")),
        ("span h (first to last submission)", _number(stats["span_hours"], "{:,.2f}")),
        ("until the last job ends h", _number(stats["end_hours"], "{:,.2f}")),
        ("GPUs per job mean", _number(stats["gpus_mean"], "{:,.2f}")),
        ("GPUs per job median", _number(stats["gpus_median"], "{:,.1f}")),
        ("GPUs per job P99", _number(stats["gpus_p99"], "{:,.1f}")),
        ("duration h median", _number(stats["duration_hours_median"], "{:,.3f}")),
        ("duration h mean", _number(stats["duration_hours_mean"], "{:,.3f}")),
        ("duration h P99", _number(stats["duration_hours_p99"], "{:,.3f}")),
        ("GPU-h demanded", _number(stats["gpu_hours"], "{:,.1f}")),
        ("rows skipped", _number(stats["skipped_total"], "{:,}")),
    )
    for label, text in rows:
        overview.add_row(label, text)
    console.print(overview)

    hours = Table(title="arrivals by hour of day (trace clock)")
    add_column(hours, "hour")
    add_column(hours, "jobs per hour", right=True)
    for hour, rate in enumerate(stats["arrivals_per_hour_by_hour_of_day"]):
        hours.add_row(f"{hour:02d}", _number(rate, "{:,.2f}"))
    console.print(hours)

    console.print(_split("GPU model", stats["gpu_hours_by_model"]))
    if stats["job_type_column"]:
        column = stats["job_type_column"]
        console.print(_split(column, stats["gpu_hours_by_job_type"], stats["jobs_by_job_type"]))

    if stats["skipped"]:
        skipped = Table(title="rows skipped")
        add_column(skipped, "reason")
        add_column(skipped, "rows", right=True)
        for reason, count in stats["skipped"].items():
            skipped.add_row(reason, f"{count:,}")
        console.print(skipped)

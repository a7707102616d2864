"""SLA verdicts: each tenant's terms measured window by window, and the credits they owe.

The windows split ``[0, horizon]`` into days or weeks (the last one cut at the
horizon) or take the whole run. Each term is measured per window from the
run's own records (:func:`tenant_records`), never sampled on a clock:

- ``iteration_slowdown_p99``: the fabric's pieces (a job's slowdown from one
  fabric epoch to the next, with their start times), clipped to the window,
  P99 weighted by GPU-hours inside it. A job whose traffic is not modelled
  counts at 1.0 over the stretches it held its GPUs (as in the run summary).
- ``pause_fraction``: the same pieces' mean pause of the links the job's flows
  cross, weighted by GPU-hours in the window: PFC pause on RoCE, credit stall
  on InfiniBand where the fabric records it per job (a piece's
  ``credit_stall_fraction``). Null with a reason when no piece of the tenant's
  records either.
- ``queue_wait_p99``: P99 of submission-to-first-start waits of the jobs
  whose first start falls in the window (hours).
- ``spot_interruptions_per_1000_gpu_hours``: preemptions that took the
  tenant's GPUs in the window per 1,000 GPU-hours it held in the window.
- ``usable_compute_fraction``, ``inference_latency_ms_p99``,
  ``inference_slo_attainment``: the run records usable work and request
  latencies over the run, not per window, so these are measured with the
  ``run`` window only (the run summary's figure); with ``day`` or ``week`` the
  term's verdict is null with its reason.

Limits and values of durations (``queue_wait_p99``) are in hours.

The provider's own served model (``internal.inference.serving.sla``, a
:class:`sim.scenario.sla.ServedModelSla`) is checked the same way against the
``internal`` entry's ``inference_latency_ms_p99`` and
``inference_slo_attainment``; it has no bill, so its ``sla_credits_usd`` is
null and it adds nothing to the overall credits.

A window without anything to measure (no job started, no GPU held) has a
null value and counts as held. A term is breached in a window when its value
is past the limit (above a ceiling, below a floor); ``sla_held`` is false when
any term is breached in any window, null when no term breached but one could
not be measured, true otherwise (null without terms).

Credits: a window in breach refunds the percent of the highest tier of the
schedule (:mod:`sim.scenario.sla`) the window's worst excess reaches, of the
tenant's bill in that window: a reserved block its revenue times the share of
the block's term inside the window; on-demand and fixed-price spot their price
times the GPU-hours held in the window. A spot tenant paying a market price
has no per-window bill on record, so its credits are null. The summary's
``revenue_usd`` and ``margin_usd`` are net of credits (``revenue_gross_usd``
keeps what was billed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.metrics.stats import quantile, weighted_quantile
from sim.scenario.sla import CEILINGS, WINDOW_HOURS, ServedModelSla, Sla

RUN_ONLY = ("usable_compute_fraction", "inference_latency_ms_p99", "inference_slo_attainment")
"""Terms the run records only over the whole run."""

SUMMARY_KEY = {
    "usable_compute_fraction": "usable_compute_fraction",
    "inference_latency_ms_p99": "inference_latency_ms_p99",
    "inference_slo_attainment": "inference_slo_attainment",
}


@dataclass
class TenantRecord:
    """One tenant's time-stamped records, as the windows need them.

    Attributes:
        spans: Each stretch a job held GPUs: (start, end, GPUs).
        pieces: Each fabric piece: (start, end, GPUs, slowdown, pause); pause NaN
            where the fabric records none.
        starts: Each started job: (first start, wait) hours.
        preemptions: When each preemption took the tenant's GPUs (hours).
    """

    spans: list[tuple[float, float, int]] = field(default_factory=list)
    pieces: list[tuple[float, float, int, float, float]] = field(default_factory=list)
    starts: list[tuple[float, float]] = field(default_factory=list)
    preemptions: list[float] = field(default_factory=list)


def _pause(state: Any) -> float:
    value = getattr(state, "pfc_pause_fraction", None)
    if value is None:
        value = getattr(state, "credit_stall_fraction", None)
    return math.nan if value is None else float(value)


def tenant_records(jobs: Iterable[Any]) -> dict[str, TenantRecord]:
    """Gather each tenant's spans, fabric pieces, starts and preemptions from its jobs.

    Args:
        jobs: The market's :class:`sim.workloads.jobs.Job` objects after the run.
    """
    records: dict[str, TenantRecord] = {}
    for job in jobs:
        rec = records.setdefault(job.tenant, TenantRecord())
        rec.spans.extend((a, b, job.gpus) for a, b in job.run_spans)
        rec.preemptions.extend(job.preempted_at)
        if job.first_start_hours is not None:
            rec.starts.append((job.first_start_hours, job.first_start_hours - job.submit_hours))
        if job.serving:  # replicas do not iterate (as in the run summary)
            continue
        if job.network_log:
            for begin, (hours, state) in zip(job.network_starts, job.network_log, strict=True):
                rec.pieces.append((begin, begin + hours, job.gpus, state.slowdown, _pause(state)))
        else:
            rec.pieces.extend((a, b, job.gpus, 1.0, math.nan) for a, b in job.run_spans if b > a)
    return records


def windows(window: str, horizon_hours: float) -> list[tuple[float, float]]:
    """The measurement windows of a run: ``(start, end)`` hours."""
    length = WINDOW_HOURS[window]
    if length is None or horizon_hours <= 0:
        return [(0.0, horizon_hours)]
    count = math.ceil(horizon_hours / length - 1e-9)
    return [(k * length, min((k + 1) * length, horizon_hours)) for k in range(count)]


def _overlap(starts: np.ndarray, ends: np.ndarray, a: float, b: float) -> np.ndarray:
    return np.clip(np.minimum(ends, b) - np.maximum(starts, a), 0.0, None)


def measure(term: str, rec: TenantRecord, a: float, b: float, last: bool) -> float | None:
    """A term's value in window ``[a, b]`` from a tenant's records (None: nothing to measure).

    Args:
        term: A term that is measured per window (not one of :data:`RUN_ONLY`).
        rec: The tenant's records.
        a: Window start, hours.
        b: Window end, hours.
        last: Whether it is the run's last window (which keeps events at its end).
    """
    if term in ("iteration_slowdown_p99", "pause_fraction"):
        if not rec.pieces:
            return None
        p = np.array(rec.pieces, dtype=float)
        weight = p[:, 2] * _overlap(p[:, 0], p[:, 1], a, b)
        if term == "iteration_slowdown_p99":
            return weighted_quantile(p[:, 3], weight, 0.99)
        known = ~np.isnan(p[:, 4]) & (weight > 0)
        return float(np.average(p[known, 4], weights=weight[known])) if known.any() else None
    if term == "queue_wait_p99":
        waits = [w for t, w in rec.starts if a <= t < b or (last and t == b)]
        return quantile(np.array(waits), 0.99)
    if term == "spot_interruptions_per_1000_gpu_hours":
        s = np.array(rec.spans, dtype=float).reshape(-1, 3)
        held = float((s[:, 2] * _overlap(s[:, 0], s[:, 1], a, b)).sum())
        count = sum(1 for t in rec.preemptions if a <= t < b or (last and t == b))
        return 1000.0 * count / held if held > 0 else None
    raise ValueError(f"{term} is not measured per window")


def excess(term: str, limit: float, value: float | None) -> float | None:
    """How far ``value`` is past ``limit``, relative to it (None: held or not measured)."""
    if value is None:
        return None
    over = value - limit if term in CEILINGS else limit - value
    if over <= 0:
        return None
    return over / limit if limit > 0 else math.inf


def credit_percent(sla: Sla, worst: float) -> float:
    """Percent of a window's bill refunded when its worst excess is ``worst``."""
    percent = 0.0
    for tier in sla.credits:
        if worst > tier.past_limit_by:
            percent = tier.percent
    return percent


def window_bills(
    contract: Any,
    rec: TenantRecord,
    spans: list[tuple[float, float]],
    revenue_usd: float | None,
    horizon_hours: float,
) -> list[float] | None:
    """The tenant's bill in each window (None where the run has no per-window bill).

    Args:
        contract: The tenant's contract (:mod:`sim.scenario.tenants`).
        rec: Its records.
        spans: The windows.
        revenue_usd: What it paid over the run (None without a price).
        horizon_hours: The run's horizon.
    """
    if revenue_usd is None:
        return None
    if contract.kind == "reserved":
        start = contract.start
        end = horizon_hours if contract.term is None else min(start + contract.term, horizon_hours)
        term = end - start
        if term <= 0:
            return [0.0 for _ in spans]
        return [revenue_usd * max(0.0, min(b, end) - max(a, start)) / term for a, b in spans]
    price = contract.price_per_gpu_hour
    if price is None:  # spot at a market price: paid step by step, not per window
        return None
    s = np.array(rec.spans, dtype=float).reshape(-1, 3)
    return [price * float((s[:, 2] * _overlap(s[:, 0], s[:, 1], a, b)).sum()) for a, b in spans]


def evaluate(
    sla: Sla | ServedModelSla | None,
    contract: Any,
    rec: TenantRecord,
    entry: dict[str, Any],
    horizon_hours: float,
) -> dict[str, Any]:
    """One tenant's verdicts: ``sla_held``, ``sla_terms`` and ``sla_credits_usd``.

    Args:
        sla: Its terms (None: no terms, every figure null).
        contract: Its contract (None for the provider's served model, which has no bill).
        rec: Its records (:func:`tenant_records`).
        entry: Its run summary (the run-only terms' figures and ``revenue_usd``).
        horizon_hours: The run's horizon.
    """
    if sla is None:
        return {"sla_held": None, "sla_terms": None, "sla_credits_usd": None}
    spans = windows(sla.window, horizon_hours)
    worst: list[float | None] = [None] * len(spans)
    terms: dict[str, Any] = {}
    unmeasured = False
    for term, limit in sla.terms().items():
        out: dict[str, Any] = {"limit": limit}
        if term in RUN_ONLY:
            measured = entry.get(SUMMARY_KEY[term])
            if sla.window != "run":
                reason = f"the run records {term} over the whole run only, not per {sla.window}"
                out.update(measured=measured, held=None, reason=reason, windows_breached=None,
                           windows_total=len(spans), windows=None)  # fmt: skip
                unmeasured = True
                terms[term] = out
                continue
            values = [measured]
        else:
            values = [
                measure(term, rec, a, b, k == len(spans) - 1) for k, (a, b) in enumerate(spans)
            ]
            measured = measure(term, rec, 0.0, horizon_hours, True)
        reason = None
        if term == "pause_fraction" and measured is None and rec.pieces:
            reason = "no fabric on its links records PFC pause or credit stall per job"
        breached = 0
        for k, value in enumerate(values):
            over = excess(term, limit, value)
            if over is not None:
                breached += 1
                worst[k] = over if worst[k] is None else max(worst[k], over)
        held = None if reason else breached == 0
        unmeasured |= held is None
        out.update(measured=measured, held=held, reason=reason, windows_breached=breached,
                   windows_total=len(spans), windows=values)  # fmt: skip
        terms[term] = out
    breached_any = any(t["held"] is False for t in terms.values())
    sla_held = False if breached_any else (None if unmeasured else True)
    revenue = entry.get("revenue_usd")
    bills = None if contract is None else window_bills(contract, rec, spans, revenue, horizon_hours)
    credits = None
    if bills is not None:
        credits = sum(
            bill * credit_percent(sla, over) / 100.0
            for bill, over in zip(bills, worst, strict=True)
            if over is not None
        )
    return {"sla_held": sla_held, "sla_terms": terms, "sla_credits_usd": credits}


def add_sla(
    summary: dict[str, Any],
    tenants: Iterable[Any],
    records: dict[str, TenantRecord],
    internal_sla: ServedModelSla | None = None,
) -> None:
    """Fill the SLA verdicts and credits of ``summary`` in place; revenue becomes net.

    Adds per tenant ``sla_held``, ``sla_terms``, ``sla_credits_usd`` and
    ``revenue_gross_usd``; overall ``sla_credits_usd`` and
    ``revenue_gross_usd``; subtracts credits from ``revenue_usd`` per tenant,
    by contract and overall (call before :func:`sim.metrics.economics.add_costs`
    so that margins are net too).

    The ``internal`` entry gets the verdicts of the provider's served model
    (``internal_sla``) and never credits. Its ``inference_latency_ms_p99`` and
    ``inference_slo_attainment`` come from the internal inference fleet only:
    the run logs requests under ``internal`` for the fleet's ``serving`` block
    alone (the provider's training jobs serve nothing, and no tenant may be
    named ``internal``), so the terms are checked against the fleet's requests.

    Args:
        summary: The run summary (:func:`sim.metrics.summary.summarize`).
        tenants: The scenario's tenants (:class:`sim.scenario.tenants.Tenant`).
        records: Per tenant, its records (:func:`tenant_records`).
        internal_sla: The terms of the provider's served model
            (``internal.inference.serving.sla``), if any.
    """
    horizon = summary["horizon_hours"]
    entries = summary["tenants"]
    if "internal" in entries:
        internal = entries["internal"]
        verdict = evaluate(internal_sla, None, TenantRecord(), internal, horizon)
        internal.update(verdict)  # no contract, no bill: its credits are null
        internal["revenue_gross_usd"] = internal.get("revenue_usd")
    credited: list[float] = []
    for tenant in tenants:
        entry = entries[tenant.name]
        rec = records.get(tenant.name, TenantRecord())
        verdict = evaluate(tenant.contract.sla, tenant.contract, rec, entry, horizon)
        entry.update(verdict)
        gross = entry.get("revenue_usd")
        entry["revenue_gross_usd"] = gross
        credits = verdict["sla_credits_usd"]
        if credits is not None:
            credited.append(credits)
            if gross is not None:
                entry["revenue_usd"] = gross - credits
    summary["sla_credits_usd"] = sum(credited) if credited else None
    summary["revenue_gross_usd"] = summary.get("revenue_usd")
    for kind in ("reserved", "on_demand", "spot"):
        paid = [t["revenue_usd"] for t in entries.values() if t["contract"] == kind]
        known = [usd for usd in paid if usd is not None]
        summary[f"{kind}_revenue_usd"] = sum(known) if known else None
    known = [t["revenue_usd"] for t in entries.values() if t.get("revenue_usd") is not None]
    summary["revenue_usd"] = sum(known) if known else None

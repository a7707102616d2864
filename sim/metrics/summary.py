"""The run summary: the figures of ``summary.json``, overall and per tenant.

Definitions (all GPU-hours are integrated exactly over the horizon):

- ``capacity_gpu_hours`` = GPUs owned × horizon
  = ``internal + sold + idle + spare + down + parked`` GPU-hours (``spare``:
  nodes kept aside to replace failed ones; ``down``: failed nodes being
  repaired; ``parked``: nodes powered off to keep a site within its cap).
- ``failures``: failures that struck a node in service (see
  :mod:`sim.market.failures`); ``failure_interruptions``: the job restarts they
  caused (per tenant ``failures`` counts its jobs' restarts).
- ``sold_gpu_hours``: reserved blocks (whole blocks, used or not, since they
  are paid for) plus GPUs held by on-demand and spot jobs.
- ``allocated_gpu_hours``: GPUs held by jobs and by the internal inference fleet.
- ``usable_gpu_hours``: work that counts: each job's GPUs × the work it did
  at its fabric-given speed, less the work lost to preemption; the inference
  fleet's GPU-hours. ``usable_compute_fraction`` = usable / allocated.
- ``iteration_slowdown``: actual over ideal iteration time, from the fabric
  epoch by epoch; quantiles over jobs and time, weighted by GPU-hours. A job
  whose traffic is not modelled counts at 1.0.
- ``fct_slowdown_p99``: per job and epoch, the P99 over its flows of ideal
  over actual rate; the P99 of that over jobs and time, by GPU-hours.
- ``pfc_pause_fraction``: overall, paused over busy link-hours of the
  fabrics; per tenant, the mean pause of the links its flows cross, by
  GPU-hours. ``ecn_mark_fraction``: overall, marked over carried traffic;
  per tenant, the share of its traffic marked, by GPU-hours. Null where no
  fabric has PFC (or ECN).
- ``credit_stall_fraction``: InfiniBand's ``pfc_pause_fraction``, the same
  lossless back-pressure state measured the same way: stalled (waiting for
  credits) over busy link-hours of the fabrics with credits, and per link tier
  (``credit_stall_fraction_by_tier``); per tenant, the mean stall of the links
  its flows cross, by GPU-hours. Null where no fabric has credits (and for a
  tenant that never ran on one); ``pfc_pause_fraction`` stays null on credits.
- ``queue_wait_hours``: submission to first start, over jobs that started.
- ``inference_latency_ms_p50/p99/p999``: request latency (queue wait,
  service with its tensor-parallel all-reduces, client round trip) over all
  requests of the served models (see :mod:`sim.workloads.serving`), per
  tenant over its own. A served model's usable GPU-hours are its replicas'
  GPU-hours times the share of requests answered within its SLO, step by
  step; ``inference_slo_attainment`` is that share over the run (requests
  that found no replica up count as missed). Null where nothing is served.
  The internal fleet counts as fully usable when it has no ``serving`` block.
- ``revenue_usd``: what tenants paid (see :mod:`sim.policies.pricing`): a
  reserved block its price for every GPU-hour of its term, on-demand its price
  per GPU-hour held, spot its fixed or market price integrated step by step;
  per tenant (null without a price), by contract (``reserved_revenue_usd``,
  ``on_demand_revenue_usd``, ``spot_revenue_usd``) and overall (the sum over
  tenants with a price; null if none has one). ``spot_price_usd_mean`` per
  spot tenant: what it paid per GPU-hour held.
- Energy, costs and margin: see :mod:`sim.metrics.economics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.metrics.stats import quantile, weighted_quantile


def _network_figures(pieces: pd.DataFrame) -> dict[str, Any]:
    """Slowdown quantiles and congestion means over fabric pieces, by GPU-hours."""
    weight = (pieces["gpus"] * pieces["hours"]).to_numpy(dtype=float)
    figures: dict[str, Any] = {
        "iteration_slowdown_p50": weighted_quantile(pieces["slowdown"], weight, 0.5),
        "iteration_slowdown_p99": weighted_quantile(pieces["slowdown"], weight, 0.99),
    }
    flows = pieces["flow_slowdown_p99"].to_numpy(dtype=float)
    known = ~np.isnan(flows)
    figures["fct_slowdown_p99"] = (
        weighted_quantile(flows[known], weight[known], 0.99) if known.any() else None
    )
    for name in ("pfc_pause_fraction", "ecn_mark_fraction"):
        values = pieces[name].to_numpy(dtype=float)
        known = ~np.isnan(values) & (weight > 0)
        figures[name] = (
            float(np.average(values[known], weights=weight[known])) if known.any() else None
        )
    return figures


def _credit_stall_figures(fabric_log: Any) -> dict[str, Any]:
    """Overall and per tier credit stalls, where some fabric has credits (else null)."""
    if not fabric_log.has_credits:
        return {"credit_stall_fraction": None, "credit_stall_fraction_by_tier": None}
    return {
        "credit_stall_fraction": fabric_log.credit_stall_fraction,
        "credit_stall_fraction_by_tier": fabric_log.credit_stall_fraction_by_tier,
    }


def _tenant_credit_stall(pieces: pd.DataFrame, fabric_log: Any) -> dict[str, Any]:
    """A tenant's credit stall: as its PFC pause, over the links its flows cross, by GPU-hours."""
    if not fabric_log.has_credits:
        return {"credit_stall_fraction": None}
    weight = (pieces["gpus"] * pieces["hours"]).to_numpy(dtype=float)
    values = pieces["credit_stall_fraction"].to_numpy(dtype=float)
    known = ~np.isnan(values) & (weight > 0)
    stall = float(np.average(values[known], weights=weight[known])) if known.any() else None
    return {"credit_stall_fraction": stall}


def _job_figures(jobs: pd.DataFrame) -> dict[str, Any]:
    started = jobs[jobs["start_hours"].notna()]
    waits = started["wait_hours"].to_numpy(dtype=float)
    return {
        "jobs_submitted": len(jobs),
        "jobs_completed": int((jobs["outcome"] == "done").sum()),
        "jobs_rejected": int((jobs["outcome"] == "rejected").sum()),
        "preemptions": int(jobs["preemptions"].sum()),
        "failures": int(jobs["failures"].sum()),
        "queue_wait_hours_mean": float(waits.mean()) if waits.size else None,
        "queue_wait_hours_p99": quantile(waits, 0.99),
        "lost_gpu_hours": float(jobs["lost_gpu_hours"].sum()),
    }


def _serving_figures(logs: list[Any]) -> dict[str, Any]:
    """Request latency quantiles and SLO attainment over served models' logs."""
    from sim.workloads.serving import serving_figures  # scipy, loaded only when serving

    return serving_figures(logs)


def _fraction(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def summarize(
    *,
    scenario_name: str,
    seed: int,
    horizon_hours: float,
    wall_seconds: float,
    gpus_total: int,
    class_gpu_hours: dict[str, float],
    tenant_gpu_hours: dict[str, dict[str, float]],
    tenant_contracts: dict[str, str],
    jobs: pd.DataFrame,
    fabric_epochs: int,
    network: pd.DataFrame,
    fabric_log: Any,
    serving: dict[str, list[Any]] | None = None,
    tenant_prices: dict[str, float | None] | None = None,
    spot_usd: dict[str, float] | None = None,
    failure_events: int = 0,
) -> dict[str, Any]:
    """Build the ``summary.json`` mapping from a finished run.

    Args:
        scenario_name: The scenario's name.
        seed: The root seed used.
        horizon_hours: Simulated time.
        wall_seconds: Real time the run took.
        gpus_total: GPUs owned by the provider.
        class_gpu_hours: GPU-hours by class (internal, reserved, on_demand, spot, idle, down).
        tenant_gpu_hours: Per tenant (and "internal"), GPU-hours by kind of holding.
        tenant_contracts: Contract kind of each tenant, in scenario order.
        jobs: The jobs table (see :func:`sim.results.jobs_frame`).
        fabric_epochs: How many fabric solves the run made.
        network: What the fabric did to each job, piece by piece (see
            :func:`sim.results.network_frame`).
        fabric_log: The fabrics' time integrals
            (:class:`sim.metrics.fabric_log.FabricLog`).
        serving: Per tenant (and "internal"), its served models'
            :class:`sim.workloads.serving.ServingLog`.
        tenant_prices: Per tenant, the price per GPU-hour on its contract (or None).
        spot_usd: Per spot tenant with a price, what it paid (integrated as the
            price moved; see :mod:`sim.policies.pricing`).
        failure_events: Failures that struck a node in service (see
            :mod:`sim.market.failures`).
    """
    serving = serving or {}
    usable = jobs["gpus"] * jobs["done_work_hours"] - jobs["lost_gpu_hours"]
    replica = (jobs["workload"] == "inference").to_numpy()
    jobs = jobs.assign(
        usable_gpu_hours=np.where(replica, 0.0, usable),
        allocated_gpu_hours=jobs["gpus"] * jobs["run_hours"],
    )
    served_usable = {
        name: sum(log.usable_gpu_hours for log in logs) for name, logs in serving.items()
    }
    inference_hours = tenant_gpu_hours.get("internal", {}).get("inference", 0.0)
    fleet_usable = served_usable.get("internal", inference_hours)
    allocated = float(jobs["allocated_gpu_hours"].sum()) + inference_hours
    usable_total = (
        float(jobs["usable_gpu_hours"].sum())
        + sum(v for k, v in served_usable.items() if k != "internal")
        + fleet_usable
    )
    sold = class_gpu_hours["reserved"] + class_gpu_hours["on_demand"] + class_gpu_hours["spot"]
    summary: dict[str, Any] = {
        "scenario": scenario_name,
        "seed": seed,
        "horizon_hours": horizon_hours,
        "wall_seconds": wall_seconds,
        "gpus_total": gpus_total,
        "capacity_gpu_hours": gpus_total * horizon_hours,
        "internal_gpu_hours": class_gpu_hours["internal"],
        "sold_gpu_hours": sold,
        "idle_gpu_hours": class_gpu_hours["idle"],
        "spare_gpu_hours": class_gpu_hours["spare"],
        "parked_gpu_hours": class_gpu_hours["parked"],
        "down_gpu_hours": class_gpu_hours["down"],
        "reserved_gpu_hours": class_gpu_hours["reserved"],
        "on_demand_gpu_hours": class_gpu_hours["on_demand"],
        "spot_gpu_hours": class_gpu_hours["spot"],
        "allocated_gpu_hours": allocated,
        "usable_gpu_hours": usable_total,
        "usable_compute_fraction": _fraction(usable_total, allocated),
    }
    summary.update(_job_figures(jobs))
    summary["failure_interruptions"] = summary["failures"]
    summary["failures"] = failure_events
    summary.update(_network_figures(network))
    summary["pfc_pause_fraction"] = fabric_log.pfc_pause_fraction
    summary["ecn_mark_fraction"] = fabric_log.ecn_mark_fraction
    summary.update(_credit_stall_figures(fabric_log))
    summary.update(_serving_figures([log for logs in serving.values() for log in logs]))
    summary["fabric_epochs"] = fabric_epochs
    summary["reserved_shortfall_gpu_hours"] = sum(
        hours.get("reserved_shortfall", 0.0) for hours in tenant_gpu_hours.values()
    )
    summary["internal_inference_shortfall_gpu_hours"] = tenant_gpu_hours.get("internal", {}).get(
        "inference_shortfall", 0.0
    )

    tenants: dict[str, dict[str, Any]] = {}
    for name, contract in [("internal", "internal"), *tenant_contracts.items()]:
        own = jobs[jobs["tenant"] == name]
        hours = tenant_gpu_hours.get(name, {})
        extra = inference_hours if name == "internal" else 0.0
        t_alloc = float(own["allocated_gpu_hours"].sum()) + extra
        t_usable = float(own["usable_gpu_hours"].sum()) + (
            fleet_usable if name == "internal" else served_usable.get(name, 0.0)
        )
        entry: dict[str, Any] = {"contract": contract}
        if name == "internal":
            entry["internal_gpu_hours"] = class_gpu_hours["internal"]
            entry["inference_gpu_hours"] = inference_hours
        else:
            sold_hours = hours.get("reserved", 0.0) if contract == "reserved" else t_alloc
            entry["sold_gpu_hours"] = sold_hours
        entry["allocated_gpu_hours"] = t_alloc
        entry["usable_gpu_hours"] = t_usable
        entry["usable_compute_fraction"] = _fraction(t_usable, t_alloc)
        if contract == "reserved":
            entry["reserved_utilization"] = _fraction(t_alloc, hours.get("reserved", 0.0))
            entry["reserved_shortfall_gpu_hours"] = hours.get("reserved_shortfall", 0.0)
        entry.update(_job_figures(own))
        entry.update(_network_figures(network[network["tenant"] == name]))
        entry.update(_tenant_credit_stall(network[network["tenant"] == name], fabric_log))
        entry.update(_serving_figures(serving.get(name, [])))
        price = (tenant_prices or {}).get(name)
        revenue = _revenue(name, contract, entry.get("sold_gpu_hours", 0.0), price, spot_usd)
        entry["revenue_usd"] = revenue
        if contract == "spot":
            entry["spot_price_usd_mean"] = None if revenue is None else _fraction(revenue, t_alloc)
        tenants[name] = entry
    summary["tenants"] = tenants
    for kind in ("reserved", "on_demand", "spot"):
        paid = [t["revenue_usd"] for t in tenants.values() if t["contract"] == kind]
        known = [usd for usd in paid if usd is not None]
        summary[f"{kind}_revenue_usd"] = sum(known) if known else None
    known = [t["revenue_usd"] for t in tenants.values() if t.get("revenue_usd") is not None]
    summary["revenue_usd"] = sum(known) if known else None
    return _plain(summary)


def _revenue(
    name: str,
    contract: str,
    sold_gpu_hours: float,
    price: float | None,
    spot_usd: dict[str, float] | None,
) -> float | None:
    """What a tenant paid, or None without a price.

    A reserved block pays for every GPU-hour of its term, on-demand for the
    GPU-hours its jobs held, spot what the accounting integrated at its price
    as that moved.
    """
    if contract == "spot":
        return None if spot_usd is None else spot_usd.get(name)
    if contract == "internal" or price is None:
        return None
    return price * sold_gpu_hours


def _plain(value: Any) -> Any:
    """Turn numpy scalars into plain Python numbers for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value

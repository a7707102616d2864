"""Costs and margin: whether selling the surplus pays once power and depreciation count.

Costs over the run:

- ``depreciation_usd``: every cluster's server capex per GPU written off
  straight-line over its service life, for every GPU-hour owned (used or not);
  ``network_usd`` likewise for its fabric capex.
- ``energy_usd``: the sites' draw at the meter times their electricity price
  (carbon included where priced), integrated exactly between changes
  (:mod:`sim.market.power`).

Attribution: a tenant's cost is the capex of the GPU-hours it bought (a
reserved block's whole term; on-demand and spot the hours their jobs held), at
the provider's mean capex per GPU-hour, plus the energy its busy GPUs drew.
The provider's own workloads (``internal``) are costed the same way. The
energy of idle powered GPUs, and the capex of idle, spare, failed and parked
GPU-hours, stay with the provider.

``total_cost_usd`` is everything; ``cost_usd`` is the cost of the surplus: the
total less what the provider's own workloads cost (``internal_cost_usd``), so
that ``margin_usd = revenue_usd - cost_usd`` answers whether selling the
surplus pays. ``margin_usd_per_gpu_hour`` is over the GPU-hours sold,
``margin_usd_per_mw`` over the sites' power caps (MW). Costs are null when no
cluster has a capex and no site a power block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HOURS_PER_YEAR = 8766.0
"""Hours in a mean Gregorian year (365.25 days)."""


@dataclass(frozen=True)
class Costs:
    """What a run spent, as :func:`add_costs` needs it.

    Attributes:
        depreciation_usd_per_hour: Server capex written off per hour, all clusters.
        network_usd_per_hour: Fabric capex written off per hour, all clusters.
        capex_known: Whether any cluster has a capex.
        energy_mwh: Energy by owner (a tenant, "internal", or "idle").
        energy_usd: Its cost by owner, carbon included.
        energy_known: Whether any site has a power block.
        carbon_tonnes: Emissions of sites with a carbon price.
        cap_mw: The power caps of the sites with a power block, together.
        power_mw_peak: The highest total draw of those sites at any instant.
        compute_speed_mean: Their clock speed over time, weighted by GPUs
            (1: never throttled).
    """

    depreciation_usd_per_hour: float = 0.0
    network_usd_per_hour: float = 0.0
    capex_known: bool = False
    energy_mwh: dict[str, float] | None = None
    energy_usd: dict[str, float] | None = None
    energy_known: bool = False
    carbon_tonnes: float = 0.0
    cap_mw: float | None = None
    power_mw_peak: float | None = None
    compute_speed_mean: float | None = None


def add_costs(summary: dict[str, Any], costs: Costs) -> None:
    """Fill the cost, energy and margin figures of ``summary`` (and its tenants) in place."""
    known = costs.capex_known or costs.energy_known
    horizon = summary["horizon_hours"]
    capacity = summary["capacity_gpu_hours"]
    capex_per_gpu_hour = (
        (costs.depreciation_usd_per_hour + costs.network_usd_per_hour) * horizon / capacity
        if capacity > 0
        else 0.0
    )
    energy_mwh = costs.energy_mwh or {}
    energy_usd = costs.energy_usd or {}
    total_mwh = sum(energy_mwh.values())
    summary["energy_mwh"] = total_mwh if costs.energy_known else None
    summary["energy_usd"] = sum(energy_usd.values()) if costs.energy_known else None
    summary["carbon_tonnes"] = costs.carbon_tonnes if costs.energy_known else None
    summary["power_mw_mean"] = total_mwh / horizon if costs.energy_known else None
    summary["power_mw_peak"] = costs.power_mw_peak
    summary["compute_speed_mean"] = costs.compute_speed_mean
    summary["depreciation_usd"] = costs.depreciation_usd_per_hour * horizon if known else None
    summary["network_usd"] = costs.network_usd_per_hour * horizon if known else None

    def owner_cost(name: str, gpu_hours: float) -> float:
        return capex_per_gpu_hour * gpu_hours + energy_usd.get(name, 0.0)

    tenants = summary["tenants"]
    for name, entry in tenants.items():
        hours = entry.get("sold_gpu_hours", entry.get("internal_gpu_hours", 0.0))
        entry["energy_mwh"] = energy_mwh.get(name, 0.0) if costs.energy_known else None
        entry["cost_usd"] = owner_cost(name, hours) if known else None
        revenue = entry.get("revenue_usd")
        priced = revenue is not None and known and name != "internal"
        entry["margin_usd"] = revenue - entry["cost_usd"] if priced else None
    if not known:
        for key in ("total_cost_usd", "internal_cost_usd", "cost_usd", "margin_usd"):
            summary[key] = None
        summary["margin_usd_per_gpu_hour"] = summary["margin_usd_per_mw"] = None
        return
    total = summary["depreciation_usd"] + summary["network_usd"] + sum(energy_usd.values())
    internal = tenants["internal"]["cost_usd"]
    summary["total_cost_usd"] = total
    summary["internal_cost_usd"] = internal
    summary["cost_usd"] = total - internal
    revenue = summary.get("revenue_usd")
    margin = None if revenue is None else revenue - summary["cost_usd"]
    summary["margin_usd"] = margin
    sold = summary["sold_gpu_hours"]
    summary["margin_usd_per_gpu_hour"] = margin / sold if margin is not None and sold > 0 else None
    summary["margin_usd_per_mw"] = (
        margin / costs.cap_mw if margin is not None and costs.cap_mw else None
    )

"""A whole scenario file: the root model, with its ``compare`` and ``sweep`` blocks.

A scenario describes a provider (sites, clusters, nodes:
:mod:`sim.scenario.provider`), the provider's own internal demand and the
outside tenants with their contracts (:mod:`sim.scenario.tenants`) and
workloads (:mod:`sim.scenario.workloads`), and the policies that run the
marketplace (:mod:`sim.scenario.policies`). Every choice among alternatives is
a discriminated union on a ``kind`` field, so that the JSON Schema tells an
editor exactly which fields each kind takes. What no section can check on its
own is checked across them by :mod:`sim.scenario.checks`.

Durations are hours internally; files may write them as "90s", "15m", "6h",
"30d" (see :mod:`sim.scenario.durations`).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, model_validator

from sim.catalog import accelerators
from sim.scenario.base import MAX_GPUS, Name, Strict
from sim.scenario.checks import (
    admission_problems,
    few,
    internal_problems,
    isolation_problems,
    pricing_problems,
    provider_name_problems,
    provider_problems,
    tenant_name_problems,
    tenant_problems,
)
from sim.scenario.durations import Duration, format_duration
from sim.scenario.policies import Policies
from sim.scenario.provider import Provider
from sim.scenario.tenants import Internal, InternalTraining, Tenant
from sim.scenario.trace_source import replay_jobs
from sim.scenario.workloads import BatchWorkload

MAX_EVENTS = 2_000_000
"""Marketplace events a run may take (arrivals, steps, failures): an hour or so of work."""

MAX_SWEEP_POINTS = 100_000
"""Runs one sweep may hold."""


class Compare(Strict):
    """A ready comparison: what ``surplus compare FILE`` runs when no ``--policy`` is given.

    Each policy is a name and the fields it changes, as ``dotted.path: value`` pairs
    (the same paths as ``--set``); an empty mapping is the scenario as written.
    """

    seeds: int = Field(default=5, ge=1, le=10_000)
    baseline: Name | None = None
    policies: dict[Name, dict[str, Any]] = Field(min_length=1, max_length=1_000)

    @model_validator(mode="after")
    def _known_baseline(self) -> Compare:
        if self.baseline is not None and self.baseline not in self.policies:
            raise ValueError(
                f"baseline {self.baseline!r} is not one of the policies "
                f"({', '.join(self.policies)})"
            )
        return self


class Sweep(Strict):
    """A sweep: what ``surplus sweep FILE`` runs, one run per point.

    ``grid`` maps dotted paths (as for ``--set``) to lists of values and runs
    every combination; ``zip`` maps paths to lists of one length, varied
    together; every grid combination runs with every zip row, on ``seeds``
    seeds each (the file's seed and the ones after it).
    """

    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: dict[str, list[Any]] = Field(default_factory=dict)
    seeds: int = Field(default=1, ge=1, le=10_000)

    @model_validator(mode="after")
    def _shapes(self) -> Sweep:
        for path, values in {**self.grid, **self.zip}.items():
            if not values:
                raise ValueError(f"{path}: give at least one value")
        lengths = {path: len(values) for path, values in self.zip.items()}
        if len(set(lengths.values())) > 1:
            sizes = few(f"{path}: {n}" for path, n in lengths.items())
            raise ValueError(f"zip: every list must have the same length ({sizes})")
        both = sorted(set(self.grid) & set(self.zip))
        if both:
            raise ValueError(f"{both[0]} is in both grid and zip")
        points = math.prod(len(values) for values in self.grid.values()) * self.seeds
        points *= max(lengths.values(), default=1)
        if points > MAX_SWEEP_POINTS:
            raise ValueError(
                f"the sweep has {points:,} points (grid x zip x seeds); at most "
                f"{MAX_SWEEP_POINTS:,} are supported"
            )
        return self


class Scenario(Strict):
    """A whole scenario file."""

    name: Name
    description: str = Field(default="", max_length=100_000)
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    horizon: Duration = Field(gt=0)
    provider: Provider
    internal: Internal = Internal()
    tenants: list[Tenant] = Field(default_factory=list)
    policies: Policies = Policies()
    compare: Compare | None = None
    sweep: Sweep | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        """What sections say of each other: one check per section (:mod:`sim.scenario.checks`)."""
        known = accelerators()
        clusters = {c.name: c for c in self.provider.clusters()}
        names = [t.name for t in self.tenants]
        problems = [
            *provider_name_problems(self.provider),
            *tenant_name_problems(names),
            *pricing_problems(self.policies.pricing, self.tenants),
            *admission_problems(self.policies.admission, self.tenants),
            *isolation_problems(self.policies.isolation, names),
            *provider_problems(self.provider, known),
            *tenant_problems(self.tenants, clusters, known, self.horizon),
            *internal_problems(self.internal, clusters, known),
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _size(self) -> Scenario:
        gpus = sum(c.nodes * c.gpus_per_node for c in self.provider.clusters())
        if gpus > MAX_GPUS:
            raise ValueError(
                f"provider: its clusters hold {gpus:,} GPUs in all; at most {MAX_GPUS:,} "
                "are supported"
            )
        events = self.estimated_events()
        total = sum(events.values())
        if total > MAX_EVENTS:
            where, most = max(events.items(), key=lambda item: item[1])
            raise ValueError(
                f"{where}: the scenario would simulate about {total:.3g} marketplace events "
                f"({most:.3g} here) over its {format_duration(self.horizon)} horizon; at most "
                f"{MAX_EVENTS:,} are supported: shorten the horizon or lower the rate"
            )
        return self

    def estimated_events(self) -> dict[str, float]:
        """The expected number of marketplace events, by the field that causes them.

        Counts job arrivals (rate × horizon, or a trace's jobs before the
        horizon, at most ``max_jobs``), the sampling
        steps of every served model and of the inference fleet, failures at
        Meta's Llama 3 rates and the steps of random-walk electricity prices:
        what a run's cost grows with, known before it starts.
        """
        hours = self.horizon
        events: dict[str, float] = {}

        def jobs(where: str, workload: BatchWorkload | InternalTraining) -> None:
            limit = getattr(workload, "max_jobs", None)
            if workload.trace is not None:
                expected = float(replay_jobs(workload.trace, f"{where}.trace").within(hours))
                key = f"{where}.trace"
            else:
                expected = workload.arrivals.rate_per_hour * hours
                key = f"{where}.arrivals.rate_per_hour"
            events[key] = expected if limit is None else min(expected, limit)

        for i, tenant in enumerate(self.tenants):
            workload = tenant.workload
            if isinstance(workload, BatchWorkload):
                jobs(f"tenants[{i}].workload", workload)
            else:
                events[f"tenants[{i}].workload.serving.step"] = (
                    workload.replicas + hours / workload.serving.step
                )
        internal = self.internal
        if internal.training is not None:
            jobs("internal.training", internal.training)
        if internal.inference is not None:
            steps = hours / internal.inference.step
            if internal.inference.serving is not None:
                steps += hours / internal.inference.serving.step
            events["internal.inference.step"] = steps
        failures = self.provider.failures
        if failures is not None:
            from sim.market.failures import LLAMA3_CAUSES, LLAMA3_GPU_HOURS

            per_gpu_hour = sum(c.interruptions for c in LLAMA3_CAUSES) / LLAMA3_GPU_HOURS
            gpus = sum(c.nodes * c.gpus_per_node for c in self.provider.clusters())
            events["provider.failures.rate_scale"] = (
                2 * gpus * per_gpu_hour * failures.rate_scale * hours  # each failure and repair
            )
        for i, site in enumerate(self.provider.sites):
            price = site.power.price if site.power is not None else None
            if price is not None and price.kind == "random_walk":
                events[f"provider.sites[{i}].power.price.step"] = hours / price.step
        return events

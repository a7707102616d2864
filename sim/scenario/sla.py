"""A tenant's service-level terms: limits on what the run does to it, and the credits owed.

A contract's ``sla`` block names any of the terms below (each optional), the
measurement window and a credit schedule::

    sla:
      window: day                      # day, week or run (default run)
      iteration_slowdown_p99: 1.3      # at most
      pause_fraction: 0.05             # at most: PFC pause (RoCE) / credit stall (InfiniBand)
      usable_compute_fraction: 0.9     # at least
      queue_wait_p99: 2h               # at most
      spot_interruptions_per_1000_gpu_hours: 5   # at most
      inference_latency_ms_p99: 800    # at most (a served model)
      inference_slo_attainment: 0.99   # at least (a served model)
      credits:                         # per window in breach, the highest tier reached
        - {past_limit_by: 0, percent: 10}
        - {past_limit_by: 0.25, percent: 25}
        - {past_limit_by: 1, percent: 50}

How each term is measured window by window is in :mod:`sim.metrics.sla`. The
credit schedule is tiered like public-cloud SLAs: a window in breach refunds
``percent`` of the tenant's bill for that window, from the highest tier whose
``past_limit_by`` the window's worst term exceeds. A term's excess is how far
its measured value is past its limit, relative to the limit: ``(measured −
limit) / limit`` for a ceiling, ``(limit − measured) / limit`` for a floor.
``past_limit_by: 0`` is reached by any breach. Without ``credits`` nothing is
refunded.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.scenario.base import Strict
from sim.scenario.durations import Duration

WINDOW_HOURS: dict[str, float | None] = {"day": 24.0, "week": 168.0, "run": None}
"""Hours in each measurement window (None: the whole run)."""

CEILINGS = (
    "iteration_slowdown_p99",
    "pause_fraction",
    "queue_wait_p99",
    "spot_interruptions_per_1000_gpu_hours",
    "inference_latency_ms_p99",
)
"""Terms that hold while the measured value is at most the limit."""

FLOORS = ("usable_compute_fraction", "inference_slo_attainment")
"""Terms that hold while the measured value is at least the limit."""


class CreditTier(Strict):
    """One tier of a credit schedule."""

    past_limit_by: float = Field(
        ge=0,
        le=1e6,
        description="reached when the worst term is past its limit by more "
        "than this share of the limit (0: any breach)",
    )
    percent: float = Field(gt=0, le=100, description="percent of the window's bill refunded")


class Sla(Strict):
    """Service-level terms of a tenant's contract (each optional) and its credit schedule."""

    window: Literal["day", "week", "run"] = Field(
        default="run", description="measurement window: each day, each week or the whole run"
    )
    iteration_slowdown_p99: float | None = Field(
        default=None, ge=1, le=1e6, description="at most: P99 of actual over ideal iteration time"
    )
    pause_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="at most: PFC pause (RoCE) or credit stall (InfiniBand) of its links",
    )
    usable_compute_fraction: float | None = Field(
        default=None, ge=0, le=1, description="at least: usable over allocated GPU-hours"
    )
    queue_wait_p99: Duration | None = Field(
        default=None, description="at most: P99 of submission to first start"
    )
    spot_interruptions_per_1000_gpu_hours: float | None = Field(
        default=None, ge=0, le=1e9, description="at most: preemptions per 1,000 GPU-hours held"
    )
    inference_latency_ms_p99: float | None = Field(
        default=None, gt=0, le=1e9, description="at most: P99 request latency of its models"
    )
    inference_slo_attainment: float | None = Field(
        default=None, ge=0, le=1, description="at least: share of requests within the SLO"
    )
    credits: list[CreditTier] = Field(
        default_factory=list, description="tiers, by increasing past_limit_by"
    )

    @model_validator(mode="after")
    def _check(self) -> Sla:
        if not self.terms():
            raise ValueError("names no term (e.g. iteration_slowdown_p99, queue_wait_p99)")
        bounds = [tier.past_limit_by for tier in self.credits]
        if bounds != sorted(set(bounds)):
            raise ValueError("credits: tiers must come by strictly increasing past_limit_by")
        percents = [tier.percent for tier in self.credits]
        if percents != sorted(percents):
            raise ValueError("credits: a higher tier must refund at least as much as a lower one")
        return self

    def terms(self) -> dict[str, float]:
        """The terms it names, with their limits, in a fixed order."""
        names = sorted(CEILINGS + FLOORS)
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

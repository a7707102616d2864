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

The provider's own served model (``internal.inference.serving``) takes terms
too, in its serving block's ``sla`` (:class:`ServedModelSla`): only the two a
served model is measured by, ``inference_latency_ms_p99`` and
``inference_slo_attainment``, with a ``window`` and no ``credits`` (the
provider refunds nobody for its own model)::

    internal:
      inference:
        serving:
          sla: {inference_latency_ms_p99: 2000, inference_slo_attainment: 0.99}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

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


SERVED_MODEL_TERMS = ("inference_latency_ms_p99", "inference_slo_attainment")
"""The terms measured for the provider's own served model."""


def misplaced(block: str, problems: list[tuple[str, str, object]]) -> ValidationError:
    """An error naming each field of a block that does not belong there.

    Raised from a ``mode="before"`` validator, each problem is reported at its
    own field's path (``internal.inference.serving.sla.queue_wait_p99``) rather
    than at the block's.

    Args:
        block: The block's model name.
        problems: Each ``(field, what is wrong, its value)``.
    """
    details = [
        InitErrorDetails(type=PydanticCustomError("misplaced", why), loc=(name,), input=value)
        for name, why, value in problems
    ]
    return ValidationError.from_exception_data(block, details)


class ServedModelSla(Strict):
    """Service-level terms of the provider's own served model: its latency and SLO attainment.

    No credits: the provider refunds nobody for its own model; the verdicts say
    whether the fleet it runs met the terms it sets itself. The run records both
    figures over the whole run only, so with ``window: day`` or ``week`` their
    verdicts are null with that reason.
    """

    window: Literal["day", "week", "run"] = Field(
        default="run", description="measurement window: each day, each week or the whole run"
    )
    inference_latency_ms_p99: float | None = Field(
        default=None, gt=0, le=1e9, description="at most: P99 request latency of the model"
    )
    inference_slo_attainment: float | None = Field(
        default=None, ge=0, le=1, description="at least: share of requests within the SLO"
    )

    @model_validator(mode="before")
    @classmethod
    def _only_served_terms(cls, data: object) -> object:
        """Refuse a tenant's terms and credits here, each at its own field."""
        if not isinstance(data, dict):
            return data
        terms = ", ".join(SERVED_MODEL_TERMS)
        problems = []
        for name in sorted(data):
            if name == "credits":
                why = "the provider refunds nobody for its own model: no credits here"
            elif name in Sla.model_fields and name not in cls.model_fields:
                why = f"not a term measured for the provider's served model: {terms}"
            else:
                continue
            problems.append((name, why, data[name]))
        if problems:
            raise misplaced(cls.__name__, problems)
        return data

    @model_validator(mode="after")
    def _check(self) -> ServedModelSla:
        if not self.terms():
            raise ValueError(f"names no term ({', '.join(SERVED_MODEL_TERMS)})")
        return self

    def terms(self) -> dict[str, float]:
        """The terms it names, with their limits, in a fixed order."""
        return {n: getattr(self, n) for n in SERVED_MODEL_TERMS if getattr(self, n) is not None}

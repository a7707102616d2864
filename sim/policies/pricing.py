"""Pricing: what tenants pay per GPU-hour.

A pricing policy is a class registered in :data:`PRICINGS` under the scenario's
``policies.pricing.kind``. Reserved and on-demand contracts pay the price written on
them (``price_per_gpu_hour``): a reserved block for every GPU-hour of its term, used or
not; on-demand for the GPU-hours its jobs hold. Spot depends on the policy:

- ``fixed``: spot pays the price on its contract too.
- ``surplus_utilisation``: spot pays a market price that follows how busy the surplus is,
  ``floor + (ceiling - floor) * u ** exponent``, where ``u`` is the share of the surplus
  GPUs (those neither internal, reserved nor down) held by on-demand and spot jobs. The
  price changes whenever GPUs change hands, and revenue is integrated exactly over those
  steps.

A tenant whose contract carries no price (under ``fixed``) has no revenue figure (null).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

SURPLUS_BUSY = ("on_demand", "spot")
SURPLUS_NOT = ("internal", "reserved", "down")


def surplus_utilisation(gpus: Mapping[str, int]) -> float:
    """Share of the surplus GPUs (not internal, reserved or down) held by jobs; 1 if none."""
    surplus = sum(gpus.values()) - sum(gpus[c] for c in SURPLUS_NOT)
    if surplus <= 0:
        return 1.0
    return min(1.0, sum(gpus[c] for c in SURPLUS_BUSY) / surplus)


class PricingPolicy(Protocol):
    """What the run asks a pricing policy."""

    def spot_price(self, contract_price: float | None, gpus: Mapping[str, int]) -> float | None:
        """USD per GPU-hour a spot tenant pays now (None: no revenue figure), given the
        price on its contract and the GPUs by class now."""
        ...


class Fixed:
    """Every contract pays the price written on it, spot included."""

    def __init__(self, config: object = None):
        self.config = config

    def spot_price(self, contract_price: float | None, gpus: Mapping[str, int]) -> float | None:
        """USD per GPU-hour a spot tenant pays now.

        Args:
            contract_price: The price on the tenant's contract, if any.
            gpus: GPUs by class now (see :data:`sim.metrics.accounting.CLASSES`).
        """
        return contract_price


class SurplusUtilisation(Fixed):
    """Spot follows the utilisation of the surplus (see the module docstring)."""

    def __init__(self, config: object):
        super().__init__(config)
        self.floor = float(config.floor_per_gpu_hour)
        self.ceiling = float(config.ceiling_per_gpu_hour)
        self.exponent = float(config.exponent)

    def spot_price(self, contract_price: float | None, gpus: Mapping[str, int]) -> float:
        u = surplus_utilisation(gpus)
        return self.floor + (self.ceiling - self.floor) * u**self.exponent


PRICINGS: dict[str, type[PricingPolicy]] = {
    "fixed": Fixed,
    "surplus_utilisation": SurplusUtilisation,
}
"""Pricing policies by ``kind``."""


def make_pricing(config: object) -> PricingPolicy:
    """Build the pricing policy a scenario names."""
    return PRICINGS[config.kind](config)

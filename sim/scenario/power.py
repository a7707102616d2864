"""A site's power block: its grid connection, electricity price and carbon price.

A site draws power from the grid through a connection of ``cap_mw`` megawatts.
What it draws at the meter (the facility draw) is

    facility MW = PUE × (accelerators' draw + host draw)

where the host draw is the rest of each server (CPUs, memory, NICs, fans),
``host_watts_per_gpu`` for every GPU of a powered node, and the PUE (power usage
effectiveness, at least 1) adds cooling and power distribution losses. When the
GPUs would draw more than the cap allows, the site either throttles (busy
accelerators run at lower clocks, so everything keeps running more slowly) or
parks (whole nodes are powered off, so the rest all run at full power).

Electricity costs a price per MWh that is flat, follows a daily time-of-use
schedule, or follows a geometric random walk (a spot market). An optional carbon
price adds the cost of the grid's emissions to every MWh. Time 0 of the
simulation is midnight.

Kept apart from :mod:`sim.scenario.models` so that :mod:`sim.market.energy` can
read these models without loading every scenario model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    model_validator,
)

from sim.scenario.base import Strict
from sim.scenario.durations import Step

HOURS_PER_DAY = 24.0

MAX_USD_PER_MWH = 1_000_000.0
"""A thousand times the worst spot electricity prices on record."""

# --------------------------------------------------------------------------- electricity prices


class FlatPowerPrice(Strict):
    """Electricity costs the same at every hour."""

    kind: Literal["flat"]
    usd_per_mwh: float = Field(ge=0, le=MAX_USD_PER_MWH, description="USD per MWh")


class PowerPeriod(Strict):
    """One period of a daily time-of-use schedule.

    The period runs from ``start_hour`` to the next period's ``start_hour``; the
    last period of the day runs on past midnight until the first one starts.
    """

    start_hour: float = Field(ge=0, lt=HOURS_PER_DAY, description="hour of the day, 0 = midnight")
    usd_per_mwh: float = Field(ge=0, le=MAX_USD_PER_MWH, description="USD per MWh")


class TimeOfUsePowerPrice(Strict):
    """A daily schedule of prices, the same every day.

    Periods are listed in order of ``start_hour``. If the first period starts
    after midnight, the last period's price holds from midnight until then (the
    schedule wraps round midnight). A single period is a flat price.
    """

    kind: Literal["time_of_use"]
    periods: list[PowerPeriod] = Field(min_length=1, max_length=1440)

    @model_validator(mode="after")
    def _increasing(self) -> TimeOfUsePowerPrice:
        second = 1.0 / 3600.0
        for index in range(1, len(self.periods)):
            before, here = self.periods[index - 1].start_hour, self.periods[index].start_hour
            if here <= before:
                raise ValueError(
                    f"periods[{index}].start_hour ({here}) must be after "
                    f"periods[{index - 1}].start_hour ({before}): start hours must be "
                    "strictly increasing"
                )
            if here - before < second:
                raise ValueError(
                    f"periods[{index}].start_hour ({here}) is less than a second after "
                    f"periods[{index - 1}].start_hour ({before})"
                )
        first, last = self.periods[0].start_hour, self.periods[-1].start_hour
        if 0 < first < second or HOURS_PER_DAY - last < second:
            raise ValueError(
                "periods: a period must last at least a second, midnight included "
                f"(start hours from {first} to {last})"
            )
        return self


class RandomWalkPowerPrice(Strict):
    """A spot price: a geometric random walk, optionally reverting to a mean.

    The price is constant within each step of ``step`` hours. From one step to
    the next, with ``dt`` the step in hours and ``z`` a standard normal draw,

        log p' = log p + reversion_per_hour × (log mean − log p) × dt + volatility × √dt × z

    (the reversion term is left out without a mean). The price charged is
    ``max(p, floor_usd_per_mwh)``; the floor does not feed back into the walk.
    """

    kind: Literal["random_walk"]
    start_usd_per_mwh: float = Field(gt=0, le=MAX_USD_PER_MWH, description="price at time 0")
    volatility: float = Field(ge=0, le=10, description="relative standard deviation per √hour")
    mean_usd_per_mwh: float | None = Field(
        default=None, gt=0, le=MAX_USD_PER_MWH, description="level the log-price reverts to"
    )
    reversion_per_hour: float = Field(
        default=0.0, ge=0, le=1, description="share of the log-gap to the mean closed per hour"
    )
    step: Step = Field(default=1.0, description="how long each price holds")
    floor_usd_per_mwh: float = Field(
        default=0.0, ge=0, le=MAX_USD_PER_MWH, description="lowest price charged"
    )

    @model_validator(mode="after")
    def _reversion(self) -> RandomWalkPowerPrice:
        if self.reversion_per_hour > 0 and self.mean_usd_per_mwh is None:
            raise ValueError("reversion_per_hour > 0 needs mean_usd_per_mwh to revert to")
        if self.reversion_per_hour * self.step > 1:
            raise ValueError(
                f"reversion_per_hour × step ({self.reversion_per_hour} × {self.step} h) "
                "is above 1, so each step would overshoot the mean; use a shorter step"
            )
        return self


PowerPrice = Annotated[
    FlatPowerPrice | TimeOfUsePowerPrice | RandomWalkPowerPrice,
    Field(discriminator="kind"),
]

# --------------------------------------------------------------------------- carbon and sites


class CarbonPrice(Strict):
    """A price on the grid's emissions, charged on every MWh drawn.

    Each MWh emits ``grid_kg_per_mwh`` kg of CO2 and so costs
    ``usd_per_tonne × grid_kg_per_mwh / 1000`` USD on top of the electricity.
    """

    usd_per_tonne: float = Field(ge=0, le=100_000, description="USD per tonne of CO2")
    grid_kg_per_mwh: float = Field(
        ge=0, le=10_000, description="kg of CO2 the grid emits per MWh (coal: about 1,000)"
    )

    @property
    def usd_per_mwh(self) -> float:
        """USD the carbon price adds to each MWh."""
        return self.usd_per_tonne * self.grid_kg_per_mwh / 1000.0


class SitePower(Strict):
    """A site's grid connection, its efficiency and what its electricity costs.

    The facility draw is ``pue × (accelerators' draw + host draw)``, where the
    host draw is ``host_watts_per_gpu`` for every GPU of a powered node, busy or
    idle. It must stay within ``cap_mw``. When it would not:

    - ``throttle``: busy accelerators' clocks are scaled down together until the
      draw meets the cap; every job keeps running, more slowly.
    - ``park``: nodes are powered off (they draw nothing, host included) until
      the nodes left powered can all run at full power.
    """

    cap_mw: float = Field(gt=0, le=100_000, description="grid connection, MW (at most 100 GW)")
    pue: float = Field(
        ge=1, le=10, description="facility draw over IT draw (power usage effectiveness)"
    )
    policy: Literal["throttle", "park"] = "throttle"
    host_watts_per_gpu: float = Field(
        default=0.0, ge=0, le=100_000, description="server draw besides the accelerator"
    )
    price: PowerPrice
    carbon: CarbonPrice | None = None

"""Electricity prices over simulated time, and the exact cost of drawing power.

A :class:`PriceCurve` is a step function of USD per MWh over simulated hours:
the price changes only at its breakpoints (time-of-use periods, random-walk
steps). A draw of ``mw`` megawatts from ``start`` to ``end`` hours uses
``mw × (end − start)`` MWh and costs the integral of ``mw × price`` over that
interval, which the curve computes exactly from cumulative sums at its
breakpoints, in O(log n) per interval however many steps it spans.

:func:`price_curve` builds the curve of a site's price model
(:mod:`sim.scenario.power`), with any carbon price added to every step.
"""

from __future__ import annotations

import math

import numpy as np

from sim.scenario.power import (
    HOURS_PER_DAY,
    CarbonPrice,
    FlatPowerPrice,
    RandomWalkPowerPrice,
    TimeOfUsePowerPrice,
)


class PriceCurve:
    """A step function of USD per MWh over [0, ∞) simulated hours.

    The price ``usd_per_mwh[i]`` holds from ``breakpoints_hours[i]`` until
    ``breakpoints_hours[i + 1]``; the last price holds for ever. The curve is
    right-continuous: at a breakpoint the new price is in force.

    Args:
        breakpoints_hours: Times at which the price changes, strictly
            increasing, the first 0.
        usd_per_mwh: Price from each breakpoint on, finite and not negative;
            as many as there are breakpoints.

    Raises:
        ValueError: If the arrays are not 1-D, empty, of different lengths,
            not finite, not strictly increasing, not starting at 0, or if a
            price is negative.
    """

    def __init__(self, breakpoints_hours: np.ndarray, usd_per_mwh: np.ndarray):
        hours = np.array(breakpoints_hours, dtype=float)
        prices = np.array(usd_per_mwh, dtype=float)
        if hours.ndim != 1 or prices.ndim != 1:
            raise ValueError(
                f"breakpoints_hours and usd_per_mwh must be 1-D, got shapes "
                f"{hours.shape} and {prices.shape}"
            )
        if hours.size == 0:
            raise ValueError("a price curve needs at least one breakpoint (at 0 h)")
        if hours.size != prices.size:
            raise ValueError(
                f"breakpoints_hours has {hours.size} entries but usd_per_mwh has {prices.size}"
            )
        if not np.all(np.isfinite(hours)):
            raise ValueError("breakpoints_hours must be finite")
        if not np.all(np.isfinite(prices)):
            raise ValueError("usd_per_mwh must be finite")
        if hours[0] != 0.0:
            raise ValueError(f"the first breakpoint must be at 0 h, got {hours[0]}")
        steps = np.diff(hours)
        if np.any(steps <= 0):
            index = int(np.argmax(steps <= 0)) + 1
            raise ValueError(
                f"breakpoints_hours must be strictly increasing: breakpoint {index} "
                f"({hours[index]} h) is not after breakpoint {index - 1} ({hours[index - 1]} h)"
            )
        if np.any(prices < 0):
            index = int(np.argmax(prices < 0))
            raise ValueError(f"usd_per_mwh must not be negative: entry {index} is {prices[index]}")
        hours.flags.writeable = False
        prices.flags.writeable = False
        self._hours = hours
        self._prices = prices
        # USD per MW from 0 h to each breakpoint.
        cumulative = np.zeros(hours.size)
        np.cumsum(prices[:-1] * steps, out=cumulative[1:])
        cumulative.flags.writeable = False
        self._cumulative_usd_per_mw = cumulative

    @property
    def breakpoints_hours(self) -> np.ndarray:
        """Times at which the price changes (read-only)."""
        return self._hours

    @property
    def usd_per_mwh(self) -> np.ndarray:
        """Price from each breakpoint on (read-only)."""
        return self._prices

    def __len__(self) -> int:
        return int(self._hours.size)

    def __repr__(self) -> str:
        return (
            f"PriceCurve({self._hours.size} steps, {self._prices.min():g}"
            f"–{self._prices.max():g} USD/MWh)"
        )

    def _step(self, hours: float) -> int:
        """Index of the step in force at ``hours`` (which must be >= 0)."""
        return int(np.searchsorted(self._hours, hours, side="right")) - 1

    @staticmethod
    def _check_time(name: str, hours: float) -> None:
        if not (math.isfinite(hours) and hours >= 0):
            raise ValueError(f"{name} must be a finite, non-negative number of hours, got {hours}")

    def at(self, hours: float) -> float:
        """The price in force at a time.

        Args:
            hours: Simulated time, >= 0.

        Returns:
            USD per MWh; at a breakpoint, the price that starts there.
        """
        self._check_time("hours", hours)
        return float(self._prices[self._step(hours)])

    def integral_usd_per_mw(self, hours: float | np.ndarray) -> float | np.ndarray:
        """Cumulative cost of drawing 1 MW from time 0.

        ``cost_usd(a, b, mw)`` is ``mw × (I(b) − I(a))`` up to rounding.

        Args:
            hours: Simulated time(s), >= 0; a scalar or an array.

        Returns:
            USD per MW from 0 to each time: a float for a scalar, else an array
            of the same shape.
        """
        times = np.asarray(hours, dtype=float)
        if not (np.all(np.isfinite(times)) and np.all(times >= 0)):
            raise ValueError("hours must be finite and not negative")
        steps = np.searchsorted(self._hours, times, side="right") - 1
        result = self._cumulative_usd_per_mw[steps] + self._prices[steps] * (
            times - self._hours[steps]
        )
        if np.ndim(hours) == 0:
            return float(result)
        return result

    def cost_usd(self, start_hours: float, end_hours: float, mw: float) -> float:
        """Exact cost of drawing a constant power over an interval.

        Args:
            start_hours: Start of the draw, >= 0.
            end_hours: End of the draw, >= ``start_hours``.
            mw: Power drawn, MW (MW × h = MWh), >= 0.

        Returns:
            The integral of ``mw × price`` over [start, end], in USD; exactly 0
            when ``start_hours == end_hours``.

        Raises:
            ValueError: If a time or the power is negative or not finite, or if
                ``end_hours < start_hours``.
        """
        self._check_time("start_hours", start_hours)
        self._check_time("end_hours", end_hours)
        if end_hours < start_hours:
            raise ValueError(f"end_hours ({end_hours}) is before start_hours ({start_hours})")
        if not (math.isfinite(mw) and mw >= 0):
            raise ValueError(f"mw must be finite and not negative, got {mw}")
        first, last = self._step(start_hours), self._step(end_hours)
        prices, hours = self._prices, self._hours
        if first == last:
            # Within one step: no cumulative sums, so short intervals keep full precision.
            usd_per_mw = prices[first] * (end_hours - start_hours)
        else:
            head = prices[first] * (hours[first + 1] - start_hours)
            body = self._cumulative_usd_per_mw[last] - self._cumulative_usd_per_mw[first + 1]
            tail = prices[last] * (end_hours - hours[last])
            usd_per_mw = head + body + tail
        return float(mw * usd_per_mw)

    def mean_usd_per_mwh(self, start_hours: float, end_hours: float) -> float:
        """Time-average price over an interval.

        Args:
            start_hours: Start of the interval, >= 0.
            end_hours: End of the interval, >= ``start_hours``.

        Returns:
            USD per MWh averaged over [start, end]; the price at ``start_hours``
            if the interval is empty.
        """
        if end_hours == start_hours:
            return self.at(start_hours)
        return self.cost_usd(start_hours, end_hours, 1.0) / (end_hours - start_hours)


def _time_of_use(
    config: TimeOfUsePowerPrice, horizon_hours: float
) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints and prices of a daily schedule repeated past the horizon."""
    days = math.ceil(horizon_hours / HOURS_PER_DAY) + 1
    starts = np.array([p.start_hour for p in config.periods])
    prices = np.array([p.usd_per_mwh for p in config.periods])
    if starts[0] > 0:
        # Midnight until the first period: the last period, wrapping round.
        starts = np.concatenate(([0.0], starts))
        prices = np.concatenate((prices[-1:], prices))
    offsets = HOURS_PER_DAY * np.arange(days)
    breakpoints = (offsets[:, None] + starts[None, :]).ravel()
    return breakpoints, np.tile(prices, days)


def _random_walk(
    config: RandomWalkPowerPrice, horizon_hours: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints and prices of a (mean-reverting) geometric random walk."""
    step_hours = config.step
    # Steps that start before the horizon; a small slack keeps 24 / (1/60) at 1440.
    steps = max(1, math.ceil(horizon_hours / step_hours - 1e-9))
    z = rng.standard_normal(steps - 1)
    shocks = config.volatility * math.sqrt(step_hours) * z
    # The walk in log(p / start), so that the first price is the start price exactly.
    log_ratio = np.zeros(steps)
    if config.mean_usd_per_mwh is None or config.reversion_per_hour == 0:
        np.cumsum(shocks, out=log_ratio[1:])
    else:
        log_mean_ratio = math.log(config.mean_usd_per_mwh / config.start_usd_per_mwh)
        pull = config.reversion_per_hour * step_hours
        for k in range(steps - 1):
            log_ratio[k + 1] = log_ratio[k] + pull * (log_mean_ratio - log_ratio[k]) + shocks[k]
    prices = np.maximum(config.start_usd_per_mwh * np.exp(log_ratio), config.floor_usd_per_mwh)
    return step_hours * np.arange(steps), prices


def price_curve(
    config: FlatPowerPrice | TimeOfUsePowerPrice | RandomWalkPowerPrice,
    horizon_hours: float,
    rng: np.random.Generator,
    carbon: CarbonPrice | None = None,
) -> PriceCurve:
    """The price curve of a site's electricity price model.

    Flat and time-of-use prices draw nothing from ``rng``. A random walk draws
    all its normals at once, one per step after the first, so a longer horizon
    extends the same walk rather than changing it.

    Args:
        config: The price model.
        horizon_hours: How long the simulation runs; the curve covers at least
            [0, horizon] and its last price holds beyond.
        rng: The random stream for a random walk (pass a named stream).
        carbon: A carbon price whose USD per MWh is added to every step.

    Returns:
        The curve, carbon included.

    Raises:
        ValueError: If the horizon is negative or not finite.
        TypeError: If the config is not a known price model.
    """
    if not (math.isfinite(horizon_hours) and horizon_hours >= 0):
        raise ValueError(f"horizon_hours must be finite and not negative, got {horizon_hours}")
    if isinstance(config, FlatPowerPrice):
        breakpoints, prices = np.zeros(1), np.array([config.usd_per_mwh])
    elif isinstance(config, TimeOfUsePowerPrice):
        breakpoints, prices = _time_of_use(config, horizon_hours)
    elif isinstance(config, RandomWalkPowerPrice):
        breakpoints, prices = _random_walk(config, horizon_hours, rng)
    else:
        raise TypeError(f"unknown power price model {type(config).__name__}")
    if carbon is not None:
        prices = prices + carbon.usd_per_mwh
    return PriceCurve(breakpoints, prices)


def carbon_kg(mwh: float, carbon: CarbonPrice | None) -> float:
    """CO2 emitted by drawing some energy from the grid.

    Args:
        mwh: Energy drawn, MWh.
        carbon: The site's carbon price, or None.

    Returns:
        kg of CO2: ``mwh × grid_kg_per_mwh``, or 0 without a carbon price.
    """
    if carbon is None:
        return 0.0
    return float(mwh * carbon.grid_kg_per_mwh)

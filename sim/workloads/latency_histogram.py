"""Latency distributions on fixed log-spaced bins: mergeable across epochs and runs.

Every histogram has the same bins, so merging is an addition; quantiles
interpolate log-linearly inside a bin. Values are in milliseconds.
"""

from __future__ import annotations

import math

import numpy as np

from sim.workloads.arguments import check_non_negative_float, check_probability, is_real

__all__ = ["LatencyHistogram", "log_interpolate"]


def log_interpolate(low: float, high: float, fraction: float) -> float:
    """The point ``fraction`` of the way from ``low`` to ``high`` on a log scale (linear if
    ``low`` is not positive or the bin is empty): where a quantile falls inside a log bin."""
    if low <= 0.0 or high <= low:
        return low + (high - low) * fraction
    log_low = math.log(low)
    return math.exp(log_low + (math.log(high) - log_low) * fraction)


class LatencyHistogram:
    """A weighted latency distribution on fixed log-spaced bins, mergeable across epochs.

    Bins are 1,000 per decade from 0.001 ms to 1e7 ms (edges ``10 ** (k / 1000 - 3)`` ms,
    each 0.23 % wider than its lower edge), so every histogram has the same bins and merging
    is an addition. Values outside the range go to the end bins; the exact minimum and maximum
    are tracked and bound every answer. Quantiles interpolate log-linearly inside a bin, so
    their relative error is under one bin width (0.23 %).

    Each :meth:`add` spreads a weight (how many real requests a sample stands for) evenly over
    its values, so samples of different sizes from epochs of different lengths combine
    correctly.
    """

    BINS_PER_DECADE = 1000
    LOW_MS = 1e-3
    HIGH_MS = 1e7
    _DECADES = 10
    N_BINS = BINS_PER_DECADE * _DECADES
    EDGES_MS = LOW_MS * 10.0 ** (np.arange(N_BINS + 1) / BINS_PER_DECADE)
    """Bin edges, ms (``N_BINS + 1`` values)."""

    def __init__(self) -> None:
        self._weights = np.zeros(self.N_BINS)
        self._total = 0.0
        self._min = math.inf
        self._max = -math.inf

    @property
    def total(self) -> float:
        """Total weight added (number of requests represented)."""
        return self._total

    @property
    def min_ms(self) -> float | None:
        """Smallest value added (ms); None when empty."""
        return self._min if self._total > 0 else None

    @property
    def max_ms(self) -> float | None:
        """Largest value added (ms); None when empty."""
        return self._max if self._total > 0 else None

    @property
    def bin_weights(self) -> np.ndarray:
        """Weight in each bin (a copy), indexed like the intervals of :attr:`EDGES_MS`."""
        return self._weights.copy()

    def add(self, values_ms: np.ndarray, weight: float | None = None) -> None:
        """Add latencies standing for ``weight`` requests in all.

        Args:
            values_ms: Latencies, ms (finite, >= 0).
            weight: Requests the values stand for, spread evenly over them (default: one
                request per value). Must be 0 if ``values_ms`` is empty.

        Raises:
            ValueError: If a value is negative or not finite, the weight is negative or not
                finite, or a positive weight comes with no values.
        """
        values = np.asarray(values_ms, dtype=np.float64).ravel()
        if weight is None:
            weight = float(values.size)
        check_non_negative_float("weight", weight)
        if values.size == 0:
            if weight > 0:
                raise ValueError(f"weight {weight!r} given with no values to spread it over")
            return
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError("values_ms must be finite and >= 0")
        if weight == 0:
            return
        with np.errstate(divide="ignore"):
            position = (np.log10(values) + 3.0) * self.BINS_PER_DECADE
        index = np.clip(np.floor(position), 0, self.N_BINS - 1).astype(np.int64)
        self._weights += np.bincount(
            index, weights=np.full(values.size, weight / values.size), minlength=self.N_BINS
        )
        self._total += float(weight)
        self._min = min(self._min, float(values.min()))
        self._max = max(self._max, float(values.max()))

    def merge(self, other: LatencyHistogram) -> None:
        """Add every weight of ``other`` to this histogram (``other`` is unchanged)."""
        if not isinstance(other, LatencyHistogram):
            raise ValueError(f"can only merge a LatencyHistogram, got {type(other).__name__}")
        if other._total == 0:
            return
        self._weights += other._weights
        self._total += other._total
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def __iadd__(self, other: LatencyHistogram) -> LatencyHistogram:
        self.merge(other)
        return self

    def _bin_bounds(self, index: int) -> tuple[float, float]:
        """The part of bin ``index`` that lies within [min, max]."""
        low = max(float(self.EDGES_MS[index]), self._min) if index > 0 else self._min
        high = (
            min(float(self.EDGES_MS[index + 1]), self._max)
            if index < self.N_BINS - 1
            else self._max
        )
        return low, max(low, high)

    def quantile(self, q: float) -> float | None:
        """Quantile ``q`` of the weighted latencies (ms); None when empty.

        Args:
            q: In [0, 1]; 0 gives the minimum, 1 the maximum.
        """
        check_probability("q", q)
        if self._total <= 0:
            return None
        if q == 0.0:
            return self._min
        if q == 1.0:
            return self._max
        cumulative = np.cumsum(self._weights)
        target = q * cumulative[-1]
        index = min(int(np.searchsorted(cumulative, target, side="left")), self.N_BINS - 1)
        before = float(cumulative[index - 1]) if index > 0 else 0.0
        inside = float(self._weights[index])
        fraction = min(1.0, max(0.0, (target - before) / inside)) if inside > 0 else 1.0
        low, high = self._bin_bounds(index)
        return min(self._max, max(self._min, log_interpolate(low, high, fraction)))

    def fraction_at_most(self, x_ms: float) -> float:
        """Share of the weight at or below ``x_ms`` (log-linear inside a bin); nan when empty.

        Args:
            x_ms: A latency, ms.
        """
        if not (is_real(x_ms) and not math.isnan(x_ms)):
            raise ValueError(f"x_ms must be a number, got {x_ms!r}")
        if self._total <= 0:
            return math.nan
        if x_ms >= self._max:
            return 1.0
        if x_ms < self._min:
            return 0.0
        if x_ms > 0:
            position = math.floor((math.log10(x_ms) + 3.0) * self.BINS_PER_DECADE)
            index = min(max(position, 0), self.N_BINS - 1)
        else:
            index = 0
        below = float(self._weights[:index].sum())
        low, high = self._bin_bounds(index)
        if high <= low:
            share = 1.0
        elif low > 0:
            share = (math.log(x_ms) - math.log(low)) / (math.log(high) - math.log(low))
        else:
            share = (x_ms - low) / (high - low)
        share = min(1.0, max(0.0, share))
        return min(1.0, (below + share * float(self._weights[index])) / float(self._weights.sum()))


LatencyHistogram.EDGES_MS.setflags(write=False)

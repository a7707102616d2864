"""Small statistics helpers shared by summaries."""

from __future__ import annotations

import numpy as np


def quantile(values: np.ndarray, q: float) -> float | None:
    """The ``q`` quantile (linear interpolation), or None for no values."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return None
    return float(np.quantile(values, q))


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    """The smallest value whose cumulative weight reaches ``q`` of the total.

    Args:
        values: Observations.
        weights: Non-negative weight of each observation.
        q: Quantile in [0, 1].

    Returns:
        The quantile, or None if there is no positive weight.
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    keep = weights > 0
    if not keep.any():
        return None
    order = np.argsort(values[keep], kind="stable")
    v, w = values[keep][order], weights[keep][order]
    cumulative = np.cumsum(w)
    index = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
    return float(v[min(index, len(v) - 1)])

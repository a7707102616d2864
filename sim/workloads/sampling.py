"""Draw job sizes, run times and arrival gaps from scenario distributions."""

from __future__ import annotations

import numpy as np

from sim.scenario.workloads import (
    ChoiceGpus,
    ExponentialDuration,
    FixedDuration,
    FixedGpus,
    LognormalDuration,
    PoissonArrivals,
    UniformDuration,
)


def draw_duration_hours(dist: object, rng: np.random.Generator) -> float:
    """One run time in hours from a duration distribution."""
    match dist:
        case FixedDuration(value=value):
            return value
        case ExponentialDuration(mean=mean):
            return float(rng.exponential(mean))
        case LognormalDuration(median=median, sigma=sigma):
            return float(median * np.exp(sigma * rng.standard_normal()))
        case UniformDuration(low=low, high=high):
            return float(rng.uniform(low, high))
    raise TypeError(f"not a duration distribution: {dist!r}")


def draw_gpus(dist: object, rng: np.random.Generator) -> int:
    """One job size in GPUs from a GPU-count distribution."""
    match dist:
        case FixedGpus(value=value):
            return value
        case ChoiceGpus(values=values, weights=weights):
            if weights is None:
                return int(values[rng.integers(len(values))])
            p = np.asarray(weights, dtype=float)
            return int(values[rng.choice(len(values), p=p / p.sum())])
    raise TypeError(f"not a GPU distribution: {dist!r}")


def draw_gap_hours(arrivals: object, rng: np.random.Generator) -> float:
    """Time to the next arrival, in hours."""
    match arrivals:
        case PoissonArrivals(rate_per_hour=rate):
            return float(rng.exponential(1.0 / rate))
    raise TypeError(f"not an arrival process: {arrivals!r}")

"""Open-loop traffic: flows arriving as a Poisson process at a load, sizes from an empirical CDF.

The benchmark workload of data-centre transport papers (DCTCP, pFabric, HPCC,
Parsimon): every host starts flows as a Poisson process to a destination
drawn uniformly among the other hosts, with sizes drawn from a measured
flow-size distribution, at a rate that offers each host's link a given
fraction of its capacity::

    rate per host = load x link_gbps / (8 x mean flow size)

Sizes follow a piecewise-linear CDF through measured points, as the
published generators sample them (inverse transform, linear between the
points). :data:`WEB_SEARCH` is the web-search distribution of DCTCP
(Alizadeh et al., SIGCOMM 2010), in the byte points the pFabric and HPCC
generators use: half the flows below 60 KB, a tenth above 5 MB, a mean of
1.71 MB. A CSV file of ``size_bytes,cdf`` rows gives any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.fabric.limits import MAX_FLOW_BYTES, MAX_FLOWS, MAX_HOSTS, MAX_START_US

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SIZE_DISTRIBUTIONS", "WEB_SEARCH", "SizeDistribution", "open_loop", "read_sizes"]


@dataclass(frozen=True)
class SizeDistribution:
    """A flow-size distribution: a piecewise-linear CDF through ``(size_bytes, cdf)`` points.

    Attributes:
        name: What it is called in messages.
        size_bytes: Sizes, non-decreasing, the first at the distribution's minimum.
        cdf: Cumulative probabilities at those sizes, non-decreasing from 0 to 1.
    """

    name: str
    size_bytes: np.ndarray
    cdf: np.ndarray

    def __post_init__(self) -> None:
        x, p = np.asarray(self.size_bytes, dtype=float), np.asarray(self.cdf, dtype=float)
        if x.ndim != 1 or x.shape != p.shape or x.size < 2:
            raise ValueError(f"{self.name}: needs two or more (size_bytes, cdf) points")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(p))):
            raise ValueError(f"{self.name}: sizes and probabilities must be finite numbers")
        if x[0] < 0 or x[-1] > MAX_FLOW_BYTES or x[-1] < 1:
            raise ValueError(f"{self.name}: sizes must lie from 0 to {MAX_FLOW_BYTES:,} bytes")
        if np.any(np.diff(x) < 0) or np.any(np.diff(p) < 0):
            raise ValueError(f"{self.name}: sizes and probabilities must not decrease")
        if p[0] != 0 or p[-1] != 1:
            raise ValueError(
                f"{self.name}: the CDF must start at 0 and end at 1, got {p[0]:g} to {p[-1]:g}"
            )
        object.__setattr__(self, "size_bytes", x)
        object.__setattr__(self, "cdf", p)

    @property
    def mean_bytes(self) -> float:
        """The mean flow size: each segment's probability times its midpoint."""
        x, p = self.size_bytes, self.cdf
        return float(np.sum(np.diff(p) * (x[1:] + x[:-1]) / 2.0))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` sizes (whole bytes, at least 1) by inverse transform."""
        u = rng.random(n)
        sizes = np.interp(u, self.cdf, self.size_bytes)
        return np.maximum(np.ceil(sizes), 1).astype(np.int64)


WEB_SEARCH = SizeDistribution(
    "websearch",
    np.array([0, 10e3, 20e3, 30e3, 50e3, 80e3, 200e3, 1e6, 2e6, 5e6, 10e6, 30e6]),
    np.array([0, 0.15, 0.20, 0.30, 0.40, 0.53, 0.60, 0.70, 0.80, 0.90, 0.97, 1.0]),
)
"""DCTCP's web-search flow sizes (Alizadeh et al. 2010), as pFabric and HPCC sample them."""

SIZE_DISTRIBUTIONS: dict[str, SizeDistribution] = {WEB_SEARCH.name: WEB_SEARCH}
"""The built-in distributions by name."""


def read_sizes(path: str | Path) -> SizeDistribution:
    """A distribution from a CSV file with a ``size_bytes,cdf`` header and one point a row.

    Raises:
        ValueError: If the file cannot be read or is not a valid CDF; the
            message names the file (and the line where one is to blame).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not lines or [c.strip() for c in lines[0].split(",")] != ["size_bytes", "cdf"]:
        raise ValueError(f"{path}:1: expected the header size_bytes,cdf")
    points = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        try:
            if len(cells) != 2:
                raise ValueError
            points.append((float(cells[0]), float(cells[1])))
        except ValueError:
            raise ValueError(f"{path}:{number}: expected two numbers, size_bytes,cdf") from None
    if not points:
        raise ValueError(f"{path}: no points")
    size_bytes, cdf = np.array(points).T
    return SizeDistribution(str(path), size_bytes, cdf)


def open_loop(
    n_hosts: int,
    n_flows: int,
    load: float,
    sizes: SizeDistribution,
    link_gbps: float,
    *,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Flows arriving at every host as a Poisson process at ``load`` of its link.

    Args:
        n_hosts: Hosts of the fabric; each sends and receives.
        n_flows: How many flows, the first arrivals of the hosts' processes together.
        load: Fraction of each host's link the offered bytes fill on average (0 to 1].
        sizes: The flow-size distribution.
        link_gbps: Each host's link rate.
        rng: Source of arrivals, sources, destinations and sizes.

    Returns:
        The flows in arrival order (``src, dst, start_us, size_bytes``).

    Raises:
        ValueError: On a bad argument; the message names it.
    """
    import pandas as pd

    if isinstance(n_hosts, bool) or not isinstance(n_hosts, int) or not 2 <= n_hosts <= MAX_HOSTS:
        raise ValueError(f"n_hosts must be an integer from 2 to {MAX_HOSTS:,}, got {n_hosts!r}")
    if isinstance(n_flows, bool) or not isinstance(n_flows, int) or not 1 <= n_flows <= MAX_FLOWS:
        raise ValueError(f"flows must be an integer from 1 to {MAX_FLOWS:,}, got {n_flows!r}")
    if not (isinstance(load, int | float) and 0 < load <= 1):
        raise ValueError(f"load must be a fraction of the link above 0 and at most 1, got {load!r}")
    if not (isinstance(link_gbps, int | float) and 0 < link_gbps < float("inf")):
        raise ValueError(f"link_gbps must be a positive number, got {link_gbps!r}")
    # Superposed, the hosts' processes are one Poisson process n_hosts times as fast
    # whose arrivals each belong to a host chosen uniformly.
    per_host_per_us = load * link_gbps * 1e3 / (8.0 * sizes.mean_bytes)
    gaps_us = rng.exponential(1.0 / (n_hosts * per_host_per_us), n_flows)
    start_us = np.cumsum(gaps_us)
    if start_us[-1] > MAX_START_US:
        raise ValueError(
            f"{n_flows:,} flows at load {load:g} arrive over {start_us[-1] / 1e6:,.0f} s, past "
            f"one day (at most {MAX_START_US / 1e6:,.0f} s): ask for fewer flows or more load"
        )
    src = rng.integers(0, n_hosts, n_flows)
    dst = (src + rng.integers(1, n_hosts, n_flows)) % n_hosts
    return pd.DataFrame(
        {
            "src": src.astype(np.int64),
            "dst": dst.astype(np.int64),
            "start_us": start_us,
            "size_bytes": sizes.sample(n_flows, rng),
        }
    )

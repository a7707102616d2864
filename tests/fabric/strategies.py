"""Shared hypothesis strategies for the fabric tests: rate problems and small fabrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st

from sim.fabric.topology import Topology, build_topology


@dataclass(frozen=True)
class RateProblem:
    """A max-min rate allocation problem."""

    incidence: sp.csr_matrix
    capacity_gbps: np.ndarray
    weights: np.ndarray | None
    demand_gbps: np.ndarray | None

    @property
    def n_flows(self) -> int:
        return self.incidence.shape[0]


@st.composite
def rate_problems(
    draw: st.DrawFn,
    *,
    max_flows: int = 8,
    max_links: int = 6,
    fractional: bool = False,
    weighted: bool = True,
    demands: bool = True,
) -> RateProblem:
    """Random small incidence matrices, capacities, weights and demands.

    Every flow crosses at least one link. Capacities, weights and demands are
    drawn from a handful of round values so that ties between bottleneck
    levels (the hard case for progressive filling) happen often.
    """
    n_flows = draw(st.integers(1, max_flows))
    n_links = draw(st.integers(1, max_links))
    rows = []
    for _ in range(n_flows):
        row = draw(st.lists(st.booleans(), min_size=n_links, max_size=n_links))
        if not any(row):
            row[draw(st.integers(0, n_links - 1))] = True
        rows.append(row)
    mask = np.array(rows, dtype=bool)
    values = np.ones(mask.shape)
    if fractional:
        shares = st.sampled_from([0.25, 0.5, 1.0, 0.3])
        values = np.array(
            [[draw(shares) for _ in range(n_links)] for _ in range(n_flows)], dtype=float
        )
    incidence = sp.csr_matrix(np.where(mask, values, 0.0))
    capacity = np.array(
        [draw(st.sampled_from([1.0, 2.0, 3.0, 10.0, 40.0, 100.0, 0.5])) for _ in range(n_links)]
    )
    weights = None
    if weighted and draw(st.booleans()):
        weights = np.array(
            [draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])) for _ in range(n_flows)], dtype=float
        )
    demand = None
    if demands and draw(st.booleans()):
        demand = np.array(
            [draw(st.sampled_from([np.inf, 0.0, 0.5, 1.0, 5.0, np.inf])) for _ in range(n_flows)]
        )
    return RateProblem(incidence, capacity, weights, demand)


@st.composite
def small_topologies(draw: st.DrawFn) -> Topology:
    """Small fabrics of every registered kind."""
    kind = draw(st.sampled_from(["leaf_spine", "fat_tree", "rail_optimized", "meta_ai_zone"]))
    if kind == "leaf_spine":
        return build_topology(
            kind,
            hosts_per_leaf=draw(st.integers(1, 4)),
            leaves=draw(st.integers(1, 4)),
            spines=draw(st.integers(1, 3)),
            oversubscription=draw(st.sampled_from([1.0, 2.0, 3.0])),
        )
    if kind == "fat_tree":
        return build_topology(kind, k=draw(st.sampled_from([2, 4, 6])))
    if kind == "rail_optimized":
        return build_topology(
            kind,
            gpus_per_node=draw(st.integers(1, 4)),
            nodes_per_group=draw(st.integers(1, 3)),
            groups=draw(st.integers(1, 3)),
            spines=draw(st.integers(1, 3)),
        )
    return build_topology(
        kind,
        gpus_per_node=draw(st.integers(1, 4)),
        nodes_per_rack=draw(st.integers(1, 2)),
        racks_per_pod=draw(st.integers(1, 3)),
        pods=draw(st.integers(1, 3)),
        ctsw_per_pod=draw(st.integers(1, 3)),
        atsw_per_plane=draw(st.integers(1, 2)),
    )


@st.composite
def host_pairs(draw: st.DrawFn, topology: Topology, max_flows: int = 20) -> tuple[np.ndarray, ...]:
    """Random (src, dst) host arrays for ``topology``."""
    n = draw(st.integers(1, max_flows))
    host = st.integers(0, topology.n_hosts - 1)
    src = np.array(draw(st.lists(host, min_size=n, max_size=n)), dtype=np.int64)
    dst = np.array(draw(st.lists(host, min_size=n, max_size=n)), dtype=np.int64)
    return src, dst

"""How big a fabric run will be: its memory and time, predicted from its flows alone.

A fabric run (``surplus fabric``) is refused before anything is routed when it
would not fit: its sub-flows, the entries of their routes' incidence matrix,
and its *epochs* (one rate solve each time a flow starts or ends) times the
sub-flows active in each (*flow-epochs*), from which :func:`estimate_run`
predicts memory and time; at most :data:`MAX_RUN_BYTES` and
:data:`MAX_RUN_SECONDS`.

The run estimate is a model, not a bound: see :func:`estimate_run` for how it
counts epochs and where it is off. The per-field ranges and the topology size
rules are in :mod:`sim.fabric.limits`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.fabric.limits import format_bytes
from sim.fabric.paths import (
    CLASS_CROSS_POD,
    CLASS_LOCAL,
    CLASS_SAME_LEAF,
    CLASS_SAME_POD,
    flow_class,
)
from sim.fabric.topology import Topology
from sim.scenario.fabric import InfinibandTransport, RoceTransport, TransportConfig

__all__ = ["MAX_RUN_BYTES", "MAX_RUN_SECONDS", "RunEstimate", "estimate_run"]

MAX_RUN_BYTES = 4e9
"""Most memory a fabric run may be estimated to need (4 GB)."""

MAX_RUN_SECONDS = 1800.0
"""Longest a fabric run may be estimated to take: 30 minutes on one core."""

_BYTES_PER_ENTRY = 200
"""Peak memory per incidence entry over a run (the matrix, its transposes and active
slices), measured at 80 to 160 bytes."""

_BYTES_PER_SUBFLOW = 400
"""Peak memory per sub-flow (some forty float64 and int64 per-sub-flow arrays)."""

_SECONDS_PER_EPOCH = {"ideal": 0.5e-3, "roce": 0.8e-3, "backpressure": 1.5e-3}
"""Fixed cost of one epoch on a small topology, measured (lower ends)."""

_SECONDS_PER_LINK_EPOCH = 3e-8
"""Cost of one epoch per directed link of the topology (per-link arrays), measured."""

_SECONDS_PER_FLOW_EPOCH = {"ideal": 2e-6, "roce": 2e-6, "backpressure": 7e-6}
"""Cost of one active sub-flow in one epoch, measured (lower ends)."""

_SECONDS_PER_BURST = 15e-3
"""Cost of the DCQCN transients traced where flows start at line rate, per start time."""

_SECONDS_PER_PATH_CHOICE = 5e-9
"""Cost of weighing one candidate path for one adaptive-routing chunk, measured (4 to 11 ns)."""


@dataclass(frozen=True)
class RunEstimate:
    """The predicted size of a fabric run.

    Attributes:
        flows: Flows of the traffic.
        sub_flows: Rows of the incidence matrix (flows times queue pairs).
        incidence_entries: Stored entries of the sub-flow x link incidence.
        epochs: Rate solves (each start or end of a flow at a new instant).
        flow_epochs: Sub-flows active summed over the epochs.
        memory_bytes: Estimated peak memory.
        seconds: Estimated run time on one core.
    """

    flows: int
    sub_flows: int
    incidence_entries: int
    epochs: int
    flow_epochs: int
    memory_bytes: float
    seconds: float

    def problem(self) -> str | None:
        """Why this run is too big, or ``None``."""
        if self.memory_bytes > MAX_RUN_BYTES:
            return (
                f"{self.flows:,} flows on this fabric need ~{format_bytes(self.memory_bytes)} "
                f"({self.incidence_entries:,} route entries); at most "
                f"{format_bytes(MAX_RUN_BYTES)} are supported: use fewer flows or queue pairs"
            )
        if self.seconds > MAX_RUN_SECONDS:
            return (
                f"{self.flows:,} flows on this fabric need ~{self.flow_epochs:.2g} flow-epochs "
                f"over ~{self.epochs:,} epochs (~{_duration(self.seconds)}); at most "
                f"~{_duration(MAX_RUN_SECONDS)} is supported: use fewer or less overlapping flows"
            )
        return None


def _duration(seconds: float) -> str:
    if seconds >= 86_400:
        return f"{seconds / 86_400:,.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _segmented_cummax(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` restarting where ``segment`` (non-decreasing) changes.

    Works on ranks, so it is exact for any floats: ranks offset by ``segment * n``
    never mix across segments.
    """
    n = values.size
    order = np.argsort(values, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    offset = segment.astype(np.int64) * n
    best = np.maximum.accumulate(offset + rank) - offset
    return values[order[best]]


def _fifo_finish_us(
    host: np.ndarray, peer: np.ndarray, start_us: np.ndarray, work_us: np.ndarray
) -> np.ndarray:
    """When each flow would end if its host's NIC served flows one group at a time.

    Flows of one host with the same peer, start and size form a group that ends
    together (fair sharing treats them alike); groups are served first come,
    first served at the NIC's line rate. Vectorised: one sort, segmented sums.
    """
    n = host.size
    order = np.lexsort((work_us, peer, start_us, host))
    h, o, s, w = host[order], peer[order], start_us[order], work_us[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (h[1:] != h[:-1]) | (s[1:] != s[:-1]) | (o[1:] != o[:-1]) | (w[1:] != w[:-1])
    group = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    group_work = np.add.reduceat(w, first)
    group_start, group_host = s[first], h[first]
    new_host = np.ones(first.size, dtype=bool)
    new_host[1:] = group_host[1:] != group_host[:-1]
    segment = np.cumsum(new_host) - 1
    done = np.cumsum(group_work)
    done -= (done - group_work)[np.flatnonzero(new_host)][segment]  # restart at each host
    slack = group_start - (done - group_work)
    finish_sorted = (done + _segmented_cummax(slack, segment))[group]
    finish = np.empty(n)
    finish[order] = finish_sorted
    return finish


def _epoch_counts(
    src: np.ndarray, dst: np.ndarray, start_us: np.ndarray, work_us: np.ndarray
) -> tuple[int, int]:
    """Estimated epochs and flow-epochs: flows end when both their NICs have served them."""
    end_us = np.maximum(
        _fifo_finish_us(src, dst, start_us, work_us), _fifo_finish_us(dst, src, start_us, work_us)
    )
    events = np.unique(np.concatenate([start_us, end_us]))
    spans = np.searchsorted(events, end_us) - np.searchsorted(events, start_us)
    return int(events.size), int(np.maximum(spans, 1).sum())


def estimate_run(
    topology: Topology,
    transport: TransportConfig,
    src: np.ndarray,
    dst: np.ndarray,
    start_us: np.ndarray,
    size_bytes: np.ndarray,
) -> RunEstimate:
    """Predict the memory and time of :func:`sim.fabric.flows.simulate_flows`, cheaply.

    Memory: every sub-flow's route entries are counted exactly from its flow
    class (same leaf, same pod, across pods) and the routing mode (one path,
    adaptive chunks, or spraying over every path), at :data:`_BYTES_PER_ENTRY`
    each; adaptive routing also holds a wave of candidate-path loads.

    Time: each epoch costs a fixed part (and a part per link of the
    topology) plus a part per active sub-flow, measured per transport at the
    lower end of what was seen, so that only clearly too big runs are
    refused; RoCE with DCQCN adds the burst transients traced at each start.
    If even every sub-flow active in every epoch (one epoch per start and per
    end) fits the budget, that upper bound is the estimate. Otherwise each
    flow's end is estimated as the time both its NICs have served everything
    queued before it, first come first served, flows with the same peer,
    start and size ending together, and epochs and flow-epochs are counted
    from those ends. Against measured runs on a k = 4 fat tree, flow-epochs
    come out exact for random traffic all at once and for random-size
    incasts, 0.6 to 0.9 of the measured count for Poisson and staggered
    arrivals on the ideal and InfiniBand transports, but only 0.13 for
    heavily overlapping staggered RoCE traffic and 0.3 for an equal-size
    permutation all at once (ECMP collisions keep flows active longer than
    their NICs alone would), and 8 times too many for an equal-size incast
    (fair sharing ends together flows that first come first served orders).
    Network contention is not modelled: the estimate refuses what cannot
    finish, it does not promise what will.

    Args:
        topology: The compiled topology.
        transport: The ``transport`` section of the fabric.
        src: Source host per flow.
        dst: Destination host per flow.
        start_us: Start time per flow.
        size_bytes: Size per flow.

    Returns:
        The estimate; :meth:`RunEstimate.problem` says whether it is too big.
    """
    n_flows = int(src.size)
    lay = topology.layout
    a_n, j_n = lay.aggs_per_pod, lay.cores_per_plane
    queue_pairs = int(transport.qps_per_connection) if isinstance(transport, RoceTransport) else 1
    chunks = 1
    if isinstance(transport, InfinibandTransport) and transport.adaptive_routing:
        chunks = int(transport.adaptive_chunks)
    rate_model = transport.rate_model
    mode = rate_model if rate_model in ("backpressure", "ideal") else "roce"
    classes = np.bincount(flow_class(topology, src, dst), minlength=4) * queue_pairs
    if rate_model == "ideal":  # sprayed over every equal-cost path
        per_class = {CLASS_SAME_POD: 2 + 2 * a_n, CLASS_CROSS_POD: 2 + 2 * a_n + 2 * a_n * j_n}
    else:
        per_class = {
            CLASS_SAME_POD: 2 + 2 * min(chunks, a_n),
            CLASS_CROSS_POD: 2 + 2 * min(chunks, a_n) + 2 * min(chunks, a_n * j_n),
        }
    per_class[CLASS_LOCAL], per_class[CLASS_SAME_LEAF] = 0, 2
    entries = int(sum(int(classes[c]) * per_class[c] for c in per_class))
    sub_flows = n_flows * queue_pairs
    memory = _BYTES_PER_ENTRY * entries + _BYTES_PER_SUBFLOW * sub_flows
    seconds = 0.0
    if chunks > 1:
        choosing = int(classes[CLASS_SAME_POD] + classes[CLASS_CROSS_POD]) * chunks
        paths = a_n * max(j_n, 1)
        wave = min(choosing, lay.n_leaves)
        memory += 3 * 8 * sub_flows * chunks * 6 + 6 * 8 * wave * paths
        seconds += _SECONDS_PER_PATH_CHOICE * choosing * paths

    starts = int(np.unique(start_us).size) if n_flows else 0
    per_epoch = _SECONDS_PER_EPOCH[mode] + _SECONDS_PER_LINK_EPOCH * topology.n_links
    per_flow_epoch = _SECONDS_PER_FLOW_EPOCH[mode]
    bursts = _SECONDS_PER_BURST * starts if rate_model == "dcqcn" else 0.0
    # Every sub-flow in every epoch: if even that fits, there is nothing to estimate.
    epochs = starts + sub_flows
    flow_epochs = sub_flows * epochs
    if seconds + bursts + epochs * per_epoch + flow_epochs * per_flow_epoch > MAX_RUN_SECONDS:
        nic_gbps = np.asarray(topology.nic_gbps, dtype=np.float64)
        work_us = np.asarray(size_bytes, dtype=np.float64) * 8.0 / (nic_gbps[src] * 1e3)
        epochs, flow_epochs = _epoch_counts(
            np.asarray(src), np.asarray(dst), np.asarray(start_us, dtype=np.float64), work_us
        )
        flow_epochs *= queue_pairs
    seconds += bursts + epochs * per_epoch + flow_epochs * per_flow_epoch
    return RunEstimate(
        n_flows, sub_flows, entries, int(epochs), int(flow_epochs), float(memory), seconds
    )

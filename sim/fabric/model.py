"""The seam between the marketplace and the fabric: one solve per epoch.

Marketplace events are seconds to days apart; the fabric settles in micro- to
milliseconds. So whenever the set of running jobs in a cluster changes, the
marketplace hands the cluster's fabric model every running placement at once
and gets back each job's slowdown (actual / ideal iteration time) for the
epoch that starts now. Jobs then progress at ``1 / slowdown`` until the next
change. Models cache solutions of traffic mixes they have seen.

The fabric models themselves, by the scenario's ``fabric.kind``, are in
:data:`sim.fabric.fabrics.FABRICS`: :class:`IdealFabric` here and
:class:`sim.fabric.network.NetworkFabric`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from sim.scenario.fabric import IdealFabricConfig


@dataclass(frozen=True)
class RunningPlacement:
    """A running job as the fabric sees it: who, on which nodes, sending what.

    Attributes:
        job_id: The job.
        tenant: Its tenant.
        contract: Its contract class.
        nodes: Cluster node indices it holds.
        counts: GPUs it holds on each of those nodes.
        traffic: What it sends each iteration (a
            :class:`sim.workloads.training.TrainingSpec`), or None for a job
            whose traffic is not modelled.
        slots: Which GPUs of its nodes it holds: ``counts[0]`` slots of
            ``nodes[0]``, then the next node's, ...; None for the first
            ``counts[i]`` GPUs of each node.
    """

    job_id: int
    tenant: str
    contract: str
    nodes: np.ndarray
    counts: np.ndarray
    traffic: Any = None
    slots: np.ndarray | None = None


@dataclass(frozen=True)
class JobNetwork:
    """What one epoch's fabric does to one job.

    Attributes:
        slowdown: Iteration time over the ideal iteration time (>= 1).
        pfc_pause_fraction: Mean fraction of time the links its flows cross
            are paused (None without PFC).
        ecn_mark_fraction: Fraction of its bytes that are ECN-marked (None
            without ECN).
        flow_slowdown_p99: P99 over its flows of ideal over actual rate.
        serving: For an inference replica whose GPUs span nodes, its
            tensor-parallel all-reduce times over the fabric
            (:class:`sim.workloads.inference.ServingNetwork`); None otherwise.
        collective_gbps: Per collective of its plan, ``(name, kind, Gb/s)``:
            the rate of its slowest flow, which for a ring is nccl-tests' bus
            bandwidth less the latency term
            (:meth:`sim.workloads.training.TrainingPlan.collective_gbps`).
        credit_stall_fraction: InfiniBand's ``pfc_pause_fraction``: mean
            fraction of time the links its flows cross are stalled waiting for
            credits (None without credit-based flow control).
    """

    slowdown: float
    pfc_pause_fraction: float | None = None
    ecn_mark_fraction: float | None = None
    flow_slowdown_p99: float = 1.0
    serving: Any = None
    collective_gbps: tuple[tuple[str, str, float], ...] = ()
    credit_stall_fraction: float | None = None


TOP_PORTS = 20
"""How many of the most paused ports an epoch's solution keeps for the record."""


@dataclass(frozen=True)
class EpochSolution:
    """What the fabric says about one epoch of a cluster.

    Attributes:
        jobs: Per job id, what the fabric does to it; a job left out runs at
            its ideal speed.
        pfc_pause_fraction: Fraction of time busy fabric links are paused, or
            None where the fabric has no PFC.
        ecn_mark_fraction: Fraction of bytes ECN-marked, or None.
        busy_links: Links carrying traffic (the weight of the pause fraction).
        carried_gbps: Traffic the fabric carries (the weight of the marks).
        tier_busy_links: Per link tier of the topology, its links carrying traffic.
        tier_paused_links: Per link tier, the pause fractions of those links, summed
            (over ``tier_busy_links``: the tier's mean pause fraction).
        top_ports: The most paused links (egress ports): ``(link, pause fraction)``,
            most paused first, at most :data:`TOP_PORTS` of them.
        credit_stall_fraction: InfiniBand's ``pfc_pause_fraction``: fraction of
            time busy links are stalled waiting for credits, or None where the
            fabric has no credit-based flow control. The tier and port figures
            above are then credit stalls.
        tier_names: The topology's link tier names (what ``tier_*`` count by),
            given with credit stalls.
    """

    jobs: dict[int, JobNetwork] = field(default_factory=dict)
    pfc_pause_fraction: float | None = None
    ecn_mark_fraction: float | None = None
    busy_links: int = 0
    carried_gbps: float = 0.0
    tier_busy_links: tuple[int, ...] = ()
    tier_paused_links: tuple[float, ...] = ()
    top_ports: tuple[tuple[int, float], ...] = ()
    credit_stall_fraction: float | None = None
    tier_names: tuple[str, ...] = ()

    @property
    def slowdown(self) -> dict[int, float]:
        """Iteration slowdown per job id."""
        return {job_id: state.slowdown for job_id, state in self.jobs.items()}


class FabricModel(Protocol):
    """Anything that can solve a cluster's fabric for a set of placements."""

    def solve(self, placements: Sequence[RunningPlacement]) -> EpochSolution:
        """Solve one epoch for all the cluster's running placements together."""
        ...

    def node_domains(self, nodes: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Per node, its rack and pod numbers; None if the fabric has no such structure."""
        ...


class IdealFabric:
    """A fabric with infinite capacity and no latency: nothing is ever slowed."""

    def __init__(self, config: IdealFabricConfig | None = None, **options: Any):
        """Takes a network fabric's options (cluster layout, traffic policies) and ignores them."""
        self.config = config

    def node_domains(self, nodes: int) -> tuple[np.ndarray, np.ndarray] | None:
        """No racks or pods: every node is as close to every other."""
        return None

    def solve(self, placements: Sequence[RunningPlacement]) -> EpochSolution:
        """Every job runs at its ideal speed."""
        return EpochSolution()

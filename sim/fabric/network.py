"""A cluster's network inside the marketplace: every running job's collectives, solved together.

Each running training job turns its parallelism layout, on the GPUs it was
placed on, into inter-node flows (:mod:`sim.workloads.training`). Whenever the
running set changes, the marketplace hands the cluster's :class:`NetworkFabric`
every placement at once (one *fabric epoch*): the flows of all jobs are routed,
stacked into one sparse incidence matrix and allocated by the cluster's
transport in one call (:class:`sim.fabric.transport.Transport`), in the steady
state of long-lived collectives. Each job's flow rates give its iteration
time; over the time the same job needs alone on a non-blocking fabric (only
its own NICs limit it), that is its iteration slowdown.

Routing follows the transport: RoCE hashes every queue pair (ECMP);
InfiniBand with adaptive routing spreads each flow evenly over its equal-cost
paths, the steady state that per-packet adaptive routing approaches (the flow
simulator places each flow chunk by chunk instead, which is too slow at
cluster scale); without adaptive routing it routes by destination (d-mod-k).

Routes and plans are built once per job and kept while it runs. Jobs that
share no link cannot affect each other, so each group of link-sharing jobs is
solved on its own, and solutions are kept for the last mixes seen: a change in
one pod does not re-solve another, and a mix that recurs is not solved again.

Inference replicas whose GPUs span nodes send their tensor-parallel
all-reduces over the fabric: a decode step's activations for the whole batch,
in a ring over the replica's GPUs. They are solved with everyone else; what
they get back is not a slowdown (they do not iterate towards an end) but the
time their all-reduces take: the slowest hop's rate, and per ring step the
hop latency plus the mean wait a message meets in the queues and pauses of
its path (:class:`sim.workloads.inference.ServingNetwork`).

Known limit: every job's collectives are taken to be on the wire at the same
time, which is the worst case for contention between jobs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from sim.fabric.backpressure import Crossings, link_crossings
from sim.fabric.model import TOP_PORTS, EpochSolution, JobNetwork, RunningPlacement
from sim.fabric.routing import route
from sim.fabric.transport import NVLINK_GBPS, Transport, routing_args
from sim.fabric.trunks import Trunked, factor
from sim.workloads.inference import ServingNetwork, ServingSpec, serving_network
from sim.workloads.training import TrainingPlan, TrainingSpec, training_plan

__all__ = ["NetworkFabric"]

_SOLUTIONS_KEPT = 256
"""Solutions of this many distinct traffic mixes (of link-sharing job groups) are kept."""


@dataclass
class _JobTraffic:
    """A running job's plan and routes, built once per placement."""

    placement: RunningPlacement
    serial: int
    plan: TrainingPlan
    incidence: sp.csr_matrix
    paths: Trunked
    links: np.ndarray
    flow_of_subflow: np.ndarray
    ideal_rates_gbps: np.ndarray
    ideal_iteration_s: float
    crossings: Crossings | None


class NetworkFabric:
    """A cluster's modelled network, solved once per epoch for all its jobs.

    Args:
        config: The cluster's ``fabric`` section (kind ``network``): a
            topology and a transport.
        gpus_per_node: GPUs per node; GPU ``g`` of the cluster is host ``g``.
        accelerator: The cluster's accelerator, or each node's for a cluster
            that mixes them (its dense BF16 TFLOP/s set the compute time of an
            iteration; a job runs on nodes of one type).
        first_node: Global index of the cluster's first node in the inventory.
        rate_limits_gbps: Per tenant, the rate each of its GPUs may send at.
        high_priority: Tenants whose traffic has a class of its own, served first,
            with its own queues and PFC.
        low_min_share: Share of each link the other traffic keeps (0 to 1).
    """

    def __init__(
        self,
        config: Any,
        gpus_per_node: int = 8,
        accelerator: str | Sequence[str] = "H100",
        first_node: int = 0,
        rate_limits_gbps: dict[str, float] | None = None,
        high_priority: Sequence[str] = (),
        low_min_share: float = 0.0,
    ):
        from sim.catalog import accelerator as lookup

        self.topology = config.build_topology()
        self.transport = Transport(config.transport, self.topology)
        self.gpus_per_node = gpus_per_node
        self.first_node = first_node
        names = [accelerator] if isinstance(accelerator, str) else list(accelerator)
        tflops = {name: lookup(name).tflops_bf16_dense for name in set(names)}
        self._node_tflops = np.array([tflops[name] for name in names])
        """Per node of the cluster (or one value for all), its dense BF16 TFLOP/s."""
        self.nic_gbps = self.transport.nic_gbps
        topo = self.topology
        # One collective step crosses at most every tier up and down.
        hops = 2 * (len(topo.tier_names) - 1) if len(topo.tier_names) > 1 else 2
        self.hop_latency_us = hops * (
            float(np.max(topo.prop_delay_us)) + topo.mtu_bytes * 8.0 / (self.nic_gbps * 1e3)
        )
        transport = config.transport
        if transport.kind == "infiniband" and transport.adaptive_routing:
            self._routing: dict[str, Any] = {"mode": "spray"}
        else:
            self._routing = routing_args(transport, topo, np.zeros(0))
        self.has_pfc = self.transport.has_pfc
        self.has_ecn = self.transport.has_ecn
        self._jobs: dict[int, _JobTraffic] = {}
        self._serials = itertools.count()
        self._solutions: OrderedDict[tuple[int, ...], EpochSolution] = OrderedDict()
        self.solves = 0
        self.high_priority = frozenset(high_priority)
        """Tenants whose traffic is in the high-priority class (see :meth:`_solve`)."""
        self.low_min_share = low_min_share
        """Share of a link the low class keeps when both classes use it."""
        self.rate_limits_gbps = dict(rate_limits_gbps or {})
        """Per tenant, the rate each of its GPUs may send at (see :meth:`_shaped`)."""
        self._shareable = (topo.link_src >= topo.n_hosts) & (topo.link_dst >= topo.n_hosts)
        """Links sub-flows may share as a trunk: all but NIC links (:mod:`sim.fabric.trunks`)."""
        nic = topo.link_is_up & (topo.link_src < topo.n_hosts)
        self._nic_uplinks = np.full(topo.n_hosts, -1, dtype=np.int64)
        self._nic_uplinks[topo.link_src[nic]] = np.flatnonzero(nic)
        if self.rate_limits_gbps and np.bincount(topo.link_src[nic]).max(initial=0) > 1:
            raise ValueError("rate limits shape one NIC link per GPU; this topology has more")

    def node_domains(self, nodes: int) -> tuple[np.ndarray, np.ndarray]:
        """Per node of the cluster, its rack and its pod in this topology.

        A node's rack is the lowest leaf switch its GPUs attach to (on a
        rail-optimised fabric, the nodes of one rail group share it), and its
        pod that leaf's pod: nodes of one pod reach each other without
        crossing the top tier.

        Args:
            nodes: Nodes in the cluster.
        """
        layout = self.topology.layout
        leaf = layout.leaf_of_host[: nodes * self.gpus_per_node].reshape(nodes, -1).min(axis=1)
        return leaf.astype(np.int64), layout.pod_of_leaf(leaf).astype(np.int64)

    # ------------------------------------------------------------------ per job

    def _gpus(self, placement: RunningPlacement) -> np.ndarray:
        """The job's GPUs (cluster host ids) in rank order: node by node."""
        nodes = np.asarray(placement.nodes, dtype=np.int64) - self.first_node
        counts = np.asarray(placement.counts, dtype=np.int64)
        starts = np.repeat(nodes * self.gpus_per_node, counts)
        if placement.slots is not None:
            return starts + np.asarray(placement.slots, dtype=np.int64)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return starts + within

    def _tflops(self, placement: RunningPlacement) -> float:
        """The dense BF16 TFLOP/s of the job's accelerators (a job holds nodes of one type)."""
        node = int(placement.nodes[0]) - self.first_node
        return float(self._node_tflops[min(node, self._node_tflops.size - 1)])

    def _job(self, placement: RunningPlacement) -> _JobTraffic:
        cached = self._jobs.get(placement.job_id)
        if cached is not None and cached.placement is placement:
            return cached
        traffic = placement.traffic
        if isinstance(traffic, ServingSpec):
            # A decode step all-reduces one token's activations per request in the batch.
            traffic = TrainingSpec(
                model=dataclasses.replace(traffic.model, seq_len=1),
                tp=traffic.tp,
                microbatches=1,
                microbatch_sequences=traffic.max_batch,
            )
        plan = training_plan(
            traffic,
            self._gpus(placement),
            self.gpus_per_node,
            self._tflops(placement),
            self.nic_gbps,
            NVLINK_GBPS,
            self.hop_latency_us,
        )
        if plan.src.size:
            routes = route(self.topology, plan.src, plan.dst, **self._routing)
            incidence = routes.incidence.tocsr()
            flow_of_subflow = routes.flow_of_subflow
        else:
            incidence = sp.csr_matrix((0, self.topology.n_links))
            flow_of_subflow = np.zeros(0, dtype=np.int64)
        ideal = plan.ideal_rates_gbps()
        # Sprayed routes share trunks (one per leaf pair); single paths rarely coincide.
        paths = (
            factor(incidence, self._shareable)
            if self._routing["mode"] == "spray"
            else Trunked.of(incidence)
        )
        job = _JobTraffic(
            placement,
            next(self._serials),
            plan,
            incidence,
            paths,
            np.flatnonzero(np.bincount(incidence.indices, minlength=incidence.shape[1])),
            flow_of_subflow,
            ideal,
            plan.iteration_s(ideal),
            link_crossings(paths, self.topology) if self.transport.backpressure else None,
        )
        self._jobs[placement.job_id] = job
        return job

    # ------------------------------------------------------------------ the epoch

    def solve(self, placements: Sequence[RunningPlacement]) -> EpochSolution:
        """Route and solve every running job's traffic together, once.

        Args:
            placements: Every running placement of the cluster.

        Returns:
            Each modelled job's slowdown and congestion, and the fabric's.
        """
        modelled = sorted((p for p in placements if p.traffic is not None), key=lambda p: p.job_id)
        running = {p.job_id for p in modelled}
        for job_id in [j for j in self._jobs if j not in running]:
            del self._jobs[job_id]
        jobs = [self._job(p) for p in modelled]
        return self._merge([self._component(group) for group in self._components(jobs)])

    def _merge(self, parts: list[EpochSolution]) -> EpochSolution:
        """Solutions of separate parts as one: pauses by busy link, marks by traffic."""
        states: dict[int, JobNetwork] = {}
        for part in parts:
            states.update(part.jobs)
        busy = sum(part.busy_links for part in parts)
        carried = sum(part.carried_gbps for part in parts)
        paused = sum(part.busy_links * (part.pfc_pause_fraction or 0.0) for part in parts)
        marked = sum(part.carried_gbps * (part.ecn_mark_fraction or 0.0) for part in parts)
        tiers = len(self.topology.tier_names)
        tier_busy, tier_paused = np.zeros(tiers, dtype=np.int64), np.zeros(tiers)
        for part in parts:
            if part.tier_busy_links:
                tier_busy += np.asarray(part.tier_busy_links)
                tier_paused += np.asarray(part.tier_paused_links)
        ports = sorted(
            (port for part in parts for port in part.top_ports), key=lambda p: (-p[1], p[0])
        )
        return EpochSolution(
            jobs=dict(sorted(states.items())),
            pfc_pause_fraction=(paused / busy if busy else 0.0) if self.has_pfc else None,
            ecn_mark_fraction=(marked / carried if carried else 0.0) if self.has_ecn else None,
            busy_links=busy,
            carried_gbps=carried,
            tier_busy_links=tuple(int(n) for n in tier_busy) if self.has_pfc else (),
            tier_paused_links=tuple(float(x) for x in tier_paused) if self.has_pfc else (),
            top_ports=tuple(ports[:TOP_PORTS]),
        )

    @staticmethod
    def _components(jobs: list[_JobTraffic]) -> list[list[_JobTraffic]]:
        """Jobs in groups that share no link: each group is solved on its own.

        Max-min shares, back-pressure and ECN marks only pass between flows
        through links they share, so solving the groups apart is exact, and a
        change in one group leaves the others' solutions (cached) untouched.
        """
        if not jobs:
            return []
        sizes = [job.links.size for job in jobs]
        rows = np.repeat(np.arange(len(jobs)), sizes)
        cols = np.concatenate([job.links for job in jobs])
        n_links = int(cols.max()) + 1 if cols.size else 1
        uses = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(len(jobs), n_links))
        _, label = connected_components(uses @ uses.T, directed=False)
        groups: dict[int, list[_JobTraffic]] = {}
        for job, group in zip(jobs, label.tolist(), strict=True):
            groups.setdefault(group, []).append(job)
        # Groups in order of their first job (jobs come sorted by id).
        return list(groups.values())

    def _component(self, jobs: list[_JobTraffic]) -> EpochSolution:
        """One group's solution, from the cache if this mix was seen."""
        key = tuple(job.serial for job in jobs)
        cached = self._solutions.get(key)
        if cached is not None:
            self._solutions.move_to_end(key)
            return cached
        solution = self._solve(jobs)
        self._solutions[key] = solution
        if len(self._solutions) > _SOLUTIONS_KEPT:
            self._solutions.popitem(last=False)
        return solution

    def _serving(
        self, job: _JobTraffic, flow_rates: np.ndarray, wait_us: np.ndarray
    ) -> ServingNetwork:
        """An inference replica's all-reduce times on this epoch's rates and queues."""
        spec = job.placement.traffic
        ring = next(c for c in job.plan.collectives if c.name == "tp")
        per_sub = np.asarray(job.incidence @ wait_us).ravel()
        qps = np.bincount(job.flow_of_subflow, minlength=job.plan.src.size)
        per_flow = np.bincount(job.flow_of_subflow, weights=per_sub, minlength=qps.size)
        per_flow = per_flow / np.maximum(qps, 1)
        slowest_wait_us = float(per_flow[ring.flow_index].max()) if ring.flow_index.size else 0.0
        step_latency_s = ring.latency_s + slowest_wait_us * 1e-6
        return serving_network(spec, ring.min_rate_gbps(flow_rates), step_latency_s)

    def _shaped(self, jobs: list[_JobTraffic]) -> np.ndarray | None:
        """Link capacities with rate-limited tenants' GPUs shaped, or None if none is.

        A tenant's rate limit shapes each of its GPUs' NICs, as a NIC's rate
        limiter does: the GPU's links up into the fabric carry at most the limit
        together, shared by its flows as the fabric shares any link. A GPU
        belongs to one job at a time, so shaping its links touches no one else.
        """
        limited = [j for j in jobs if j.placement.tenant in self.rate_limits_gbps]
        if not limited:
            return None
        capacity = self.transport.capacity.copy()
        for job in limited:
            limit = self.rate_limits_gbps[job.placement.tenant]
            hosts = np.unique(job.plan.src)
            up = self._nic_uplinks[hosts]
            up = up[up >= 0]
            capacity[up] = np.minimum(capacity[up], limit)
        return capacity

    def _solve(self, jobs: list[_JobTraffic]) -> EpochSolution:
        with_flows = [job for job in jobs if job.incidence.shape[0]]
        if not with_flows:
            return EpochSolution(jobs={job.placement.job_id: JobNetwork(1.0) for job in jobs})
        self.solves += 1
        capacity = self._shaped(with_flows)
        high = [j for j in with_flows if j.placement.tenant in self.high_priority]
        if not high or len(high) == len(with_flows):
            solution, _ = self._solve_class(jobs, with_flows, capacity)
            return solution
        # Two traffic classes, each with its own queues and its own PFC: the high
        # class is served first, up to all but the low class's guaranteed share of a
        # link the low class also uses; the low class gets what the high one leaves.
        low = [j for j in with_flows if j.placement.tenant not in self.high_priority]
        capacity = self.transport.capacity if capacity is None else capacity
        used_by_low = np.zeros(capacity.size, dtype=bool)
        for job in low:
            used_by_low[job.links] = True
        share = self.low_min_share
        high_capacity = np.where(used_by_low, capacity * (1.0 - share), capacity)
        without = [j for j in jobs if not j.incidence.shape[0]]
        first, high_load = self._solve_class(without + high, high, high_capacity)
        second, _ = self._solve_class([], low, np.maximum(capacity - high_load, 0.0))
        return self._merge([first, second])

    def _solve_class(
        self,
        jobs: list[_JobTraffic],
        with_flows: list[_JobTraffic],
        capacity: np.ndarray | None,
    ) -> tuple[EpochSolution, np.ndarray]:
        """One traffic class's solution on these link capacities, and its load per link."""
        states = {job.placement.job_id: JobNetwork(1.0) for job in jobs}
        paths = Trunked.stack([job.paths for job in with_flows])
        crossings = None
        if self.transport.backpressure:
            crossings = Crossings.stack(
                [job.crossings for job in with_flows],
                [job.paths.shape[0] for job in with_flows],
                [job.paths.n_trunks for job in with_flows],
            )
        epoch = self.transport.allocate(paths, crossings=crossings, capacity_gbps=capacity)
        rates = epoch.rates_gbps
        load = paths.link_sum(rates)
        busy = load > 0
        pause = epoch.pause_fraction
        marking = epoch.marking if epoch.marking is not None else np.zeros(load.size)
        # The mean wait of a message at each port: its queue, and a pause met
        # with its probability and waited out for half an episode on average.
        wait_us = epoch.queue_us + pause * epoch.pause_episode_us / 2.0
        start = 0
        for job in with_flows:
            rows = job.incidence.shape[0]
            sub_rates = rates[start : start + rows]
            start += rows
            flow_rates = np.bincount(
                job.flow_of_subflow, weights=sub_rates, minlength=job.plan.src.size
            )
            slowdown = max(job.plan.iteration_s(flow_rates) / job.ideal_iteration_s, 1.0)
            shares = job.incidence.data
            links = job.incidence.indices
            with np.errstate(divide="ignore", invalid="ignore"):
                flow_slowdown = np.where(flow_rates > 0, job.ideal_rates_gbps / flow_rates, np.inf)
            # ECN: the marks a sub-flow's bytes collect along its path, weighted by its rate.
            per_sub_mark = np.asarray(job.incidence @ marking).ravel()
            serving = None
            if isinstance(job.placement.traffic, ServingSpec):
                serving = self._serving(job, flow_rates, wait_us)
                slowdown = 1.0
            states[job.placement.job_id] = JobNetwork(
                slowdown=slowdown,
                serving=serving,
                pfc_pause_fraction=float(np.average(pause[links], weights=shares))
                if self.has_pfc
                else None,
                ecn_mark_fraction=float(
                    np.average(np.minimum(per_sub_mark, 1.0), weights=sub_rates)
                )
                if self.has_ecn and sub_rates.sum() > 0
                else (0.0 if self.has_ecn else None),
                flow_slowdown_p99=_p99(np.maximum(flow_slowdown, 1.0)),
            )
        total = float(load.sum())
        tier_busy, tier_paused, top = (), (), ()
        if self.has_pfc:
            tier = self.topology.link_tier[busy]
            tiers = len(self.topology.tier_names)
            tier_busy = tuple(int(n) for n in np.bincount(tier, minlength=tiers))
            paused = np.bincount(tier, weights=pause[busy], minlength=tiers)
            tier_paused = tuple(float(x) for x in paused)
            links = np.flatnonzero(pause > 0)
            links = links[np.lexsort((links, -pause[links]))[:TOP_PORTS]]
            top = tuple((int(link), float(pause[link])) for link in links)
        solution = EpochSolution(
            jobs=states,
            pfc_pause_fraction=(float(pause[busy].mean()) if busy.any() else 0.0)
            if self.has_pfc
            else None,
            ecn_mark_fraction=epoch.marked_share if self.has_ecn else None,
            busy_links=int(busy.sum()),
            carried_gbps=total,
            tier_busy_links=tier_busy,
            tier_paused_links=tier_paused,
            top_ports=top,
        )
        return solution, load


def _p99(values: np.ndarray) -> float:
    """The P99 (linear interpolation); infinite where it falls among starved (infinite) ones."""
    with np.errstate(invalid="ignore"):
        q = float(np.quantile(values, 0.99))
    return math.inf if math.isnan(q) else q

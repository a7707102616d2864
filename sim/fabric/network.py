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

The collective library (:class:`sim.workloads.training.CollectiveLibrary`)
opens the scenario's ``collectives.channels_per_nic`` connections on every hop
of a ring or tree, each with the transport's queue pairs, and spreads a call's
bytes evenly over them. Each queue pair is routed on its own. Where the
transport shares max-min (DCQCN, the ideal fabric) or in proportion (lossy),
the queue pairs of one flow that land on the same path are one row of the
incidence matrix whose entries count them (a row's rate is that of each of
its queue pairs, and the fabric sees them as that many flows): a hop has at
most one row per distinct path, however many channels and queue pairs it has.
Under back-pressure a host's NIC serves rows in turn, so there every queue
pair on a single path (RoCE with PFC and no DCQCN) is a row of its own, and a
sprayed flow (InfiniBand adaptive routing) stays one row for all its queue
pairs (see :meth:`NetworkFabric._queue_pair_rows`). A flow moves at its queue
pairs times the rate of its slowest one (equal messages in turn: the slowest
finishes last).

What the senders ask for is a fluid steady state over many calls. A
channel's ring is held to the pace of its slowest hop by NCCL's buffer slots,
and a channel that ends its share of a call first waits for the others before
the next call, so on average every queue pair of a collective moves at the
collective's pace, and the capacity a fast channel leaves is what the slow
ones use. Each job's pace is found once per placement, on its own: its flows
at their ideal rates (each NIC serving its queue pairs in turn), every
collective slowed by the most loaded link its flows cross (that link's
capacity over the job's ideal load on it, at most 1). Each queue pair then
asks for its ideal rate times its collective's pace, so a job alone never
asks a link for more than it carries, whichever the transport: its own ECMP
collisions cost it its pace, and nothing more. Where jobs together ask a
link for more than it carries, the transport decides as it does for any
traffic (max-min shares with DCQCN, pauses that spread hop by hop with PFC,
drops when lossy). Not modelled: the start of each call, when every channel
pushes at once before the fast ones finish (without congestion control, PFC
then pauses NICs behind a collided uplink and a call takes longer than its
pace says), and a job slowed by a neighbour still asks for the pace it keeps
alone.

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

from sim.fabric.link_pairs import Crossings, link_crossings
from sim.fabric.model import TOP_PORTS, EpochSolution, JobNetwork, RunningPlacement
from sim.fabric.routing import route
from sim.fabric.transport import NVLINK_GBPS, Transport
from sim.fabric.trunks import Trunked, factor
from sim.scenario.fabric import NetworkFabricConfig
from sim.workloads.inference import ServingNetwork, ServingSpec, serving_network
from sim.workloads.training import CollectiveLibrary, TrainingPlan, TrainingSpec, training_plan

__all__ = ["NetworkFabric"]

_SOLUTIONS_KEPT = 256
"""Solutions of at least this many distinct traffic mixes (of link-sharing job groups) are
kept, and of twice as many as the groups of the latest epoch where there are more."""


@dataclass
class _JobTraffic:
    """A running job's plan and routes, built once per placement.

    Attributes:
        placement: The placement.
        serial: A number no other placement of this fabric had.
        plan: Its flows and collectives.
        incidence: Rows x links: each row some queue pairs of one flow on one
            path (or one spread), entries ``row_scale`` times the share of
            the path on the link. A row's rate times ``row_scale`` is what its
            queue pairs carry together.
        paths: ``incidence`` as own links and trunks.
        links: The links it crosses.
        row_flow: Per row, its flow (rows of a flow are consecutive).
        row_count: Per row, its queue pairs.
        row_scale: Per row, its count where the transport shares per queue
            pair (the row's rate is each queue pair's), else 1 (see
            :meth:`NetworkFabric._queue_pair_rows`).
        demand_gbps: Per row, what it asks for: its queue pairs' ideal rates
            times their collective's pace, over ``row_scale``.
        ideal_rates_gbps: Per flow, its rate alone on a non-blocking fabric.
        ideal_iteration_s: Its iteration time at those rates.
        crossings: Its link crossings, for back-pressure.
    """

    placement: RunningPlacement
    serial: int
    plan: TrainingPlan
    incidence: sp.csr_matrix
    paths: Trunked
    links: np.ndarray
    row_flow: np.ndarray
    row_count: np.ndarray
    row_scale: np.ndarray
    demand_gbps: np.ndarray
    ideal_rates_gbps: np.ndarray
    ideal_iteration_s: float
    crossings: Crossings | None

    def queue_pair_rates_gbps(self, row_rates_gbps: np.ndarray) -> np.ndarray:
        """Per row, the rate of each of its queue pairs."""
        return row_rates_gbps * self.row_scale / self.row_count

    def flow_rates_gbps(self, row_rates_gbps: np.ndarray) -> np.ndarray:
        """Per flow, its queue pairs times the rate of its slowest one, from its rows' rates."""
        slowest = np.full(self.plan.n_flows, np.inf)
        np.minimum.at(slowest, self.row_flow, self.queue_pair_rates_gbps(row_rates_gbps))
        return slowest * self.plan.queue_pairs

    def per_queue_pair(self, per_link: np.ndarray) -> np.ndarray:
        """Per row, the sum of a per-link value along the path of one of its queue pairs."""
        return np.asarray(self.incidence @ per_link).ravel() / self.row_scale


class NetworkFabric:
    """A cluster's modelled network, solved once per epoch for all its jobs.

    Args:
        config: The cluster's ``fabric`` section (kind ``network``,
            :class:`sim.scenario.fabric.NetworkFabricConfig`): a topology, a
            transport and the collective library's settings.
        gpus_per_node: GPUs per node; GPU ``g`` of the cluster is host ``g``.
        accelerator: The cluster's accelerator, or each node's for a cluster
            that mixes them (its dense BF16 TFLOP/s set the compute time of an
            iteration; a job runs on nodes of one type).
        first_node: Global index of the cluster's first node in the inventory.
        rate_limits_gbps: Per tenant, the rate each of its GPUs may send at (the
            isolation section's ``rate_limits_gbps()``).
        high_priority: Tenants whose traffic has a class of its own, served first,
            with its own queues and PFC (its ``high_priority_tenants()``).
        low_min_share: Share of each link the other traffic keeps, 0 to 1 (its
            ``low_priority_share()``).

    Attributes:
        library: The collective library's channels and queue pairs (the
            config's ``collectives`` and the transport's queue pairs).
    """

    def __init__(
        self,
        config: NetworkFabricConfig,
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
        self._routing: dict[str, Any] = config.transport.routing_args(np.zeros(0))
        if self._routing["mode"] == "adaptive":
            # The steady state per-packet adaptive routing approaches: an even spread.
            self._routing = {"mode": "spray"}
        self.library = CollectiveLibrary(
            channels_per_nic=config.collectives.channels_per_nic,
            qps_per_connection=int(self._routing.get("qps_per_connection", 1)),
        )
        self.has_pfc = self.transport.has_pfc
        self.has_ecn = self.transport.has_ecn
        self.has_credits = self.transport.backpressure and not self.has_pfc
        """Whether back-pressure is InfiniBand's credits: its pauses are credit stalls."""
        self._lossless = self.has_pfc or self.has_credits
        self._jobs: dict[int, _JobTraffic] = {}
        self._serials = itertools.count()
        self._solutions: OrderedDict[tuple[int, ...], EpochSolution] = OrderedDict()
        self._kept = _SOLUTIONS_KEPT
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
            self.library,
        )
        incidence, row_flow, row_count, row_scale = self._queue_pair_rows(plan)
        ideal = plan.ideal_rates_gbps()
        together = self._paced_demand(plan, placement, incidence, row_flow, row_count, row_scale)
        demand = together / row_scale
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
            row_flow,
            row_count,
            row_scale,
            demand,
            ideal,
            plan.iteration_s(ideal),
            link_crossings(paths, self.topology) if self.transport.backpressure else None,
        )
        self._jobs[placement.job_id] = job
        return job

    def _queue_pair_rows(
        self, plan: TrainingPlan
    ) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
        """Every queue pair of the plan's flows, routed, as rows of an incidence matrix.

        Connection ``j`` of flow ``f`` has the stable id ``f + n_flows * j``
        (its queue-pair numbers, hence its ECMP hashes, follow from it), so
        with one channel a flow keeps the paths it had as a single connection.

        How many rows: where the transport shares max-min per flow (DCQCN,
        the ideal fabric) or in proportion (lossy), the queue pairs of a flow
        on one path are one row whose entries count them, so the row rises as
        that many flows would: exact, and at most one row per distinct path.
        Under back-pressure a host's NIC serves its rows in turn, which a row
        of several queue pairs would distort, so on single paths (RoCE
        without DCQCN) every queue pair is a row of its own; a sprayed flow's
        queue pairs (InfiniBand adaptive routing) all take the same spread and
        stay one row of unit entries, which that NIC then serves as one: the
        model's one simplification, made because a row per queue pair would
        triple the cost of the 24K InfiniBand run.

        Returns:
            ``(incidence, row_flow, row_count, row_scale)`` (see
            :class:`_JobTraffic`); rows of a flow are consecutive.
        """
        n = plan.n_flows
        if not n:
            empty = np.zeros(0, dtype=np.int64)
            return sp.csr_matrix((0, self.topology.n_links)), empty, empty, np.zeros(0)
        counted = not self.transport.backpressure  # a row may stand for several queue pairs
        if self._routing["mode"] == "spray":
            # Every queue pair of a flow is spread alike: route the flow once.
            routes = route(self.topology, plan.src, plan.dst, **self._routing)
            count = plan.queue_pairs.astype(np.int64)
            scale = count.astype(np.float64) if counted else np.ones(n)
            rows = sp.csr_matrix(sp.diags(scale) @ routes.incidence.tocsr())
            rows.sort_indices()
            return rows, np.arange(n, dtype=np.int64), count, scale
        connections = plan.connections
        flow_of = np.repeat(np.arange(n, dtype=np.int64), connections)
        first_of_flow = np.repeat(np.cumsum(connections) - connections, connections)
        channel = np.arange(flow_of.size) - first_of_flow
        routes = route(
            self.topology,
            plan.src[flow_of],
            plan.dst[flow_of],
            connection_id=flow_of + n * channel,
            **self._routing,
        )
        flow = flow_of[routes.flow_of_subflow]
        matrix = routes.incidence.tocsr()
        if routes.mode == "adaptive" or not counted:
            first, count = np.arange(flow.size), np.ones(flow.size, dtype=np.int64)
        else:
            # One path per index: the queue pairs of a flow with the same index share it.
            key = flow * (int(routes.path_index.max(initial=0)) + 2) + routes.path_index + 1
            _, first, count = np.unique(key, return_index=True, return_counts=True)
        scale = count.astype(np.float64)
        rows = sp.csr_matrix(sp.diags(scale) @ matrix[first])
        rows.sort_indices()
        return rows, flow[first], count.astype(np.int64), scale

    def _paced_demand(
        self,
        plan: TrainingPlan,
        placement: RunningPlacement,
        incidence: sp.csr_matrix,
        row_flow: np.ndarray,
        row_count: np.ndarray,
        row_scale: np.ndarray,
    ) -> np.ndarray:
        """What the queue pairs of each row ask for together: their ideal rates times the pace.

        A collective's pace is the job's own steady state alone: every flow at
        its ideal rate (per queue pair, the flow's over its queue pairs), each
        collective slowed by the most loaded link its flows cross (capacity
        over the job's ideal load there, at most 1), the tenant's NIC rate
        limit included. A flow that serves several collectives keeps the
        fastest pace among them. So the job alone asks no link for more than
        it carries.
        """
        if not row_flow.size:
            return np.zeros(0)
        row_ideal = (plan.ideal_rates_gbps() / plan.queue_pairs)[row_flow] * row_count
        load = np.asarray(incidence.T @ (row_ideal / row_scale)).ravel()
        capacity = self.transport.capacity
        limit = self.rate_limits_gbps.get(placement.tenant)
        if limit is not None:
            capacity = capacity.copy()
            up = self._nic_uplinks[np.unique(plan.src)]
            up = up[up >= 0]
            capacity[up] = np.minimum(capacity[up], limit)
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(load > 0, capacity / load, np.inf)
        entry_row = np.repeat(np.arange(row_flow.size), np.diff(incidence.indptr))
        row_room = np.full(row_flow.size, np.inf)
        np.minimum.at(row_room, entry_row, room[incidence.indices])
        flow_room = np.full(plan.n_flows, np.inf)
        np.minimum.at(flow_room, row_flow, row_room)
        pace = np.zeros(plan.n_flows)
        for collective in plan.collectives:
            if collective.flow_index.size:
                own = min(1.0, float(flow_room[collective.flow_index].min()))
                np.maximum.at(pace, collective.flow_index, own)
        return pace[row_flow] * row_ideal

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
        groups = self._components(jobs)
        # Keep every group of this epoch: a cache smaller than the groups an epoch
        # visits in order would evict each one just before it is needed again.
        self._kept = max(_SOLUTIONS_KEPT, 2 * len(groups))
        return self._merge([self._component(group) for group in groups])

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
        stalled = sum(part.busy_links * (part.credit_stall_fraction or 0.0) for part in parts)
        return EpochSolution(
            jobs=dict(sorted(states.items())),
            pfc_pause_fraction=(paused / busy if busy else 0.0) if self.has_pfc else None,
            ecn_mark_fraction=(marked / carried if carried else 0.0) if self.has_ecn else None,
            busy_links=busy,
            carried_gbps=carried,
            tier_busy_links=tuple(int(n) for n in tier_busy) if self._lossless else (),
            tier_paused_links=tuple(float(x) for x in tier_paused) if self._lossless else (),
            top_ports=tuple(ports[:TOP_PORTS]),
            credit_stall_fraction=(stalled / busy if busy else 0.0) if self.has_credits else None,
            tier_names=tuple(self.topology.tier_names) if self.has_credits else (),
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
        while len(self._solutions) > self._kept:
            self._solutions.popitem(last=False)
        return solution

    def _serving(
        self, job: _JobTraffic, flow_rates: np.ndarray, wait_us: np.ndarray
    ) -> ServingNetwork:
        """An inference replica's all-reduce times on this epoch's rates and queues."""
        spec = job.placement.traffic
        ring = next(c for c in job.plan.collectives if c.name == "tp")
        # A message's mean wait over the flow's queue pairs.
        per_row = job.per_queue_pair(wait_us) * job.row_count
        per_flow = np.bincount(job.row_flow, weights=per_row, minlength=job.plan.n_flows)
        per_flow = per_flow / job.plan.queue_pairs
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
        demand = np.concatenate([job.demand_gbps for job in with_flows])
        epoch = self.transport.allocate(
            paths, demand=demand, crossings=crossings, capacity_gbps=capacity
        )
        rates = epoch.rates_gbps
        load = paths.link_sum(rates)
        # Per-link figures on the group's own links only (every other link is idle).
        crossed = np.flatnonzero(paths.crossed)
        busy = crossed[load[crossed] > 0]
        pause = epoch.pause_fraction
        marking = epoch.marking
        wait_us = None
        start = 0
        for job in with_flows:
            rows = job.incidence.shape[0]
            sub_rates = rates[start : start + rows]
            start += rows
            flow_rates = job.flow_rates_gbps(sub_rates)
            slowdown = max(job.plan.iteration_s(flow_rates) / job.ideal_iteration_s, 1.0)
            shares = job.incidence.data
            links = job.incidence.indices
            with np.errstate(divide="ignore", invalid="ignore"):
                flow_slowdown = np.where(flow_rates > 0, job.ideal_rates_gbps / flow_rates, np.inf)
            sent = sub_rates * job.row_scale
            serving = None
            if isinstance(job.placement.traffic, ServingSpec):
                if wait_us is None:
                    # The mean wait of a message at each port: its queue, and a pause
                    # met with its probability and waited out for half an episode.
                    wait_us = epoch.queue_us + pause * epoch.pause_episode_us / 2.0
                serving = self._serving(job, flow_rates, wait_us)
                slowdown = 1.0
            ecn = None
            if self.has_ecn:
                # The marks a queue pair's bytes collect along its path, weighted by its bytes.
                per_sub_mark = job.per_queue_pair(
                    marking if marking is not None else np.zeros(load.size)
                )
                ecn = (
                    float(np.average(np.minimum(per_sub_mark, 1.0), weights=sent))
                    if sent.sum() > 0
                    else 0.0
                )
            # PFC pauses or credit stalls of the links its flows cross, by their shares.
            held = float(np.average(pause[links], weights=shares)) if self._lossless else None
            states[job.placement.job_id] = JobNetwork(
                slowdown=slowdown,
                serving=serving,
                pfc_pause_fraction=held if self.has_pfc else None,
                ecn_mark_fraction=ecn,
                flow_slowdown_p99=_p99(np.maximum(flow_slowdown, 1.0)),
                collective_gbps=job.plan.collective_gbps(flow_rates),
                credit_stall_fraction=held if self.has_credits else None,
            )
        total = float(load.sum())
        tier_busy, tier_paused, top = (), (), ()
        if self._lossless:
            tier = self.topology.link_tier[busy]
            tiers = len(self.topology.tier_names)
            tier_busy = tuple(int(n) for n in np.bincount(tier, minlength=tiers))
            paused = np.bincount(tier, weights=pause[busy], minlength=tiers)
            tier_paused = tuple(float(x) for x in paused)
            links = crossed[pause[crossed] > 0]
            links = links[np.lexsort((links, -pause[links]))[:TOP_PORTS]]
            top = tuple((int(link), float(pause[link])) for link in links)
        solution = EpochSolution(
            jobs=states,
            pfc_pause_fraction=(float(pause[busy].mean()) if busy.size else 0.0)
            if self.has_pfc
            else None,
            credit_stall_fraction=(float(pause[busy].mean()) if busy.size else 0.0)
            if self.has_credits
            else None,
            ecn_mark_fraction=epoch.marked_share if self.has_ecn else None,
            busy_links=int(busy.size),
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

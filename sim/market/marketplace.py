"""The marketplace engine: queues, placements, preemption and fabric epochs.

Like a restaurant host with a waiting list and a seating chart. Guests arrive
in classes of precedence: the house's own (internal demand), reserved tables,
walk-ins (on-demand) and stand-by diners (spot) who may be asked to leave
after a short notice. Whenever a table frees or a guest arrives the host walks
the list in order, seating whoever fits (FIFO with EASY backfilling: a later
guest may jump ahead only if that does not delay the first guest who is
waiting).

The engine is event-driven and thin: SimPy supplies the clock and timed
callbacks; every decision is a plain method call. Each change of the running
set marks its cluster's fabric dirty; all changes at one instant are solved
together, once, as one fabric epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.fabric.model import EpochSolution, FabricModel, RunningPlacement
from sim.market.inventory import PARKED, SHARED, SPARE, ClusterInfo, Inventory
from sim.market.power import PowerLedger
from sim.metrics.accounting import Accounting
from sim.policies.admission import AcceptAll
from sim.policies.isolation import Shared
from sim.policies.placement import Proposal, fewest_domains
from sim.policies.preemption import Newest
from sim.workloads.jobs import Job

EPS_HOURS = 1e-9
SHARED_CLASSES = ("internal", "on_demand", "spot")
"""Queues of the shared pool, in order of precedence."""
RECLAIMS_SPOT = ("internal", "on_demand")
"""Classes whose waiting head job may preempt spot jobs."""


@dataclass(eq=False)
class Reservation:
    """A reserved contract's block of whole nodes in one cluster."""

    pool: int
    tenant: str
    cluster: ClusterInfo
    nodes_wanted: int
    start_hours: float
    end_hours: float
    nodes: list[int] = field(default_factory=list)
    queue: list[Job] = field(default_factory=list)
    active: bool = False
    accelerator: str | None = None
    """The type of the nodes it claims, in a cluster that mixes them (None: any)."""


@dataclass(eq=False)
class InferenceFleet:
    """The provider's own inference fleet: whole nodes, sized over time."""

    clusters: list[ClusterInfo]
    target_nodes: int = 0
    nodes: list[int] = field(default_factory=list)


class FabricLog:
    """Time integrals of each cluster's fabric state, epoch by epoch.

    A cluster's state holds from one of its epochs to the next: the pause
    fraction weighs by busy links and time, the ECN mark fraction by traffic
    and time.
    """

    def __init__(self, n_clusters: int):
        self._current: list[tuple[float, EpochSolution] | None] = [None] * n_clusters
        self.busy_link_hours = 0.0
        self.paused_link_hours = 0.0
        self.carried_gbps_hours = 0.0
        self.marked_gbps_hours = 0.0
        self.has_pfc = False
        self.has_ecn = False
        self.pauses: list[tuple[float, int, EpochSolution]] = []
        """Every change of a fabric with PFC: (hours, cluster, its solution from then on)."""

    def change(self, cluster: int, now: float, solution: EpochSolution) -> None:
        """The cluster's fabric state changes to ``solution`` at ``now``."""
        self._integrate(cluster, now)
        self._current[cluster] = (now, solution)
        if solution.pfc_pause_fraction is not None:
            if self.pauses and self.pauses[-1][:2] == (now, cluster):
                self.pauses[-1] = (now, cluster, solution)
            else:
                self.pauses.append((now, cluster, solution))
        self.has_pfc |= solution.pfc_pause_fraction is not None
        self.has_ecn |= solution.ecn_mark_fraction is not None

    def close(self, now: float) -> None:
        """Integrate every cluster up to ``now`` (the horizon)."""
        for cluster in range(len(self._current)):
            self._integrate(cluster, now)
            self._current[cluster] = None

    def _integrate(self, cluster: int, now: float) -> None:
        current = self._current[cluster]
        if current is None:
            return
        since, solution = current
        hours = now - since
        self.busy_link_hours += solution.busy_links * hours
        self.carried_gbps_hours += solution.carried_gbps * hours
        if solution.pfc_pause_fraction is not None:
            self.paused_link_hours += solution.pfc_pause_fraction * solution.busy_links * hours
        if solution.ecn_mark_fraction is not None:
            self.marked_gbps_hours += solution.ecn_mark_fraction * solution.carried_gbps * hours

    @property
    def pfc_pause_fraction(self) -> float | None:
        """Paused over busy link-hours (None if no fabric has PFC)."""
        if not self.has_pfc:
            return None
        return self.paused_link_hours / self.busy_link_hours if self.busy_link_hours else 0.0

    @property
    def ecn_mark_fraction(self) -> float | None:
        """Marked over carried traffic (None if no fabric marks ECN)."""
        if not self.has_ecn:
            return None
        return self.marked_gbps_hours / self.carried_gbps_hours if self.carried_gbps_hours else 0.0


class Marketplace:
    """Runs the provider's GPUs: who gets which nodes, when, and at what speed.

    Args:
        env: The SimPy environment (time in hours).
        inventory: The provider's nodes.
        placement: A placement policy (see :mod:`sim.policies.placement`).
        fabrics: One fabric model per cluster index.
        accounting: Where GPU-hours are integrated.
        backfill: Whether later jobs may start ahead of a blocked head job.
        backfill_depth: Queued jobs examined per scheduling pass.
        isolation: An isolation policy (see :mod:`sim.policies.isolation`);
            shared by default. Placement, backfilling behind a blocked job and
            the reclaiming of spot GPUs for it look only where it may run.
        preemption: Which spot jobs get notice first (see
            :mod:`sim.policies.preemption`); the newest by default.
        admission: Whether a shared-pool job may start (see
            :mod:`sim.policies.admission`); every job by default.
        power: The sites' power ledger (see :mod:`sim.market.power`): a site
            throttled by its cap slows the compute of every job on it. None:
            power is not modelled.
    """

    def __init__(
        self,
        env: simpy.Environment,
        inventory: Inventory,
        placement: object,
        fabrics: list[FabricModel],
        accounting: Accounting,
        backfill: bool = True,
        backfill_depth: int = 200,
        isolation: Shared | None = None,
        preemption: Newest | None = None,
        admission: AcceptAll | None = None,
        power: PowerLedger | None = None,
    ):
        self.env = env
        self.power = power
        self.inventory = inventory
        self.placement = placement
        self.isolation = isolation if isolation is not None else Shared()
        self.isolation.bind(inventory)
        self.preemption = preemption if preemption is not None else Newest()
        self.admission = admission if admission is not None else AcceptAll()
        self._candidates: dict[int, RunningPlacement] = {}
        """Placements admitted by a what-if fabric solve, kept for the job's start."""
        self.shared_usage: dict[str, int] = {}
        """GPUs of the shared pool each tenant's running jobs hold."""
        self.fabrics = fabrics
        self.accounting = accounting
        self.backfill = backfill
        self.backfill_depth = backfill_depth
        self.jobs: list[Job] = []
        self.queues: dict[str, list[Job]] = {cls: [] for cls in SHARED_CLASSES}
        self.running: dict[int, Job] = {}
        self.reservations: list[Reservation] = []
        self.inference: InferenceFleet | None = None
        self.pending_release = np.zeros(len(inventory.clusters), dtype=np.int64)
        self.preemptions = 0
        self.failures = 0
        """Failures that struck a node in service (see :meth:`fail`)."""
        self.epochs = 0
        n_clusters = len(inventory.clusters)
        self.cluster_speed = np.ones(n_clusters)
        """Per cluster, the speed of its compute (below 1 while a power cap throttles it)."""
        self.spares_wanted = np.zeros(n_clusters, dtype=np.int64)
        self._placements: list[dict[int, RunningPlacement]] = [{} for _ in range(n_clusters)]
        self._slowed: list[set[int]] = [set() for _ in range(n_clusters)]
        self._dirty: set[int] = set()
        self.fabric_log = FabricLog(n_clusters)
        self._epoch_pending = False
        self._scheduling = False
        self._again = False

    # ------------------------------------------------------------------ set-up

    def add_reservation(
        self,
        tenant: str,
        cluster: ClusterInfo,
        gpus: int,
        start_hours: float,
        end_hours: float,
        accelerator: str | None = None,
    ) -> Reservation:
        """Register a reserved block (of ``accelerator`` nodes in a cluster that mixes
        types); it claims its nodes at ``start_hours``."""
        reservation = Reservation(
            pool=len(self.reservations),
            tenant=tenant,
            cluster=cluster,
            nodes_wanted=gpus // cluster.gpus_per_node,
            start_hours=start_hours,
            end_hours=end_hours,
            accelerator=accelerator if cluster.node_types else None,
        )
        self.reservations.append(reservation)
        if start_hours <= self.env.now:
            self._activate(reservation)
        else:
            self._after(start_hours - self.env.now, lambda: self._activate(reservation))
        if math.isfinite(end_hours):
            self._after(end_hours - self.env.now, lambda: self._expire(reservation))
        return reservation

    def add_inference(self, clusters: list[ClusterInfo]) -> InferenceFleet:
        """Create the internal inference fleet (sized by :meth:`set_inference_target`)."""
        self.inference = InferenceFleet(clusters)
        return self.inference

    # ------------------------------------------------------------------ inputs

    def submit(self, job: Job) -> None:
        """A job arrives: queue it, try to start it, arm its patience."""
        now = self.env.now
        job.submit_hours = job.queued_since = now
        self.jobs.append(job)
        queue = self._queue_for(job)
        if queue is None:
            job.state = "rejected"
            job.end_hours = now
            return
        queue.append(job)
        self.schedule()
        if job.state == "queued":
            self._arm_patience(job)

    def set_inference_target(self, gpus: int) -> None:
        """Resize the internal inference fleet to ``gpus`` GPUs (whole nodes)."""
        fleet = self.inference
        gpn = fleet.clusters[0].gpus_per_node
        fleet.target_nodes = math.ceil(gpus / gpn)
        self.schedule()

    # ------------------------------------------------------------------ scheduling

    def schedule(self) -> None:
        """Serve every queue in order of precedence until nothing more fits."""
        if self._scheduling:
            self._again = True
            return
        self._scheduling = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._candidates.clear()
                self.inventory.clear_fences()
                for reservation in self.reservations:
                    if reservation.active:
                        self._claim_nodes(reservation)
                if self.inference is not None:
                    self._serve_inference()
                self._schedule_pool(SHARED, [self.queues[c] for c in SHARED_CLASSES])
                for reservation in self.reservations:
                    if reservation.active:
                        self._schedule_pool(reservation.pool, [reservation.queue])
        finally:
            self._scheduling = False
        self._update_shortfalls()

    def _schedule_pool(self, pool: int, queues: list[list[Job]]) -> None:
        """FIFO across ``queues`` in order, with EASY backfilling behind the first blocked job."""
        head: Job | None = None
        head_excluded: np.ndarray | None = None
        shadow: tuple[int | None, float, int] | None = None
        examined = 0
        clusters = self.inventory.clusters
        for queue in queues:
            if examined >= self.backfill_depth:
                return
            for job in queue[: self.backfill_depth - examined]:
                examined += 1
                if pool == SHARED and not self.admission.admits(
                    job.tenant, job.gpus, self.shared_usage
                ):
                    continue  # over its quota: it waits, and holds no one else back
                free = sum(self.inventory.free_gpus(clusters[i], pool) for i in job.clusters)
                proposal = self._propose(job, pool) if free >= job.gpus else None
                if proposal is not None and not self._fabric_admits(job, proposal):
                    continue  # predicted to push a tenant past its SLO: it waits
                if head is None:
                    if proposal is not None:
                        self._start(job, proposal)
                        continue
                    head = job
                    # Nodes the head may not use: jobs placed there never delay it.
                    head_excluded = self.isolation.excluded(job.tenant) if pool == SHARED else None
                    if job.contract in RECLAIMS_SPOT:
                        self._reclaim_for(job)
                    if not self.backfill:
                        return
                    continue
                if free == 0 and len(job.clusters) == len(clusters):
                    return
                if proposal is None:
                    continue
                if shadow is None:
                    shadow = self._shadow(head, pool)
                shadow_cluster, shadow_hours, extra = shadow
                ends_hours = self.env.now + job.work_hours - job.progress_hours
                if (
                    proposal.cluster != shadow_cluster
                    or ends_hours <= shadow_hours + EPS_HOURS
                    or (head_excluded is not None and head_excluded[proposal.nodes].all())
                ):
                    self._start(job, proposal)
                elif job.gpus <= extra:
                    self._start(job, proposal)
                    shadow = (shadow_cluster, shadow_hours, extra - job.gpus)

    def _fabric_admits(self, job: Job, proposal: Proposal) -> bool:
        """Whether the fabric, solved with the job placed so, keeps every SLO tenant's jobs
        within their slowdown SLO, or no slower than now (see ``FabricAware``)."""
        slo = self.admission.slowdown_slo
        if not slo or job.traffic is None:
            return True
        candidate = RunningPlacement(
            job.job_id,
            job.tenant,
            job.contract,
            proposal.nodes,
            proposal.counts,
            job.traffic,
            proposal.slots
            if proposal.slots is not None
            else self.inventory.lowest_free_slots(proposal.nodes, proposal.counts),
        )
        current = list(self._placements[proposal.cluster].values())
        predicted = self.fabrics[proposal.cluster].solve([*current, candidate])
        for job_id, state in predicted.jobs.items():
            other = self.running.get(job_id)
            tenant = job.tenant if job_id == job.job_id else other.tenant
            limit = slo.get(tenant)
            if limit is None or state.slowdown <= limit:
                continue
            now = other.network.slowdown if other is not None and other.network else 1.0
            if job_id == job.job_id or state.slowdown > now * (1 + 1e-9):
                return False
        self._candidates[job.job_id] = candidate
        return True

    def _propose(self, job: Job, pool: int) -> Proposal | None:
        clusters = [self.inventory.clusters[i] for i in job.clusters]
        waited = self.env.now - job.queued_since
        excluded = self.isolation.excluded(job.tenant) if pool == SHARED else None
        tp = getattr(job.traffic, "tp", 1)
        if not any(c.node_types for c in clusters):
            return self.placement.place(
                self.inventory, clusters, pool, job.gpus, waited, excluded, tp=tp
            )
        # A cluster mixes types: the job takes nodes of one, in the order it accepts them.
        kinds = list(job.speeds) if job.speeds else sorted(set(self.inventory.node_type))
        for kind in kinds:
            other = self.inventory.node_type != kind
            keep_off = other if excluded is None else (excluded | other)
            proposal = self.placement.place(
                self.inventory, clusters, pool, job.gpus, waited, keep_off, tp=tp
            )
            if proposal is not None:
                return proposal
        return None

    def _shadow(self, head: Job, pool: int) -> tuple[int | None, float, int]:
        """When the blocked head could start at the latest, where, and the GPUs to spare then.

        Returns ``(cluster, shadow_hours, extra_gpus)``; ``(None, now, 0)`` if
        no running job's end frees enough (then nothing may backfill).
        """
        best: tuple[int | None, float, int] = (None, self.env.now, 0)
        best_hours = math.inf
        now = self.env.now
        # Only GPUs where the head may run count (see the isolation policy).
        excluded = self.isolation.excluded(head.tenant) if pool == SHARED else None
        for index in head.clusters:
            cluster = self.inventory.clusters[index]
            if excluded is None:
                available = self.inventory.free_gpus(cluster, pool)
            else:
                available = self._free_for(cluster, excluded)
            ends = sorted(
                (self._expected_end(j, now), j.job_id, j.gpus)
                for j in self.running.values()
                if j.cluster == index
                and j.pool == pool
                and (excluded is None or not excluded[j.nodes].any())
            )
            for end_hours, _, gpus in ends:
                available += gpus
                if available >= head.gpus:
                    if end_hours < best_hours:
                        best_hours = end_hours
                        best = (index, end_hours, available - head.gpus)
                    break
        return best

    @staticmethod
    def _expected_end(job: Job, now: float) -> float:
        end = job.finish_time(now)
        return min(end, job.notice_until) if job.notice_until is not None else end

    # ------------------------------------------------------------------ whole-node claims

    def _take_whole_nodes(
        self,
        clusters: list[ClusterInfo],
        wanted: int,
        *,
        compact: bool,
        accelerator: str | None = None,
    ) -> list[int]:
        """Up to ``wanted`` whole free nodes of the shared pool, chosen to keep racks whole.

        Args:
            clusters: Where to look, in order.
            wanted: How many nodes.
            compact: Take whole racks in the fewest pods (a reserved block,
                whose jobs then share no rack with anyone else); otherwise
                fill the holes of partly taken racks and pods first (the
                inference fleet, which sends nothing over the fabric), leaving
                whole racks to jobs.
        """
        inventory = self.inventory
        taken: list[int] = []
        for cluster in clusters:
            need = wanted - len(taken)
            if need <= 0:
                break
            free = inventory.whole_free_nodes(cluster, SHARED)
            if accelerator is not None:
                free = free[inventory.node_type[free] == accelerator]
            if free.size == 0:
                continue
            rack, pod = inventory.rack[free], inventory.pod[free]
            if compact:
                chosen = fewest_domains(free, pod, rack, min(need, free.size))
            else:
                _, rack_at, per_rack = np.unique(rack, return_inverse=True, return_counts=True)
                _, pod_at, per_pod = np.unique(pod, return_inverse=True, return_counts=True)
                order = np.lexsort((free, per_rack[rack_at], per_pod[pod_at]))
                chosen = free[order[:need]]
            taken.extend(int(n) for n in chosen)
        return taken

    def _claim_nodes(self, reservation: Reservation) -> None:
        missing = reservation.nodes_wanted - len(reservation.nodes)
        if missing <= 0:
            return
        now = self.env.now
        gpn = reservation.cluster.gpus_per_node
        taken = self._take_whole_nodes(
            [reservation.cluster], missing, compact=True, accelerator=reservation.accelerator
        )
        for node in taken:
            self.inventory.set_pool(node, reservation.pool)
            reservation.nodes.append(node)
            self.accounting.move(now, gpn, "idle", "reserved")
            self.accounting.hold(now, reservation.tenant, "reserved", gpn)
        missing = reservation.nodes_wanted - len(reservation.nodes)
        if missing > 0:
            self._reclaim_nodes(reservation.cluster, missing, reservation.accelerator)

    def _serve_inference(self) -> None:
        fleet = self.inference
        now = self.env.now
        while len(fleet.nodes) > fleet.target_nodes:
            node = fleet.nodes.pop()
            gpn = int(self.inventory.capacity[node])
            self.inventory.release(np.array([node]), np.array([gpn]), np.arange(gpn))
            self.accounting.move(now, gpn, "internal", "idle")
            self.accounting.hold(now, "internal", "inference", -gpn)
            self._power_hold(node, "internal", -gpn)
        missing = fleet.target_nodes - len(fleet.nodes)
        if missing <= 0:
            return
        for node in self._take_whole_nodes(fleet.clusters, missing, compact=False):
            gpn = int(self.inventory.capacity[node])
            self.inventory.allocate(np.array([node]), np.array([gpn]))
            fleet.nodes.append(node)
            self.accounting.move(now, gpn, "idle", "internal")
            self.accounting.hold(now, "internal", "inference", gpn)
            self._power_hold(node, "internal", gpn)
        missing = fleet.target_nodes - len(fleet.nodes)
        for cluster in fleet.clusters:
            if missing <= 0:
                break
            missing -= self._reclaim_nodes(cluster, missing)

    def _update_shortfalls(self) -> None:
        """Track reserved and internal-inference GPUs wanted but not held."""
        now = self.env.now
        for reservation in self.reservations:
            wanted = reservation.nodes_wanted if reservation.active else 0
            short = (wanted - len(reservation.nodes)) * reservation.cluster.gpus_per_node
            held = self.accounting.tenant_gpus[reservation.tenant]["reserved_shortfall"]
            if short != held:
                self.accounting.hold(now, reservation.tenant, "reserved_shortfall", short - held)
        if self.inference is not None:
            fleet = self.inference
            gpn = fleet.clusters[0].gpus_per_node
            short = max(0, fleet.target_nodes - len(fleet.nodes)) * gpn
            held = self.accounting.tenant_gpus["internal"]["inference_shortfall"]
            if short != held:
                self.accounting.hold(now, "internal", "inference_shortfall", short - held)

    # ------------------------------------------------------------------ preemption

    def _reclaim_for(self, job: Job) -> None:
        """Preempt spot jobs so that a blocked internal or on-demand job can start."""
        allowed = math.inf
        if job.max_wait_hours is not None:
            allowed = job.queued_since + job.max_wait_hours - self.env.now
        # Only GPUs where the job may run count (see the isolation policy).
        excluded = self.isolation.excluded(job.tenant)
        best, best_room = None, -1
        for index in job.clusters:
            cluster = self.inventory.clusters[index]
            room = self._free_for(cluster, excluded) + self._reclaimable(index, allowed, excluded)
            if room >= job.gpus and room > best_room:
                best, best_room = cluster, room
        if best is not None:
            self._reclaim_spot(best, job.gpus, allowed, excluded)

    def _free_for(self, cluster: ClusterInfo, excluded: np.ndarray | None) -> int:
        """Free GPUs of the shared pool in ``cluster`` outside ``excluded`` nodes."""
        if excluded is None:
            return self.inventory.free_gpus(cluster, SHARED)
        nodes = self.inventory.nodes_in(cluster, SHARED)
        return int(self.inventory.free[nodes[~excluded[nodes]]].sum())

    def _spot_victims(
        self, cluster_index: int, allowed_notice: float, excluded: np.ndarray | None = None
    ) -> list[Job]:
        """Running spot jobs that may still be preempted, in the preemption policy's order.

        None on ``excluded`` nodes.
        """
        victims = [
            j
            for j in self.running.values()
            if j.contract == "spot"
            and j.cluster == cluster_index
            and j.notice_until is None
            and j.spot_notice_hours <= allowed_notice + EPS_HOURS
            and (excluded is None or not excluded[j.nodes].any())
        ]
        return self.preemption.order(victims, self.env.now)

    def _pending_for(self, cluster_index: int, excluded: np.ndarray | None) -> int:
        """GPUs under notice in the cluster, outside ``excluded`` nodes."""
        if excluded is None:
            return int(self.pending_release[cluster_index])
        return sum(
            j.gpus
            for j in self.running.values()
            if j.notice_until is not None
            and j.cluster == cluster_index
            and not excluded[j.nodes].any()
        )

    def _reclaimable(
        self, cluster_index: int, allowed_notice: float, excluded: np.ndarray | None = None
    ) -> int:
        victims = self._spot_victims(cluster_index, allowed_notice, excluded)
        return self._pending_for(cluster_index, excluded) + sum(j.gpus for j in victims)

    def _reclaim_spot(
        self,
        cluster: ClusterInfo,
        gpus: int,
        allowed_notice: float,
        excluded: np.ndarray | None = None,
    ) -> int:
        """Give notice to spot jobs in ``cluster`` until ``gpus`` GPUs are free or coming free.

        Args:
            cluster: Where.
            gpus: GPUs wanted.
            allowed_notice: The longest notice the waiting job can afford.
            excluded: Nodes the waiting job may not use: GPUs there do not count.

        Returns:
            The GPUs free now or under notice that count towards ``gpus``.
        """
        coming = self._free_for(cluster, excluded) + self._pending_for(cluster.index, excluded)
        for victim in self._spot_victims(cluster.index, allowed_notice, excluded):
            if coming >= gpus:
                break
            self._give_notice(victim)
            coming += victim.gpus
        return coming

    def _reclaim_nodes(
        self, cluster: ClusterInfo, wanted: int, accelerator: str | None = None
    ) -> int:
        """Give notice to spot jobs so that up to ``wanted`` whole nodes come free.

        Whole-node claims (reservations, the inference fleet) can use only a
        node whose every GPU is free or held by spot jobs: preempting spot
        jobs anywhere else would free GPUs the claim cannot use, and queued
        spot jobs would take them straight back. Nodes already coming free
        (all their spot jobs under notice) count first; then the nodes that
        need the fewest GPUs preempted, by node index.

        Returns:
            The whole nodes now coming free for the claim.
        """
        inventory = self.inventory
        first = cluster.first_node
        spot_gpus = np.zeros(cluster.nodes, dtype=np.int64)
        noticed = np.zeros(cluster.nodes, dtype=np.int64)
        on_node: dict[int, list[Job]] = {}
        for job in sorted(self.running.values(), key=lambda j: j.job_id):
            if job.contract != "spot" or job.cluster != cluster.index:
                continue
            local = job.nodes - first
            np.add.at(spot_gpus, local, job.counts)
            if job.notice_until is not None:
                np.add.at(noticed, local, job.counts)
            for node in local.tolist():
                on_node.setdefault(node, []).append(job)
        span = cluster.node_slice
        freeable = (
            (inventory.pool[span] == SHARED)
            & ~inventory.down[span]
            & (inventory.free[span] + spot_gpus == inventory.capacity[span])
            & (spot_gpus > 0)
        )
        if accelerator is not None:
            freeable &= inventory.node_type[span] == accelerator
        coming = np.flatnonzero(freeable & (noticed == spot_gpus))
        targets = [int(node) for node in coming[:wanted]]
        rest = np.flatnonzero(freeable & (noticed < spot_gpus))
        order = np.lexsort((rest, spot_gpus[rest] - noticed[rest]))
        now = self.env.now
        for node in rest[order][: wanted - len(targets)]:
            victims = on_node[int(node)]
            until = max(
                j.notice_until if j.notice_until is not None else now + j.spot_notice_hours
                for j in victims
            )
            self._notify(victims, until)
            targets.append(int(node))
        # Keep the shared queues off these nodes until the claim takes them.
        self.inventory.fence([first + node for node in targets])
        return len(targets)

    def _give_notice(self, job: Job) -> None:
        self._notify([job], self.env.now + job.spot_notice_hours)

    def _notify(self, jobs: list[Job], until: float) -> None:
        """Give ``jobs`` notice to leave together at ``until`` (never before their own notice).

        Jobs already under notice keep theirs unless ``until`` is later; all
        of them then leave in one event, so the GPUs they free come free at
        once and go to whoever reclaimed them before anything else is placed.
        """
        now = self.env.now
        pairs = []
        for job in jobs:
            if job.notice_until is None:
                self.pending_release[job.cluster] += job.gpus
            job.notice_until = until
            job.notice_serial += 1
            pairs.append((job, job.notice_serial))
        self._after(until - now, lambda: self._preempt(pairs))

    def _preempt(self, pairs: list[tuple[Job, int]]) -> None:
        """Preempt the jobs whose notice is still the one given, then reschedule once."""
        preempted = False
        for job, serial in pairs:
            if job.notice_serial != serial or job.state != "running" or job.notice_until is None:
                continue
            self._stop(job)
            self._roll_back(job)
            job.preemptions += 1
            self.preemptions += 1
            self._requeue(job)
            preempted = True
        if preempted:
            self.schedule()

    def _roll_back(self, job: Job) -> None:
        """A stopped job keeps the work of its last checkpoint; the rest is lost."""
        kept = job.checkpointed_hours()
        job.lost_hours += job.progress_hours - kept
        job.progress_hours = kept

    def _requeue(self, job: Job) -> None:
        """A stopped job queues again, in its place by id, and pays a restart when it starts."""
        job.state = "queued"
        job.queued_since = self.env.now
        job.restarted = True
        queue = self._queue_for(job)
        position = next((i for i, q in enumerate(queue) if q.job_id > job.job_id), len(queue))
        queue.insert(position, job)
        self._arm_patience(job)

    # ------------------------------------------------------------------ failures

    def keep_spares(self, cluster: ClusterInfo, nodes: int) -> None:
        """Set ``nodes`` of the cluster aside as spares (its last ones), unsold."""
        self.spares_wanted[cluster.index] = nodes
        self.set_aside(cluster, nodes, SPARE, "spare")

    def fail(self, node: int, slot: int, scope: str, repair_hours: float) -> bool:
        """A failure strikes GPU ``slot`` of ``node`` (see :mod:`sim.market.failures`).

        Args:
            node: The node.
            slot: The GPU within it.
            scope: ``"node"``: every job on the node restarts from its last
                checkpoint and the node is out of service for
                ``repair_hours`` (a spare takes its place); ``"job"``: the job
                on that GPU restarts from its last checkpoint; ``"planned"``:
                it restarts from a checkpoint it saves first, losing no work.
            repair_hours: How long a node failure keeps the node out of service.

        Returns:
            Whether it struck (a node out of service or parked cannot fail).
        """
        inventory = self.inventory
        if inventory.down[node] or inventory.pool[node] == PARKED:
            return False  # out of service, or powered off
        self.failures += 1
        hit = [
            job
            for job in sorted(self.running.values(), key=lambda j: j.job_id)
            if node in job.nodes.tolist() and (scope == "node" or self._holds(job, node, slot))
        ]
        for job in hit:
            self._stop(job)
            if scope != "planned":
                self._roll_back(job)
            job.failures += 1
            self._requeue(job)
        if scope == "node":
            self._take_down(node, repair_hours)
        self.schedule()
        return True

    @staticmethod
    def _holds(job: Job, node: int, slot: int) -> bool:
        """Whether the running ``job`` holds GPU ``slot`` of ``node``."""
        rows = np.repeat(job.nodes, job.counts)
        return bool(np.any((rows == node) & (job.slots == slot)))

    def _take_down(self, node: int, repair_hours: float) -> None:
        """Take a failed node out of service until its repair; a spare replaces it."""
        inventory, now = self.inventory, self.env.now
        cluster = inventory.clusters[int(inventory.node_cluster[node])]
        gpn = cluster.gpus_per_node
        fleet = self.inference
        if fleet is not None and node in fleet.nodes:
            fleet.nodes.remove(node)
            inventory.release(np.array([node]), np.array([gpn]), np.arange(gpn))
            self.accounting.move(now, gpn, "internal", "idle")
            self.accounting.hold(now, "internal", "inference", -gpn)
            self._power_hold(node, "internal", -gpn)
        pool = int(inventory.pool[node])
        if pool == SPARE:
            self.accounting.move(now, gpn, "spare", "down")
        elif pool == SHARED:
            self.accounting.move(now, gpn, "idle", "down")
        else:  # a reserved block's node: the block claims another whole node
            reservation = self.reservations[pool]
            reservation.nodes.remove(node)
            self.accounting.move(now, gpn, "reserved", "down")
            self.accounting.hold(now, reservation.tenant, "reserved", -gpn)
        inventory.take_down(node)
        self._power_switch(node, -gpn)
        spares = self._spares_in(cluster)
        if pool != SPARE and spares.size:
            inventory.set_pool(int(spares[0]), SHARED)
            self.accounting.move(now, gpn, "spare", "idle")
        inventory.set_pool(node, SHARED)  # out of service, its pool decided at the repair
        self._after(repair_hours, lambda: self._repair(node))

    def _spares_in(self, cluster: ClusterInfo) -> np.ndarray:
        """The cluster's spare nodes in service."""
        span = cluster.node_slice
        spare = (self.inventory.pool[span] == SPARE) & ~self.inventory.down[span]
        return np.flatnonzero(spare) + cluster.first_node

    def _repair(self, node: int) -> None:
        """A repaired node returns: as a spare while the cluster lacks one, else to be sold."""
        inventory, now = self.inventory, self.env.now
        cluster = inventory.clusters[int(inventory.node_cluster[node])]
        to_spare = self._spares_in(cluster).size < self.spares_wanted[cluster.index]
        if to_spare:
            inventory.set_pool(node, SPARE)
        inventory.bring_up(node)
        self.accounting.move(now, cluster.gpus_per_node, "down", "spare" if to_spare else "idle")
        self._power_switch(node, cluster.gpus_per_node)
        self.schedule()

    # ------------------------------------------------------------------ lifecycle

    def _queue_for(self, job: Job) -> list[Job] | None:
        if job.pool == SHARED:
            return self.queues[job.contract]
        reservation = self.reservations[job.pool]
        if reservation.start_hours <= self.env.now < reservation.end_hours:
            return reservation.queue
        return None

    def _start(self, job: Job, proposal: Proposal) -> None:
        now = self.env.now
        job.slots = self.inventory.allocate(proposal.nodes, proposal.counts, proposal.slots)
        if job.pool == SHARED:
            self.shared_usage[job.tenant] = self.shared_usage.get(job.tenant, 0) + job.gpus
        self._queue_for(job).remove(job)
        job.state = "running"
        job.cluster = proposal.cluster
        job.nodes, job.counts = proposal.nodes, proposal.counts
        if job.first_start_hours is None:
            job.first_start_hours = now
        job.slowdown = 1.0
        job.rate_since, job.run_since = now, now
        if job.restarted:
            job.resume_hours, job.restarted = now + job.restart_overhead_hours, False
        job.version += 1
        self.running[job.job_id] = job
        job.rate = self._rate(job)
        self._power_hold(int(job.nodes[0]), job.tenant, job.gpus)
        if job.contract != "reserved":
            self.accounting.move(now, job.gpus, "idle", job.contract)
        self.accounting.hold(now, job.tenant, "allocated", job.gpus)
        placement = RunningPlacement(
            job.job_id, job.tenant, job.contract, job.nodes, job.counts, job.traffic, job.slots
        )
        predicted = self._candidates.pop(job.job_id, None)
        if (
            predicted is not None
            and np.array_equal(predicted.nodes, placement.nodes)
            and np.array_equal(predicted.slots, placement.slots)
        ):
            placement = predicted  # its routes and the what-if epoch are cached for it
        self._placements[job.cluster][job.job_id] = placement
        self._arm_completion(job)
        self._mark_dirty(proposal.cluster)

    def _stop(self, job: Job) -> None:
        """Take a running job off its GPUs (completion, preemption or expiry)."""
        now = self.env.now
        job.fold(now)
        job.version += 1
        self.inventory.release(job.nodes, job.counts, job.slots)
        del self.running[job.job_id]
        self._power_hold(int(job.nodes[0]), job.tenant, -job.gpus)
        if job.pool == SHARED:
            self.shared_usage[job.tenant] -= job.gpus
        if job.notice_until is not None:
            self.pending_release[job.cluster] -= job.gpus
            job.notice_until = None
        if job.contract != "reserved":
            self.accounting.move(now, job.gpus, job.contract, "idle")
        self.accounting.hold(now, job.tenant, "allocated", -job.gpus)
        job.log_network(now, None)
        del self._placements[job.cluster][job.job_id]
        self._slowed[job.cluster].discard(job.job_id)
        self._mark_dirty(job.cluster)
        job.nodes = job.counts = job.slots = None

    def _complete(self, job: Job, version: int) -> None:
        if job.version != version or job.state != "running":
            return
        self._stop(job)
        job.progress_hours = job.work_hours
        job.state = "done"
        job.end_hours = self.env.now
        self.schedule()

    def _give_up(self, job: Job, version: int) -> None:
        """A queued job's patience ran out."""
        if job.version != version or job.state != "queued":
            return
        self._queue_for(job).remove(job)
        job.state = "preempted" if job.preemptions else "rejected"
        job.end_hours = self.env.now
        self.schedule()

    def _activate(self, reservation: Reservation) -> None:
        reservation.active = True
        self.schedule()

    def _expire(self, reservation: Reservation) -> None:
        now = self.env.now
        for job in sorted(self.running.values(), key=lambda j: j.job_id):
            if job.pool == reservation.pool:
                self._stop(job)
                job.state, job.end_hours = "expired", now
        for job in reservation.queue:
            job.version += 1
            job.state, job.end_hours = "expired", now
        reservation.queue.clear()
        reservation.active = False
        gpn = reservation.cluster.gpus_per_node
        for node in reservation.nodes:
            self.inventory.set_pool(node, SHARED)
            self.accounting.move(now, gpn, "reserved", "idle")
            self.accounting.hold(now, reservation.tenant, "reserved", -gpn)
        reservation.nodes.clear()
        self.schedule()

    # ------------------------------------------------------------------ timers and epochs

    def _after(self, delay_hours: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay_hours`` of simulated time."""
        event = self.env.timeout(max(0.0, delay_hours))
        event.callbacks.append(lambda _event: action())

    def _arm_completion(self, job: Job) -> None:
        version = job.version
        self._after(
            job.finish_time(self.env.now) - self.env.now, lambda: self._complete(job, version)
        )

    def _arm_patience(self, job: Job) -> None:
        job.version += 1
        if self.placement.wait_hours > 0:  # look again when its wait for a pod is over
            self._after(self.placement.wait_hours, self.schedule)
        if job.max_wait_hours is None:
            return
        if job.max_wait_hours == 0:
            self._give_up(job, job.version)
            return
        version = job.version
        self._after(job.max_wait_hours, lambda: self._give_up(job, version))

    def _mark_dirty(self, cluster: int) -> None:
        self._dirty.add(cluster)
        if not self._epoch_pending:
            self._epoch_pending = True
            self._after(0.0, self._solve_epochs)

    def _solve_epochs(self) -> None:
        """Solve each cluster whose running set changed, once, and apply the new rates.

        Only jobs the solution slows, or that were slowed before, can change
        rate, so an epoch costs the fabric solve plus work on those jobs.
        """
        self._epoch_pending = False
        now = self.env.now
        for cluster in sorted(self._dirty):
            solution = self.fabrics[cluster].solve(list(self._placements[cluster].values()))
            self.epochs += 1
            self.fabric_log.change(cluster, now, solution)
            for job_id, state in solution.jobs.items():
                job = self.running[job_id]
                if job.network != state:
                    job.log_network(now, state)
            slowed = self._slowed[cluster]
            slowdowns = solution.slowdown
            for job_id in sorted(slowed.union(slowdowns)):
                job = self.running[job_id]
                slowdown = slowdowns.get(job_id, 1.0)
                if slowdown < 1.0:
                    raise RuntimeError(f"fabric gave job {job_id} a speed-up ({slowdown})")
                if slowdown == 1.0:
                    slowed.discard(job_id)
                else:
                    slowed.add(job_id)
                job.slowdown = slowdown
                self._retime(job)
        self._dirty.clear()

    def _rate(self, job: Job) -> float:
        """Work per hour: its accelerator's and its site's speed, less checkpoint writes and
        its fabric's slowdown."""
        kind = self.inventory.node_type[job.nodes[0]]
        accelerator = job.speeds.get(kind, 1.0) if job.speeds else 1.0
        return accelerator * job.checkpoint_speed * self.cluster_speed[job.cluster] / job.slowdown

    def _retime(self, job: Job) -> None:
        """Bring a running job's rate up to date, and its completion with it."""
        rate = self._rate(job)
        if rate != job.rate:
            job.fold(self.env.now)
            job.rate = rate
            job.version += 1
            self._arm_completion(job)

    def _power_hold(self, node: int, owner: str, gpus: int) -> None:
        """GPUs of ``node``'s cluster and type become busy (``gpus`` > 0) or idle; a
        throttle follows."""
        if self.power is None:
            return
        cluster, kind = int(self.inventory.node_cluster[node]), self.inventory.node_type[node]
        if self.power.hold(self.env.now, cluster, kind, owner, gpus):
            self._follow_speed(cluster)

    def _power_switch(self, node: int, gpus: int) -> None:
        """GPUs of ``node``'s cluster and type are powered on (``gpus`` > 0) or off."""
        if self.power is None:
            return
        cluster, kind = int(self.inventory.node_cluster[node]), self.inventory.node_type[node]
        if self.power.power(self.env.now, cluster, kind, gpus):
            self._follow_speed(cluster)

    def _follow_speed(self, cluster: int) -> None:
        """The site of ``cluster`` changed speed: every job running there follows."""
        site = self.power.site_of(cluster)
        indices = sorted(c.index for c in site.clusters)
        self.cluster_speed[indices] = site.speed
        for job in sorted(self.running.values(), key=lambda j: j.job_id):
            if job.cluster in indices:
                self._retime(job)

    def set_aside(
        self,
        cluster: ClusterInfo,
        nodes: int,
        pool: int,
        cls: str,
        accelerator: str | None = None,
    ) -> None:
        """Take the cluster's highest ``nodes`` shared nodes (of ``accelerator``, if given)
        out of sale into ``pool``.

        Spares (``SPARE``, class "spare") replace failed nodes; parked nodes
        (``PARKED``, class "parked") stay powered off under a power cap.
        """
        span = cluster.node_slice
        shared = self.inventory.pool[span] == SHARED
        if accelerator is not None:
            shared &= self.inventory.node_type[span] == accelerator
        gpn = cluster.gpus_per_node
        for node in (np.flatnonzero(shared) + cluster.first_node)[::-1][:nodes].tolist():
            self.inventory.set_pool(node, pool)
            self.accounting.move(self.env.now, gpn, "idle", cls)
            if pool == PARKED:
                self._power_switch(node, -gpn)

    def close(self, horizon_hours: float) -> None:
        """Stop the clock at the horizon: bring every running job and count up to date."""
        for job in self.running.values():
            job.fold(horizon_hours)
            job.log_network(horizon_hours, None)
        self.fabric_log.close(horizon_hours)
        self.accounting.advance(horizon_hours)
        if self.power is not None:
            self.power.close(horizon_hours)

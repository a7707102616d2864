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
together, once, as one fabric epoch (:mod:`sim.market.epochs`). Which spot
jobs get notice when capacity is reclaimed is chosen by
:mod:`sim.market.reclaim`; whole-node claims take their nodes with
:func:`sim.policies.placement.take_whole_nodes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.fabric.model import FabricModel
from sim.market.backfill import shadow
from sim.market.epochs import FabricEpochs
from sim.market.inventory import PARKED, SHARED, SPARE, ClusterInfo, Inventory
from sim.market.node_types import keep_offs, never_usable
from sim.market.power import PowerLedger
from sim.market.reclaim import EPS_HOURS, SpotReclaimer
from sim.metrics.accounting import Accounting
from sim.policies.admission import AcceptAll, AdmissionPolicy
from sim.policies.isolation import IsolationPolicy, Shared
from sim.policies.placement import PlacementPolicy, Proposal, take_whole_nodes
from sim.policies.preemption import Newest, PreemptionPolicy
from sim.workloads.jobs import Job

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
        placement: PlacementPolicy,
        fabrics: list[FabricModel],
        accounting: Accounting,
        backfill: bool = True,
        backfill_depth: int = 200,
        isolation: IsolationPolicy | None = None,
        preemption: PreemptionPolicy | None = None,
        admission: AdmissionPolicy | None = None,
        power: PowerLedger | None = None,
    ):
        self.env = env
        self.power = power
        self.inventory = inventory
        self.placement = placement
        self.isolation = isolation if isolation is not None else Shared()
        self.isolation.bind(inventory)
        self.admission = admission if admission is not None else AcceptAll()
        self.shared_usage: dict[str, int] = {}
        """GPUs of the shared pool each tenant's running jobs hold."""
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
        n_clusters = len(inventory.clusters)
        self.cluster_speed = np.ones(n_clusters)
        """Per cluster, the speed of its compute (below 1 while a power cap throttles it)."""
        self.spares_wanted = np.zeros(n_clusters, dtype=np.int64)
        self.epochs = FabricEpochs(env, fabrics, self.running, self._retime)
        """Each cluster's running placements and the fabric epochs that solve them."""
        self.reclaim = SpotReclaimer(
            env,
            inventory,
            self.running,
            self.pending_release,
            preemption if preemption is not None else Newest(),
            self._notify,
        )
        """Chooses the spot jobs to give notice for a blocked job or a whole-node claim."""
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
                self.epochs.forget_candidates()
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
        head_masks: list[np.ndarray | None] = []
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
                    head_masks = self._keep_offs(job, pool)
                    # Nodes the head may not use: jobs placed there never delay it.
                    head_excluded = never_usable(head_masks)
                    if job.contract in RECLAIMS_SPOT:
                        masks = head_masks if pool == SHARED else self._keep_offs(job, SHARED)
                        for keep_off in masks:
                            if self.reclaim.for_job(job, keep_off):
                                break
                    if not self.backfill:
                        return
                    continue
                if free == 0 and len(job.clusters) == len(clusters):
                    return
                if proposal is None:
                    continue
                if shadow is None:
                    shadow = self._shadow(head, pool, head_masks)
                shadow_cluster, shadow_hours, extra = shadow
                ends_hours = self._projected_end(job, proposal)
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
        slots = proposal.slots
        if slots is None:
            slots = self.inventory.lowest_free_slots(proposal.nodes, proposal.counts)
        return self.epochs.admits(job, proposal, slots, slo)

    def _propose(self, job: Job, pool: int) -> Proposal | None:
        clusters = [self.inventory.clusters[i] for i in job.clusters]
        waited = self.env.now - job.queued_since
        tp = getattr(job.traffic, "tp", 1)
        for keep_off in self._keep_offs(job, pool):
            proposal = self.placement.place(
                self.inventory, clusters, pool, job.gpus, waited, keep_off, tp=tp
            )
            if proposal is not None:
                return proposal
        return None

    def _keep_offs(self, job: Job, pool: int) -> list[np.ndarray | None]:
        """The nodes ``job`` must keep off, once per node type it may take (see
        :func:`sim.market.node_types.keep_offs`); isolation applies to the shared pool."""
        excluded = self.isolation.excluded(job.tenant) if pool == SHARED else None
        return keep_offs(self.inventory, job, excluded)

    def _shadow(
        self, head: Job, pool: int, masks: list[np.ndarray | None]
    ) -> tuple[int | None, float, int]:
        """EASY's shadow for the blocked head (see :func:`sim.market.backfill.shadow`): only
        GPUs where it may run count (``masks``, its :meth:`_keep_offs` in the shared pool:
        isolation, and in a mixed cluster one type it takes)."""
        masks = masks if pool == SHARED else [None]
        return shadow(head, pool, self.inventory, self.running.values(), masks, self.env.now)

    def _projected_end(self, job: Job, proposal: Proposal) -> float:
        """When a queued job would finish if it started now as proposed, estimated as the
        shadow estimates a running job's end (:meth:`Job.finish_time_at`).

        It works after its restart overhead, at the rate it would run at there: its
        accelerator's and its site's speed, less checkpoint writes and the fabric's
        slowdown (the one a what-if epoch predicted for it, else none: the fabric is
        solved once it runs).
        """
        now = self.env.now
        resume_hours = now + job.restart_overhead_hours if job.restarted else now
        slowdown = self.epochs.predicted_slowdown(job.job_id)
        rate = self._rate_on(job, int(proposal.nodes[0]), slowdown)
        return job.finish_time_at(now, rate, resume_hours)

    # ------------------------------------------------------------------ whole-node claims

    def _claim_nodes(self, reservation: Reservation) -> None:
        missing = reservation.nodes_wanted - len(reservation.nodes)
        if missing <= 0:
            return
        now = self.env.now
        gpn = reservation.cluster.gpus_per_node
        excluded = self.isolation.excluded(reservation.tenant)
        taken = take_whole_nodes(
            self.inventory,
            [reservation.cluster],
            missing,
            compact=True,
            accelerator=reservation.accelerator,
            excluded=excluded,
        )
        for node in taken:
            self.inventory.set_pool(node, reservation.pool)
            reservation.nodes.append(node)
            self.accounting.move(now, gpn, "idle", "reserved")
            self.accounting.hold(now, reservation.tenant, "reserved", gpn)
        missing = reservation.nodes_wanted - len(reservation.nodes)
        if missing > 0:
            self.reclaim.whole_nodes(
                reservation.cluster, missing, reservation.accelerator, excluded
            )

    def _serve_inference(self) -> None:
        fleet = self.inference
        while len(fleet.nodes) > fleet.target_nodes:
            self._release_fleet_node(fleet.nodes[-1])
        missing = fleet.target_nodes - len(fleet.nodes)
        if missing <= 0:
            return
        for node in take_whole_nodes(self.inventory, fleet.clusters, missing, compact=False):
            gpn = int(self.inventory.capacity[node])
            self.inventory.allocate(np.array([node]), np.array([gpn]))
            fleet.nodes.append(node)
            self._hand_over(node, "internal", "inference", "internal", gpn)
        missing = fleet.target_nodes - len(fleet.nodes)
        for cluster in fleet.clusters:
            if missing <= 0:
                break
            missing -= self.reclaim.whole_nodes(cluster, missing)

    def _release_fleet_node(self, node: int) -> None:
        """The inference fleet gives ``node`` back to the shared pool."""
        self.inference.nodes.remove(node)
        gpn = int(self.inventory.capacity[node])
        self.inventory.release(np.array([node]), np.array([gpn]), np.arange(gpn))
        self._hand_over(node, "internal", "inference", "internal", -gpn)

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
            job.preempted_at.append(self.env.now)
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
        if self.inference is not None and node in self.inference.nodes:
            self._release_fleet_node(node)
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
        job.span_since = now
        if job.restarted:
            job.resume_hours, job.restarted = now + job.restart_overhead_hours, False
        job.version += 1
        self.running[job.job_id] = job
        job.rate = self._rate(job)
        self._hand_over_job(job, job.gpus)
        self._arm_completion(job)
        self.epochs.start(job)

    def _stop(self, job: Job) -> None:
        """Take a running job off its GPUs (completion, preemption or expiry)."""
        now = self.env.now
        job.fold(now)
        job.version += 1
        self.inventory.release(job.nodes, job.counts, job.slots)
        del self.running[job.job_id]
        self._hand_over_job(job, -job.gpus)
        if job.pool == SHARED:
            self.shared_usage[job.tenant] -= job.gpus
        if job.notice_until is not None:
            self.pending_release[job.cluster] -= job.gpus
            job.notice_until = None
        job.log_network(now, None)
        self.epochs.stop(job)
        job.run_spans.append((job.span_since, now))
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

    def _rate(self, job: Job) -> float:
        """A running job's work per hour (see :meth:`_rate_on`)."""
        return self._rate_on(job, int(job.nodes[0]), job.slowdown)

    def _rate_on(self, job: Job, node: int, slowdown: float) -> float:
        """Work per hour of ``job`` on ``node`` (its type and site): its accelerator's and its
        site's speed, less checkpoint writes and the fabric's ``slowdown``."""
        kind = self.inventory.node_type[node]
        accelerator = job.speeds.get(kind, 1.0) if job.speeds else 1.0
        cluster = int(self.inventory.node_cluster[node])
        return accelerator * job.checkpoint_speed * self.cluster_speed[cluster] / slowdown

    def _retime(self, job: Job) -> None:
        """Bring a running job's rate up to date, and its completion with it."""
        rate = self._rate(job)
        if rate != job.rate:
            job.fold(self.env.now)
            job.rate = rate
            job.version += 1
            self._arm_completion(job)

    def _hand_over(self, node: int, tenant: str, held: str, cls: str | None, gpus: int) -> None:
        """``tenant`` takes ``gpus`` GPUs on ``node`` (gives them back if negative).

        The GPUs move from idle into class ``cls`` (or back; None for a
        reserved block's, which stay in its class), the tenant holds them as
        ``held``, and they draw busy power on the node's site.
        """
        now = self.env.now
        if cls is not None:
            src, dst = ("idle", cls) if gpus > 0 else (cls, "idle")
            self.accounting.move(now, abs(gpus), src, dst)
        self.accounting.hold(now, tenant, held, gpus)
        self._power_hold(node, tenant, gpus)

    def _hand_over_job(self, job: Job, gpus: int) -> None:
        """A running job takes its GPUs (``gpus`` > 0) or gives them back."""
        cls = None if job.contract == "reserved" else job.contract
        self._hand_over(int(job.nodes[0]), job.tenant, "allocated", cls, gpus)

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
            job.run_spans.append((job.span_since, horizon_hours))
        self.epochs.close(horizon_hours)
        self.accounting.advance(horizon_hours)
        if self.power is not None:
            self.power.close(horizon_hours)

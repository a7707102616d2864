"""Spot reclaiming: which spot jobs get notice so that a blocked job or a whole-node claim
can start.

Spot GPUs are lent, not sold: a blocked internal or on-demand job, a reserved
block or the inference fleet may take them back after the spot job's notice.
The reclaimer only chooses whom to notify, in the preemption policy's order
(see :mod:`sim.policies.preemption`) and only where the claimant may run (see
:mod:`sim.policies.isolation`); the marketplace gives the notice and, when it
runs out, stops the jobs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import simpy

from sim.market.inventory import SHARED, ClusterInfo, Inventory
from sim.policies.preemption import PreemptionPolicy
from sim.workloads.jobs import Job

EPS_HOURS = 1e-9


class SpotReclaimer:
    """Chooses the spot jobs to give notice, for a job or for whole nodes.

    Args:
        env: The SimPy environment (time in hours).
        inventory: The provider's nodes.
        running: The marketplace's running jobs by id (read only here).
        pending_release: Per cluster, the GPUs of jobs under notice (read only here).
        preemption: Which spot jobs get notice first.
        notify: Gives jobs notice to leave together by an hour (the marketplace's).
    """

    def __init__(
        self,
        env: simpy.Environment,
        inventory: Inventory,
        running: Mapping[int, Job],
        pending_release: np.ndarray,
        preemption: PreemptionPolicy,
        notify: Callable[[list[Job], float], None],
    ):
        self.env = env
        self.inventory = inventory
        self.running = running
        self.pending_release = pending_release
        self.preemption = preemption
        self._notify = notify

    def for_job(self, job: Job, excluded: np.ndarray | None) -> bool:
        """Give notice to spot jobs so that a blocked internal or on-demand job can start.

        Args:
            job: The blocked job.
            excluded: Nodes it may not use (the isolation policy's, and in a
                cluster that mixes types the nodes of other types than the one
                it would take): GPUs there do not count.

        Returns:
            Whether a cluster of the job's has room for it once notified jobs leave.
        """
        allowed = math.inf
        if job.max_wait_hours is not None:
            allowed = job.queued_since + job.max_wait_hours - self.env.now
        best, best_room = None, -1
        for index in job.clusters:
            cluster = self.inventory.clusters[index]
            room = self.inventory.shared_free_gpus(cluster, excluded) + self._reclaimable(
                index, allowed, excluded
            )
            if room >= job.gpus and room > best_room:
                best, best_room = cluster, room
        if best is None:
            return False
        self.spot(best, job.gpus, allowed, excluded)
        return True

    def spot(
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
        coming = self.inventory.shared_free_gpus(cluster, excluded) + self._pending(
            cluster.index, excluded
        )
        for victim in self._victims(cluster.index, allowed_notice, excluded):
            if coming >= gpus:
                break
            self._notify([victim], self.env.now + victim.spot_notice_hours)
            coming += victim.gpus
        return coming

    def whole_nodes(
        self,
        cluster: ClusterInfo,
        wanted: int,
        accelerator: str | None = None,
        excluded: np.ndarray | None = None,
    ) -> int:
        """Give notice to spot jobs so that up to ``wanted`` whole nodes come free.

        Whole-node claims (reservations, the inference fleet) can use only a
        node whose every GPU is free or held by spot jobs: preempting spot
        jobs anywhere else would free GPUs the claim cannot use, and queued
        spot jobs would take them straight back. Nodes already coming free
        (all their spot jobs under notice) count first; then the nodes that
        need the fewest GPUs preempted, by node index. The nodes are fenced
        off the shared queues until the claim takes them.

        Args:
            cluster: Where.
            wanted: How many whole nodes.
            accelerator: Only nodes of this type (None: any).
            excluded: Nodes the claim must keep off (an isolation policy's mask), or None.

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
        if excluded is not None:
            freeable &= ~excluded[span]
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
        inventory.fence([first + node for node in targets])
        return len(targets)

    def _victims(
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

    def _pending(self, cluster_index: int, excluded: np.ndarray | None) -> int:
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
        victims = self._victims(cluster_index, allowed_notice, excluded)
        return self._pending(cluster_index, excluded) + sum(j.gpus for j in victims)

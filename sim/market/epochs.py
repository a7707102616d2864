"""Fabric epochs: each cluster's fabric solved once for every instant its running set changes.

A thin process beside the fabric solver, the way estee's network model sits
beside its flow solver. The marketplace tells it when a job starts or stops on
a cluster; the first change at an instant schedules one zero-delay event, and
when it fires every cluster that changed is solved once, in cluster order. Only
jobs the solution slows, or that were slowed before, get a new slowdown (and the
marketplace a call to retime them). The solutions are logged in a
:class:`~sim.metrics.fabric_log.FabricLog` and on each job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import simpy

from sim.fabric.model import FabricModel, RunningPlacement
from sim.metrics.fabric_log import FabricLog
from sim.policies.placement import Proposal
from sim.workloads.jobs import Job


class FabricEpochs:
    """The running placements of every cluster and the epochs that solve them.

    Args:
        env: The SimPy environment (time in hours).
        fabrics: One fabric model per cluster index.
        running: The marketplace's running jobs by id (read only here).
        retime: Called with a running job whose slowdown an epoch changed, to
            bring its rate and completion up to date.
    """

    def __init__(
        self,
        env: simpy.Environment,
        fabrics: list[FabricModel],
        running: Mapping[int, Job],
        retime: Callable[[Job], None],
    ):
        self.env = env
        self.fabrics = fabrics
        self.running = running
        self._retime = retime
        n_clusters = len(fabrics)
        self.count = 0
        """Fabric solves so far (``fabric_epochs`` in ``summary.json``)."""
        self.log = FabricLog(n_clusters)
        self._placements: list[dict[int, RunningPlacement]] = [{} for _ in range(n_clusters)]
        self._slowed: list[set[int]] = [set() for _ in range(n_clusters)]
        self._candidates: dict[int, tuple[RunningPlacement, float]] = {}
        """Placements admitted by a what-if solve, kept for the job's start, with the
        slowdown the solve predicted for the job."""
        self._dirty: set[int] = set()
        self._pending = False

    def forget_candidates(self) -> None:
        """Drop the what-if placements of an earlier scheduling pass."""
        self._candidates.clear()

    def admits(
        self, job: Job, proposal: Proposal, slots: np.ndarray, slo: Mapping[str, float]
    ) -> bool:
        """Whether the fabric, solved with ``job`` placed as proposed, keeps every SLO tenant's
        jobs within their slowdown SLO, or no slower than now (see ``FabricAware``).

        Args:
            job: The job that would start.
            proposal: Where.
            slots: The GPU slots it would take, in rank order.
            slo: Per tenant with an SLO, the slowdown it allows.
        """
        candidate = RunningPlacement(
            job.job_id,
            job.tenant,
            job.contract,
            proposal.nodes,
            proposal.counts,
            job.traffic,
            slots,
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
        self._candidates[job.job_id] = (candidate, predicted.slowdown.get(job.job_id, 1.0))
        return True

    def predicted_slowdown(self, job_id: int) -> float:
        """The slowdown a what-if solve of this scheduling pass predicted for a queued job
        (1 if none was solved for it)."""
        admitted = self._candidates.get(job_id)
        return admitted[1] if admitted is not None else 1.0

    def start(self, job: Job) -> None:
        """``job`` started on its nodes: its cluster's fabric changes at this instant."""
        placement = RunningPlacement(
            job.job_id, job.tenant, job.contract, job.nodes, job.counts, job.traffic, job.slots
        )
        predicted, _ = self._candidates.pop(job.job_id, (None, 1.0))
        if (
            predicted is not None
            and np.array_equal(predicted.nodes, placement.nodes)
            and np.array_equal(predicted.slots, placement.slots)
        ):
            placement = predicted  # its routes and the what-if epoch are cached for it
        self._placements[job.cluster][job.job_id] = placement
        self._mark_dirty(job.cluster)

    def stop(self, job: Job) -> None:
        """``job`` left its nodes: its cluster's fabric changes at this instant."""
        del self._placements[job.cluster][job.job_id]
        self._slowed[job.cluster].discard(job.job_id)
        self._mark_dirty(job.cluster)

    def close(self, horizon_hours: float) -> None:
        """Integrate the fabric log up to the horizon."""
        self.log.close(horizon_hours)

    def _mark_dirty(self, cluster: int) -> None:
        self._dirty.add(cluster)
        if not self._pending:
            self._pending = True
            event = self.env.timeout(0.0)
            event.callbacks.append(lambda _event: self._solve())

    def _solve(self) -> None:
        """Solve each cluster whose running set changed, once, and apply the new slowdowns.

        Only jobs the solution slows, or that were slowed before, can change
        rate, so an epoch costs the fabric solve plus work on those jobs.
        """
        self._pending = False
        now = self.env.now
        for cluster in sorted(self._dirty):
            solution = self.fabrics[cluster].solve(list(self._placements[cluster].values()))
            self.count += 1
            self.log.change(cluster, now, solution)
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

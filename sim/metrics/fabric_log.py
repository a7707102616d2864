"""The fabrics' time integrals: busy, paused, stalled, carried and marked link-hours, per epoch.

A metric integrator like :class:`~sim.metrics.accounting.Accounting`: nothing is
sampled on a clock. Each cluster's fabric state holds from one of its epochs to
the next, so the integrals are exact between events. InfiniBand's credit stalls
are its PFC pauses (the same lossless back-pressure state, see
:mod:`sim.fabric.transport`), integrated the same way but kept apart.
"""

from __future__ import annotations

from sim.fabric.model import EpochSolution


class FabricLog:
    """Time integrals of each cluster's fabric state, epoch by epoch.

    A cluster's state holds from one of its epochs to the next: the pause
    fraction weighs by busy links and time, the ECN mark fraction by traffic
    and time.

    Args:
        n_clusters: How many clusters (each with its own fabric).
    """

    def __init__(self, n_clusters: int):
        self._current: list[tuple[float, EpochSolution] | None] = [None] * n_clusters
        self.pfc_busy_link_hours = 0.0
        """Busy link-hours of the fabrics with PFC (the weight of their pauses)."""
        self.paused_link_hours = 0.0
        self.ecn_carried_gbps_hours = 0.0
        """Traffic carried by the fabrics that mark ECN (the weight of their marks)."""
        self.marked_gbps_hours = 0.0
        self.has_pfc = False
        self.has_ecn = False
        self.pauses: list[tuple[float, int, EpochSolution]] = []
        """Every change of a fabric with PFC: (hours, cluster, its solution from then on)."""
        self.has_credits = False
        self.credit_busy_link_hours = 0.0
        """Busy link-hours of the fabrics with credits (the weight of their stalls)."""
        self.stalled_link_hours = 0.0
        self.tier_credit_link_hours: dict[str, list[float]] = {}
        """Per link tier name of fabrics with credits: [busy, stalled] link-hours."""
        self.stalls: list[tuple[float, int, EpochSolution]] = []
        """Every change of a fabric with credits: (hours, cluster, its solution from then on)."""

    def change(self, cluster: int, now: float, solution: EpochSolution) -> None:
        """The cluster's fabric state changes to ``solution`` at ``now``."""
        self._integrate(cluster, now)
        self._current[cluster] = (now, solution)
        if solution.pfc_pause_fraction is not None:
            _record(self.pauses, now, cluster, solution)
        if solution.credit_stall_fraction is not None:
            _record(self.stalls, now, cluster, solution)
            self.has_credits = True
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
        if solution.pfc_pause_fraction is not None:
            self.pfc_busy_link_hours += solution.busy_links * hours
            self.paused_link_hours += solution.pfc_pause_fraction * solution.busy_links * hours
        if solution.ecn_mark_fraction is not None:
            self.ecn_carried_gbps_hours += solution.carried_gbps * hours
            self.marked_gbps_hours += solution.ecn_mark_fraction * solution.carried_gbps * hours
        if solution.credit_stall_fraction is not None:
            self._integrate_credits(solution, hours)

    def _integrate_credits(self, solution: EpochSolution, hours: float) -> None:
        """Stalled and busy link-hours of a fabric with credits, overall and by tier."""
        self.credit_busy_link_hours += solution.busy_links * hours
        self.stalled_link_hours += solution.credit_stall_fraction * solution.busy_links * hours
        for name, busy, stalled in zip(
            solution.tier_names, solution.tier_busy_links, solution.tier_paused_links, strict=True
        ):
            tier = self.tier_credit_link_hours.setdefault(name, [0.0, 0.0])
            tier[0] += busy * hours
            tier[1] += stalled * hours

    @property
    def pfc_pause_fraction(self) -> float | None:
        """Paused over busy link-hours of the fabrics with PFC (None if none has)."""
        if not self.has_pfc:
            return None
        busy = self.pfc_busy_link_hours
        return self.paused_link_hours / busy if busy else 0.0

    @property
    def ecn_mark_fraction(self) -> float | None:
        """Marked over carried traffic of the fabrics that mark ECN (None if none does)."""
        if not self.has_ecn:
            return None
        carried = self.ecn_carried_gbps_hours
        return self.marked_gbps_hours / carried if carried else 0.0

    @property
    def credit_stall_fraction(self) -> float | None:
        """Stalled over busy link-hours of the fabrics with credits (None if none has)."""
        if not self.has_credits:
            return None
        busy = self.credit_busy_link_hours
        return self.stalled_link_hours / busy if busy else 0.0

    @property
    def credit_stall_fraction_by_tier(self) -> dict[str, float] | None:
        """Per link tier, stalled over busy link-hours (None if no fabric has credits)."""
        if not self.has_credits:
            return None
        return {
            name: stalled / busy if busy else 0.0
            for name, (busy, stalled) in self.tier_credit_link_hours.items()
        }


def _record(
    changes: list[tuple[float, int, EpochSolution]],
    now: float,
    cluster: int,
    solution: EpochSolution,
) -> None:
    """Append a change; a later one of the same cluster at the same instant replaces it."""
    if changes and changes[-1][:2] == (now, cluster):
        changes[-1] = (now, cluster, solution)
    else:
        changes.append((now, cluster, solution))

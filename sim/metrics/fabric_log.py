"""The fabrics' time integrals: busy, paused, carried and marked link-hours, epoch by epoch.

A metric integrator like :class:`~sim.metrics.accounting.Accounting`: nothing is
sampled on a clock. Each cluster's fabric state holds from one of its epochs to
the next, so the integrals are exact between events.
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

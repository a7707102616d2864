"""Placement: which nodes a job gets.

A placement policy is a class registered in :data:`PLACEMENTS` under the
scenario's ``policies.placement.kind``. It is asked for a job of ``gpus`` GPUs
in a list of candidate clusters and a pool, and answers with the nodes and
the GPUs taken on each, or ``None`` if the job does not fit now. It only
proposes; the marketplace commits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.market.inventory import ClusterInfo, Inventory


@dataclass(frozen=True)
class Proposal:
    """Nodes and GPUs per node proposed for one job."""

    cluster: int
    nodes: np.ndarray
    counts: np.ndarray


class FirstFit:
    """Lowest-numbered nodes first, in the first candidate cluster that fits.

    A job of at most one node's GPUs goes on the first node with room for all
    of them (never split across nodes). A larger job takes whole free nodes,
    plus one partly free node for a remainder that is not a whole node.
    """

    def __init__(self, config: object = None):
        self.config = config

    def place(
        self, inventory: Inventory, clusters: list[ClusterInfo], pool: int, gpus: int
    ) -> Proposal | None:
        """Propose nodes for ``gpus`` GPUs, or ``None`` if they do not fit."""
        for cluster in clusters:
            proposal = self._place_in(inventory, cluster, pool, gpus)
            if proposal is not None:
                return proposal
        return None

    @staticmethod
    def _place_in(
        inventory: Inventory, cluster: ClusterInfo, pool: int, gpus: int
    ) -> Proposal | None:
        if inventory.free_gpus(cluster, pool) < gpus:
            return None
        gpn = cluster.gpus_per_node
        candidates = inventory.nodes_in(cluster, pool)
        free = inventory.free[candidates]
        whole, rem = divmod(gpus, gpn)
        if whole:
            full = np.flatnonzero(free == gpn)
            if len(full) < whole:
                return None
            chosen = full[:whole]
            picks, counts = [chosen], [np.full(whole, gpn, dtype=np.int64)]
            if rem:
                free = free.copy()
                free[chosen] = 0
        else:
            picks, counts = [], []
        if rem:
            fits = np.flatnonzero(free >= rem)
            if len(fits) == 0:
                return None
            picks.append(fits[:1])
            counts.append(np.array([rem], dtype=np.int64))
        return Proposal(cluster.index, candidates[np.concatenate(picks)], np.concatenate(counts))


PLACEMENTS: dict[str, type] = {"first_fit": FirstFit}
"""Placement policies by ``kind``."""


def make_placement(config: object) -> FirstFit:
    """Build the placement policy a scenario names."""
    return PLACEMENTS[config.kind](config)

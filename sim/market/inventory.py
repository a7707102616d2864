"""The provider's GPUs: nodes in clusters, as flat numpy arrays.

Think of a car park whose bays are GPUs grouped in rows (nodes): every row
belongs to one lot (cluster), may be roped off for one customer (a reserved
pool) and may be closed for repair (down). Nodes of a cluster are numbered
contiguously, so a cluster is a slice of every array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHARED = -1
"""Pool id of nodes not carved out for a reservation."""


@dataclass(frozen=True)
class ClusterInfo:
    """Where a cluster's nodes sit in the inventory arrays."""

    index: int
    name: str
    site: str
    first_node: int
    nodes: int
    gpus_per_node: int
    accelerator: str

    @property
    def node_slice(self) -> slice:
        """The cluster's nodes as a slice of the inventory arrays."""
        return slice(self.first_node, self.first_node + self.nodes)

    @property
    def gpus(self) -> int:
        """GPUs in the cluster."""
        return self.nodes * self.gpus_per_node


class Inventory:
    """Free GPUs per node, the pool each node belongs to, and which are down.

    Args:
        clusters: Cluster layouts, in order; their node ranges must be contiguous.
    """

    def __init__(self, clusters: list[ClusterInfo]):
        self.clusters = clusters
        n_nodes = sum(c.nodes for c in clusters)
        self.capacity = np.zeros(n_nodes, dtype=np.int64)
        for c in clusters:
            if c.first_node != sum(x.nodes for x in clusters[: c.index]):
                raise ValueError(f"cluster {c.name!r}: node range is not contiguous")
            self.capacity[c.node_slice] = c.gpus_per_node
        self.free = self.capacity.copy()
        self.pool = np.full(n_nodes, SHARED, dtype=np.int64)
        self.down = np.zeros(n_nodes, dtype=bool)

    @property
    def gpus_total(self) -> int:
        """Every GPU the provider owns."""
        return int(self.capacity.sum())

    def allocate(self, nodes: np.ndarray, counts: np.ndarray) -> None:
        """Take ``counts[i]`` GPUs on ``nodes[i]``.

        Raises:
            RuntimeError: If a node has fewer free GPUs than asked (a GPU would
                be held twice) or is down.
        """
        if np.any(self.free[nodes] < counts) or np.any(self.down[nodes]):
            raise RuntimeError(f"allocation {nodes.tolist()}x{counts.tolist()} exceeds free GPUs")
        self.free[nodes] -= counts

    def release(self, nodes: np.ndarray, counts: np.ndarray) -> None:
        """Give back GPUs taken by :meth:`allocate`."""
        self.free[nodes] += counts
        if np.any(self.free[nodes] > self.capacity[nodes]):
            raise RuntimeError(f"release {nodes.tolist()}x{counts.tolist()} frees unheld GPUs")

    def usable(self, cluster: ClusterInfo, pool: int) -> np.ndarray:
        """Mask over the cluster's nodes that are up and in ``pool``."""
        s = cluster.node_slice
        return (self.pool[s] == pool) & ~self.down[s]

    def whole_free_nodes(self, cluster: ClusterInfo, pool: int) -> np.ndarray:
        """Indices of the cluster's up nodes in ``pool`` with every GPU free."""
        s = cluster.node_slice
        mask = self.usable(cluster, pool) & (self.free[s] == cluster.gpus_per_node)
        return np.flatnonzero(mask) + cluster.first_node

    def free_gpus(self, cluster: ClusterInfo, pool: int) -> int:
        """Free GPUs on the cluster's up nodes in ``pool``."""
        s = cluster.node_slice
        return int(self.free[s][self.usable(cluster, pool)].sum())

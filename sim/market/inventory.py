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
SPARE = -2
"""Pool id of spare nodes, kept aside to replace failed ones."""
PARKED = -3
"""Pool id of nodes powered off to keep a site within its power cap."""


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
    """The type of its first nodes (of every node unless ``node_types`` says otherwise)."""
    node_types: tuple[tuple[str, int], ...] = ()
    """For a cluster that mixes types: each type and its node count, in node order."""

    @property
    def type_blocks(self) -> tuple[tuple[str, int], ...]:
        """Its accelerator types and their node counts, in node order (one block if one type)."""
        return self.node_types or ((self.accelerator, self.nodes),)

    @property
    def types(self) -> list[str]:
        """Its accelerator types, in node order."""
        return [name for name, _ in self.type_blocks]

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
        self.node_cluster = np.repeat(np.arange(len(clusters)), [c.nodes for c in clusters])
        blocks = [b for c in clusters for b in c.type_blocks]
        self.node_type = np.repeat(
            np.array([name for name, _ in blocks], dtype=object), [n for _, n in blocks]
        )
        """Per node, its accelerator type."""
        self.free = self.capacity.copy()
        self.held = np.arange(int(self.capacity.max(initial=0))) >= self.capacity[:, None]
        """Per node and GPU slot, whether it is held (slots past a node's GPUs always are)."""
        self.pool = np.full(n_nodes, SHARED, dtype=np.int64)
        self.down = np.zeros(n_nodes, dtype=bool)
        self.fenced = np.zeros(n_nodes, dtype=bool)
        self.rack = np.arange(n_nodes, dtype=np.int64)
        """Per node, its rack: nodes under the same leaf switches (unique ids)."""
        self.pod = self.node_cluster.copy()
        """Per node, its pod: racks joined without crossing the top tier (unique ids)."""
        self._free_gpus: dict[tuple[int, int], int] = {(c.index, SHARED): c.gpus for c in clusters}
        self._nodes: dict[tuple[int, int], np.ndarray] = {}

    def set_domains(self, cluster: ClusterInfo, rack: np.ndarray, pod: np.ndarray) -> None:
        """Record where the cluster's nodes sit in its fabric (rack and pod of each node).

        Args:
            cluster: The cluster.
            rack: Per node of the cluster, its rack number within the cluster.
            pod: Per node of the cluster, its pod number within the cluster.
        """
        s = cluster.node_slice
        self.rack[s] = cluster.first_node + np.asarray(rack, dtype=np.int64)
        self.pod[s] = cluster.first_node + np.asarray(pod, dtype=np.int64)

    @property
    def gpus_total(self) -> int:
        """Every GPU the provider owns."""
        return int(self.capacity.sum())

    def lowest_free_slots(self, nodes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The GPUs :meth:`allocate` would take: each node's lowest free slots."""
        free_first = np.argsort(self.held[nodes], axis=1, kind="stable")
        return free_first[np.arange(self.held.shape[1]) < counts[:, None]]

    def allocate(
        self, nodes: np.ndarray, counts: np.ndarray, slots: np.ndarray | None = None
    ) -> np.ndarray:
        """Take ``counts[i]`` GPUs on ``nodes[i]`` (all in one cluster and pool).

        Args:
            nodes: The nodes.
            counts: GPUs taken on each.
            slots: Which GPUs, as slots within their nodes in rank order:
                ``counts[0]`` slots of ``nodes[0]``, then ``nodes[1]``'s, ...
                None takes each node's lowest free slots.

        Returns:
            The GPUs taken, as slots in that layout. Give them back to
            :meth:`release`.

        Raises:
            RuntimeError: If a node has fewer free GPUs than asked, a slot is
                held already, repeated or past its node's GPUs (a GPU would be
                held twice), a node is down, or the nodes span clusters or pools.
        """
        key = self._key(nodes)
        if (self.free[nodes] < counts).any() or self.down[nodes].any():
            raise RuntimeError(f"allocation {nodes.tolist()}x{counts.tolist()} exceeds free GPUs")
        rows = np.repeat(nodes, counts)
        if slots is None:
            slots = self.lowest_free_slots(nodes, counts)
        else:
            slots = np.asarray(slots, dtype=np.int64)
            taken = rows * self.held.shape[1] + slots
            if (
                slots.shape != rows.shape
                or np.any((slots < 0) | (slots >= self.held.shape[1]))
                or self.held[rows, slots].any()
                or np.unique(taken).size != taken.size
            ):
                raise RuntimeError(
                    f"allocation {nodes.tolist()}x{counts.tolist()} on slots {slots.tolist()} "
                    "takes a GPU that is held or not there"
                )
        self.held[rows, slots] = True
        self.free[nodes] -= counts
        self._free_gpus[key] -= int(counts.sum())
        return slots

    def release(self, nodes: np.ndarray, counts: np.ndarray, slots: np.ndarray) -> None:
        """Give back GPUs taken by :meth:`allocate` (the slots it returned)."""
        key = self._key(nodes)
        rows = np.repeat(nodes, counts)
        if not self.held[rows, slots].all():
            raise RuntimeError(f"release {nodes.tolist()}x{counts.tolist()} frees unheld GPUs")
        self.held[rows, slots] = False
        self.free[nodes] += counts
        self._free_gpus[key] += int(counts.sum())

    def _key(self, nodes: np.ndarray) -> tuple[int, int]:
        first = int(nodes[0])
        key = (int(self.node_cluster[first]), int(self.pool[first]))
        if len(nodes) > 1 and (
            np.any(self.pool[nodes] != key[1]) or np.any(self.node_cluster[nodes] != key[0])
        ):
            raise RuntimeError(f"nodes {nodes.tolist()} span clusters or pools")
        return key

    def set_pool(self, node: int, pool: int) -> None:
        """Move a whole, idle node into ``pool`` (carve or return a reservation)."""
        node = int(node)
        if self.free[node] != self.capacity[node]:
            raise RuntimeError(f"node {node} changes pool while GPUs on it are held")
        cluster = int(self.node_cluster[node])
        if not self.down[node]:
            self._free_gpus[(cluster, int(self.pool[node]))] -= int(self.free[node])
            key = (cluster, pool)
            self._free_gpus[key] = self._free_gpus.get(key, 0) + int(self.free[node])
        self.pool[node] = pool
        self._nodes.clear()

    def take_down(self, node: int) -> None:
        """Take a whole, idle node out of service (a failure; see :meth:`bring_up`)."""
        node = int(node)
        if self.down[node] or self.free[node] != self.capacity[node]:
            raise RuntimeError(f"node {node} goes down while down already or GPUs on it are held")
        key = (int(self.node_cluster[node]), int(self.pool[node]))
        self._free_gpus[key] -= int(self.free[node])
        self.down[node] = True
        self._nodes.clear()

    def bring_up(self, node: int) -> None:
        """Return a node taken down by :meth:`take_down` to service, in its pool."""
        node = int(node)
        if not self.down[node]:
            raise RuntimeError(f"node {node} is brought up but is not down")
        key = (int(self.node_cluster[node]), int(self.pool[node]))
        self._free_gpus[key] = self._free_gpus.get(key, 0) + int(self.free[node])
        self.down[node] = False
        self._nodes.clear()

    def fence(self, nodes: np.ndarray | list[int]) -> None:
        """Keep job placements off ``nodes``: they are coming free for a whole-node claim."""
        self.fenced[np.asarray(nodes, dtype=np.int64)] = True
        self._nodes.clear()

    def clear_fences(self) -> None:
        """Lift every fence (claims fence again what they still wait for)."""
        if self.fenced.any():
            self.fenced[:] = False
            self._nodes.clear()

    def nodes_in(self, cluster: ClusterInfo, pool: int) -> np.ndarray:
        """Indices of the cluster's up, unfenced nodes in ``pool``, in order: where jobs go."""
        key = (cluster.index, pool)
        nodes = self._nodes.get(key)
        if nodes is None:
            s = cluster.node_slice
            mask = (self.pool[s] == pool) & ~self.down[s] & ~self.fenced[s]
            nodes = np.flatnonzero(mask) + cluster.first_node
            self._nodes[key] = nodes
        return nodes

    def whole_free_nodes(self, cluster: ClusterInfo, pool: int) -> np.ndarray:
        """Indices of the cluster's up nodes in ``pool`` with every GPU free, fenced or not."""
        s = cluster.node_slice
        mask = (self.pool[s] == pool) & ~self.down[s] & (self.free[s] == cluster.gpus_per_node)
        return np.flatnonzero(mask) + cluster.first_node

    def free_gpus(self, cluster: ClusterInfo, pool: int) -> int:
        """Free GPUs on the cluster's up nodes in ``pool``."""
        return self._free_gpus.get((cluster.index, pool), 0)

    def shared_free_gpus(self, cluster: ClusterInfo, excluded: np.ndarray | None) -> int:
        """Free GPUs of the shared pool in ``cluster`` outside ``excluded`` nodes (a node
        mask, as an isolation policy gives it; None: nowhere excluded)."""
        if excluded is None:
            return self.free_gpus(cluster, SHARED)
        nodes = self.nodes_in(cluster, SHARED)
        return int(self.free[nodes[~excluded[nodes]]].sum())

"""Equal-cost paths between hosts of a folded Clos, by arithmetic.

Every shortest path climbs to the lowest layer the two hosts share and comes
straight down, so a flow's class (same server, same leaf, same pod, different
pods: :func:`flow_class`) fixes how many equal-cost paths it has
(:func:`equal_cost_path_count`), and a path is a choice of aggregation switch
and, between pods, of core switch of that plane. :func:`path_links` turns a
choice into link ids from the :class:`~sim.fabric.topology.ClosLayout`, for
whole arrays of flows at once; :mod:`sim.fabric.routing` picks the choices.
"""

from __future__ import annotations

import numpy as np

from sim.fabric.topology import ClosLayout, Topology

CLASS_LOCAL, CLASS_SAME_LEAF, CLASS_SAME_POD, CLASS_CROSS_POD = 0, 1, 2, 3
"""Flow classes: same server or host (no fabric), same leaf, same pod, different pods."""


def checked_hosts(topology: Topology, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, ...]:
    """``src`` and ``dst`` as ``int64`` host indices of this topology, of equal length.

    Raises:
        ValueError: Not 1-D integer arrays of hosts of the topology, or of unequal length.
    """
    arrays = []
    for name, values in (("src", src), ("dst", dst)):
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of host indices, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must hold integer host indices, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= topology.n_hosts):
            bad = arr[(arr < 0) | (arr >= topology.n_hosts)][0]
            raise ValueError(
                f"{name} holds host {bad}, outside 0..{topology.n_hosts - 1} of this topology"
            )
        arrays.append(arr)
    if arrays[0].size != arrays[1].size:
        raise ValueError(
            f"src and dst must have the same length, got {arrays[0].size} and {arrays[1].size}"
        )
    return tuple(arrays)


def flow_class(topology: Topology, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Classify flows by the lowest layer their hosts share.

    Args:
        topology: The fabric.
        src: Source host per flow.
        dst: Destination host per flow.

    Returns:
        ``int8`` array of :data:`CLASS_LOCAL`, :data:`CLASS_SAME_LEAF`,
        :data:`CLASS_SAME_POD` or :data:`CLASS_CROSS_POD`.
    """
    src, dst = checked_hosts(topology, src, dst)
    lay = topology.layout
    leaf_s, leaf_d = lay.leaf_of_host[src], lay.leaf_of_host[dst]
    pod_s, pod_d = lay.pod_of_leaf(leaf_s), lay.pod_of_leaf(leaf_d)
    cls = np.full(src.size, CLASS_CROSS_POD, dtype=np.int8)
    cls[pod_s == pod_d] = CLASS_SAME_POD
    cls[leaf_s == leaf_d] = CLASS_SAME_LEAF
    cls[topology.node_of_host[src] == topology.node_of_host[dst]] = CLASS_LOCAL
    return cls


def equal_cost_path_count(topology: Topology, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Number of equal-cost shortest paths per flow (1 for local and same-leaf flows).

    Args:
        topology: The fabric.
        src: Source host per flow.
        dst: Destination host per flow.

    Returns:
        ``int64`` count per flow.
    """
    return path_counts(topology.layout, flow_class(topology, src, dst))


def path_counts(layout: ClosLayout, cls: np.ndarray) -> np.ndarray:
    """Number of equal-cost paths of each flow class in ``cls``."""
    counts = np.array(
        [1, 1, layout.aggs_per_pod, layout.aggs_per_pod * layout.cores_per_plane], dtype=np.int64
    )
    return counts[cls]


def max_hops(topology: Topology) -> int:
    """Most links on any shortest path: 6 in three-tier fabrics, 4 in two-tier ones."""
    return 6 if topology.layout.cores_per_plane else 4


def path_links(
    topology: Topology, src: np.ndarray, dst: np.ndarray, path_index: np.ndarray
) -> np.ndarray:
    """Link ids of the chosen equal-cost path of every flow.

    Path ``i`` of a same-pod flow goes through aggregation switch ``i``; path
    ``i`` of a cross-pod flow through aggregation ``i // J`` and core
    ``i % J`` of that plane.

    Args:
        topology: The fabric.
        src: Source host per flow.
        dst: Destination host per flow.
        path_index: Chosen path per flow, ``0 <= i < equal_cost_path_count``.

    Returns:
        ``(n_flows, max_hops)`` ``int64`` array of link ids in path order,
        padded with -1.
    """
    src, dst = checked_hosts(topology, src, dst)
    cls = flow_class(topology, src, dst)
    path_index = np.asarray(path_index, dtype=np.int64)
    n_paths = path_counts(topology.layout, cls)
    if path_index.shape != src.shape or np.any((path_index < 0) | (path_index >= n_paths)):
        raise ValueError("path_index must give, per flow, an index below its number of paths")
    return clos_path_links(topology.layout, src, dst, cls, path_index, max_hops(topology))


def clos_path_links(
    lay: ClosLayout,
    src: np.ndarray,
    dst: np.ndarray,
    cls: np.ndarray,
    path_index: np.ndarray,
    hops: int,
) -> np.ndarray:
    """:func:`path_links` on checked hosts, their classes and valid path indices.

    Returns:
        ``(n_flows, hops)`` ``int64`` array of link ids in path order, padded with -1.
    """
    n = src.size
    out = np.full((n, hops), -1, dtype=np.int64)
    j_n = max(lay.cores_per_plane, 1)
    leaf_s, leaf_d = lay.leaf_of_host[src], lay.leaf_of_host[dst]
    fabric = cls != CLASS_LOCAL
    out[fabric, 0] = src[fabric]

    one = cls == CLASS_SAME_LEAF
    out[one, 1] = lay.host_down0 + dst[one]

    two = cls == CLASS_SAME_POD
    a2 = path_index[two]
    out[two, 1] = lay.leaf_up_link(leaf_s[two], a2)
    out[two, 2] = lay.agg_down_link(leaf_d[two], a2)
    out[two, 3] = lay.host_down0 + dst[two]

    three = cls == CLASS_CROSS_POD
    if np.any(three):
        a3, j3 = path_index[three] // j_n, path_index[three] % j_n
        ls, ld = leaf_s[three], leaf_d[three]
        out[three, 1] = lay.leaf_up_link(ls, a3)
        out[three, 2] = lay.agg_up_link(lay.pod_of_leaf(ls), a3, j3)
        out[three, 3] = lay.core_down_link(lay.pod_of_leaf(ld), a3, j3)
        out[three, 4] = lay.agg_down_link(ld, a3)
        out[three, 5] = lay.host_down0 + dst[three]
    return out

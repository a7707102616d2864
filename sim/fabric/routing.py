"""How transports pick among the equal-cost paths between hosts.

In a folded Clos every shortest path climbs to the lowest layer the two hosts
share and comes straight down, so the equal-cost paths are just the choices of
switch on the way up: an aggregation switch ``a`` (``A`` choices) and, between
pods, a core switch ``j`` of plane ``a`` (``J`` choices). :mod:`sim.fabric.paths`
enumerates them arithmetically from a :class:`~sim.fabric.topology.ClosLayout`;
this module picks one (or several) per sub-flow, for whole arrays of flows at
once, and builds the sub-flows' incidence matrix.

How a flow picks its path depends on the transport:

``ecmp``
    RoCE: every switch on the way up hashes the packet's 5-tuple (source and
    destination host, UDP source port, UDP destination port 4791, protocol 17)
    and the queue-pair number with its own seed and takes the next hop modulo
    the number of choices. Like a balls-into-bins game, several flows land on
    the same link while others stay idle. ``qps_per_connection > 1`` splits a
    connection over several queue pairs, each hashed on its own (Meta's
    "Enhanced ECMP + QP scaling").
``adaptive``
    InfiniBand adaptive routing, idealised. IB switches steer packets, not
    flows, so each sub-flow is cut into ``adaptive_chunks`` equal chunks;
    chunk by chunk, in order, each goes on the equal-cost path whose most
    loaded link (load counted in ``load_weight`` per Gb/s of capacity) is
    least loaded, ties broken by the path's total load and then by the lowest
    path index. With one chunk this is a per-flow load-aware path choice.
``dmodk``
    Static destination-mod-k routing (an InfiniBand subnet manager's default
    forwarding tables): the path is a function of the destination only.
``spray``
    The ideal: every sub-flow is spread evenly over all its equal-cost paths
    (packet spraying), giving fractional entries in the incidence matrix.

Whatever the mode, a flow may be pinned to one of its equal-cost paths
(``pinned_path``, numbered as :func:`sim.fabric.paths.path_links` numbers them): all its queue
pairs take that path. This replays the paths another simulator or a real
fabric's hash chose (a traffic file's ``path_index`` column).

Hosts of one server (and a host to itself) use no fabric link at all: their
incidence rows are empty.

The paths themselves are :mod:`sim.fabric.paths`'s arithmetic and the hashes
:mod:`sim.fabric.hashing`'s. The result is a :class:`Routes`, whose
``incidence`` (sub-flows x links, ``scipy.sparse.csr_matrix``) is what
:func:`sim.fabric.solver.max_min_rates` consumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sim.fabric.hashing import flow_hash, hash_choice, mix64, roce_source_port
from sim.fabric.paths import (
    CLASS_CROSS_POD,
    CLASS_LOCAL,
    CLASS_SAME_POD,
    checked_hosts,
    clos_path_links,
    flow_class,
    max_hops,
    path_counts,
)
from sim.fabric.topology import ClosLayout, Topology

ROUTING_MODES: tuple[str, ...] = ("adaptive", "dmodk", "ecmp", "spray")
"""Valid values of the ``mode`` argument of :func:`route`."""

ROCE_UDP_DPORT = 4791
"""The RoCEv2 well-known UDP destination port."""

UDP_PROTOCOL = 17
"""IP protocol number of UDP."""


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True, eq=False)
class Routes:
    """Routed flows: which links each sub-flow crosses.

    Every input flow (a *connection*) becomes ``qps_per_connection``
    consecutive sub-flows (queue pairs), sub-flow ``i * q + r`` being queue
    pair ``r`` of connection ``i``.

    Attributes:
        incidence: ``(n_subflows, n_links)`` CSR matrix; entry = fraction of the
            sub-flow's rate that crosses the link (1 on a single path, less
            where it is split over paths by ``spray`` or ``adaptive`` chunks;
            empty rows for flows that stay inside a server).
        flow_of_subflow: Input flow index of each sub-flow.
        share: Fraction of its connection's bytes each sub-flow carries (``1/q``).
        flow_class: :data:`~sim.fabric.paths.CLASS_LOCAL` .. ``CLASS_CROSS_POD`` per sub-flow.
        n_paths: Equal-cost paths available to each sub-flow.
        path_index: Chosen path per sub-flow; -1 where the sub-flow is split
            over several paths (``spray``, or ``adaptive`` chunks that differ).
        n_flows: Number of input flows.
        qps_per_connection: Sub-flows per input flow.
        mode: The routing mode used.
    """

    incidence: sp.csr_matrix
    flow_of_subflow: np.ndarray
    share: np.ndarray
    flow_class: np.ndarray
    n_paths: np.ndarray
    path_index: np.ndarray
    n_flows: int
    qps_per_connection: int
    mode: str

    @property
    def n_subflows(self) -> int:
        """Number of sub-flows (rows of ``incidence``)."""
        return int(self.flow_of_subflow.size)

    def expand(self, per_flow: np.ndarray, *, split: bool = True) -> np.ndarray:
        """Spread a per-flow quantity over sub-flows.

        Args:
            per_flow: One value per input flow.
            split: Divide by the sub-flow count (for additive quantities such
                as bytes, demand or fair-share weight); False copies.

        Returns:
            One value per sub-flow.
        """
        values = np.asarray(per_flow, dtype=np.float64)
        if values.shape != (self.n_flows,):
            raise ValueError(f"per_flow must have shape ({self.n_flows},), got {values.shape}")
        out = values[self.flow_of_subflow]
        return out * self.share if split else out

    def flow_rates_gbps(
        self, subflow_rates_gbps: np.ndarray, *, even_split: bool = True
    ) -> np.ndarray:
        """Rate of each input flow from the rates of its sub-flows.

        Args:
            subflow_rates_gbps: One rate per sub-flow.
            even_split: True if a message is striped evenly over the queue
                pairs, so the slowest one sets its completion time: the
                connection moves at ``q * min(rate)``. False sums the rates
                (a sender that rebalances bytes across queue pairs).

        Returns:
            One rate per input flow in Gb/s.
        """
        rates = np.asarray(subflow_rates_gbps, dtype=np.float64)
        if rates.shape != (self.n_subflows,):
            raise ValueError(f"rates must have shape ({self.n_subflows},), got {rates.shape}")
        per = rates.reshape(self.n_flows, self.qps_per_connection)
        if even_split:
            return per.min(axis=1) * self.qps_per_connection
        return per.sum(axis=1)


def _ecmp_choice(
    lay: ClosLayout,
    src: np.ndarray,
    dst: np.ndarray,
    cls: np.ndarray,
    qpn: np.ndarray,
    hash_seed: int,
) -> np.ndarray:
    """Per-switch hashing: the source leaf picks the aggregation, that aggregation the core."""
    header = flow_hash(
        [
            src,
            dst,
            roce_source_port(qpn),
            np.full(src.size, ROCE_UDP_DPORT),
            np.full(src.size, UDP_PROTOCOL),
            qpn,
        ],
        seed=hash_seed,
    )
    path = np.zeros(src.size, dtype=np.int64)
    climbing = cls >= CLASS_SAME_POD
    if not np.any(climbing):
        return path
    a_n, j_n = lay.aggs_per_pod, lay.cores_per_plane
    leaf_s = lay.leaf_of_host[src]
    leaf_node = (lay.leaf_node0 + leaf_s).astype(np.uint64)
    agg = hash_choice(mix64(header ^ mix64(leaf_node)), a_n)
    path[climbing] = agg[climbing]
    three = cls == CLASS_CROSS_POD
    if np.any(three):
        agg_node = (lay.agg_node0 + lay.pod_of_leaf(leaf_s) * a_n + agg).astype(np.uint64)
        core = hash_choice(mix64(header ^ mix64(agg_node)), j_n)
        path[three] = agg[three] * j_n + core[three]
    return path


def _dmodk_choice(lay: ClosLayout, dst: np.ndarray, cls: np.ndarray) -> np.ndarray:
    a_n, j_n = lay.aggs_per_pod, max(lay.cores_per_plane, 1)
    agg = dst % a_n
    core = (dst // a_n) % j_n
    path = np.zeros(dst.size, dtype=np.int64)
    path[cls == CLASS_SAME_POD] = agg[cls == CLASS_SAME_POD]
    three = cls == CLASS_CROSS_POD
    path[three] = agg[three] * j_n + core[three]
    return path


def _adaptive_choice(
    topology: Topology,
    src: np.ndarray,
    dst: np.ndarray,
    cls: np.ndarray,
    load_weight: np.ndarray,
    chunks: int,
    pinned: np.ndarray,
) -> np.ndarray:
    """Greedy least-loaded-path placement of every chunk of every sub-flow.

    Each sub-flow needing a choice becomes ``chunks`` consecutive entries of
    weight ``load_weight / chunks``. An entry goes on the candidate path whose
    most loaded link (load over capacity) is least loaded; ties go to the path
    with the least total load (so a sub-flow's chunks take disjoint paths
    while they can), then to the lowest path index.

    Entries are placed in *waves*: every source leaf offers its next entry
    (a leaf's entries keep sub-flow order; at most ``A`` cross-pod entries
    per source pod are taken, earliest first), all offered entries choose at
    once from the current loads, and an entry is accepted only if no earlier
    entry of the wave picked one of the same links. Accepted entries touch
    disjoint links and loads only grow, so each made the choice it would
    have made had the wave been placed one entry at a time (up to the 1e-9
    relative tolerance that calls two loads equal): the result is the
    sequential greedy for an order that interleaves the leaves. Rejected
    entries retry in the next wave; the earliest entry of a wave is always
    accepted, so every wave makes progress.

    Sub-flows pinned to a path (``pinned >= 0``) are not placed: their whole
    load sits on their path from the start, and the others choose around it.

    Returns:
        ``(n_subflows, chunks)`` path indices (0 where there is no choice, the
        pinned path where pinned).
    """
    lay = topology.layout
    a_n, j_n, l_n, p_n = lay.aggs_per_pod, lay.cores_per_plane, lay.n_leaves, lay.n_pods
    j_dim = max(j_n, 1)
    choices = np.zeros((src.size, chunks), dtype=np.int64)
    climbing = cls >= CLASS_SAME_POD
    fixed = np.flatnonzero(climbing & (pinned >= 0))
    choices[fixed] = pinned[fixed, None]
    subs = np.flatnonzero(climbing & (pinned < 0))
    if subs.size == 0:
        return choices

    cap = topology.capacity_gbps
    n_la, n_ac = l_n * a_n, p_n * a_n * j_n
    inv_lu = (1.0 / cap[lay.leaf_up0 : lay.leaf_up0 + n_la]).reshape(l_n, a_n)
    inv_ad = (1.0 / cap[lay.agg_down0 : lay.agg_down0 + n_la]).reshape(l_n, a_n)
    # Core-side loads carry one extra "pod" row of zeros that same-pod entries
    # read, so both flow classes share one code path; it is never written.
    inv_au = np.zeros((p_n + 1, a_n, j_dim))
    inv_cd = np.zeros((p_n + 1, a_n, j_dim))
    if n_ac:
        inv_au[:p_n] = 1.0 / cap[lay.agg_up0 : lay.agg_up0 + n_ac].reshape(p_n, a_n, j_n)
        inv_cd[:p_n] = 1.0 / cap[lay.core_down0 : lay.core_down0 + n_ac].reshape(p_n, a_n, j_n)
    load_lu, load_ad = np.zeros((l_n, a_n)), np.zeros((l_n, a_n))
    load_au, load_cd = np.zeros((p_n + 1, a_n, j_dim)), np.zeros((p_n + 1, a_n, j_dim))
    if fixed.size:
        w, ls, ld = load_weight[fixed], lay.leaf_of_host[src[fixed]], lay.leaf_of_host[dst[fixed]]
        cross = cls[fixed] == CLASS_CROSS_POD
        agg = np.where(cross, pinned[fixed] // j_dim, pinned[fixed])
        np.add.at(load_lu, (ls, agg), w * inv_lu[ls, agg])
        np.add.at(load_ad, (ld, agg), w * inv_ad[ld, agg])
        w, ls, ld, agg = w[cross], ls[cross], ld[cross], agg[cross]
        core, ps, pd = pinned[fixed][cross] % j_dim, lay.pod_of_leaf(ls), lay.pod_of_leaf(ld)
        np.add.at(load_au, (ps, agg, core), w * inv_au[ps, agg, core])
        np.add.at(load_cd, (pd, agg, core), w * inv_cd[pd, agg, core])

    e_sub = np.repeat(subs, chunks)
    n_e = e_sub.size
    e_weight = load_weight[e_sub] / chunks
    e_ls = lay.leaf_of_host[src[e_sub]]
    e_ld = lay.leaf_of_host[dst[e_sub]]
    e_cross = cls[e_sub] == CLASS_CROSS_POD
    e_ps = np.where(e_cross, lay.pod_of_leaf(e_ls), p_n)
    e_pd = np.where(e_cross, lay.pod_of_leaf(e_ld), p_n)
    e_path = np.zeros(n_e, dtype=np.int64)

    queue = np.argsort(e_ls, kind="stable")
    counts = np.bincount(e_ls, minlength=l_n)
    head = np.concatenate([[0], np.cumsum(counts)[:-1]])
    end = head + counts
    # Entries of one source pod mostly want the same least-loaded core links,
    # so few of them are accepted per wave; offering at most A per pod and
    # wave saves the work of computing choices that would be rejected.
    pod_cap = a_n
    n_down_keys = l_n * a_n
    n_core_keys = (p_n + 1) * a_n * j_dim
    while True:
        waiting = np.flatnonzero(head < end)
        if waiting.size == 0:
            break
        wave = np.sort(queue[head[waiting]])
        if wave.size > pod_cap * p_n:
            wave = _cap_per_group(wave, e_ps[wave], pod_cap, p_n)
        ls, ld, ps, pd = e_ls[wave], e_ld[wave], e_ps[wave], e_pd[wave]
        up, down = load_lu[ls], load_ad[ld]
        core_up, core_down = load_au[ps], load_cd[pd]
        worst = np.maximum(np.maximum(core_up, core_down), np.maximum(up, down)[:, :, None])
        total = core_up + core_down + (up + down)[:, :, None]
        path = _least_loaded(worst.reshape(wave.size, -1), total.reshape(wave.size, -1))
        agg, core = path // j_dim, path % j_dim
        cross = e_cross[wave]
        # Leaf uplinks are distinct (one entry per source leaf); check the rest.
        core_key = (ps * a_n + agg) * j_dim + core
        keys = [ld * a_n + agg]
        if np.any(cross):
            unique_self = n_core_keys + np.arange(wave.size)
            keys.append(n_down_keys + np.where(cross, core_key, unique_self))
            keys.append(
                n_down_keys
                + n_core_keys
                + wave.size
                + np.where(cross, (pd * a_n + agg) * j_dim + core, unique_self)
            )
        ok = _first_occurrences(np.concatenate(keys), wave.size)
        if not np.all(ok):
            wave, ls, ld, ps, pd = wave[ok], ls[ok], ld[ok], ps[ok], pd[ok]
            path, agg, core, cross = path[ok], agg[ok], core[ok], cross[ok]
        w = e_weight[wave]
        load_lu[ls, agg] += w * inv_lu[ls, agg]
        load_ad[ld, agg] += w * inv_ad[ld, agg]
        load_au[ps, agg, core] += w * inv_au[ps, agg, core]
        load_cd[pd, agg, core] += w * inv_cd[pd, agg, core]
        e_path[wave] = np.where(cross, path, agg)
        head[ls] += 1
    choices[subs] = e_path.reshape(subs.size, chunks)
    return choices


def _cap_per_group(entries: np.ndarray, group: np.ndarray, cap: int, free_group: int) -> np.ndarray:
    """The first ``cap`` entries of each group (all of ``free_group``), in entry order."""
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    sizes = np.diff(np.r_[starts, sorted_group.size])
    rank = np.arange(sorted_group.size) - np.repeat(starts, sizes)
    keep = (rank < cap) | (sorted_group == free_group)
    return np.sort(entries[order[keep]])


def _least_loaded(worst: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Per row, the column of least ``worst``; ties to least ``total``, then lowest column."""
    best = worst.min(axis=1, keepdims=True)
    tied = worst <= best * (1.0 + 1e-9)
    return np.argmin(np.where(tied, total, np.inf), axis=1)


def _first_occurrences(keys: np.ndarray, n: int) -> np.ndarray:
    """For ``keys`` made of blocks of ``n`` (one key per entry per block), the
    entries none of whose keys appeared at an earlier entry."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeated = np.empty(keys.size, dtype=bool)
    repeated[0] = False
    repeated[1:] = sorted_keys[1:] == sorted_keys[:-1]
    clash = np.zeros(n, dtype=bool)
    clash[order[repeated] % n] = True
    return ~clash


def _pinned_paths(pinned_path: np.ndarray | None, n_flows: int, n_paths: np.ndarray) -> np.ndarray:
    """Check ``pinned_path`` against each flow's number of paths; -1 for none pinned."""
    if pinned_path is None:
        return np.full(n_flows, -1, dtype=np.int64)
    pinned = np.asarray(pinned_path)
    if pinned.shape != (n_flows,) or (pinned.size and not np.issubdtype(pinned.dtype, np.integer)):
        raise ValueError(f"pinned_path must be {n_flows} integers, one per flow")
    bad = np.flatnonzero((pinned < -1) | (pinned >= n_paths))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"pinned_path of flow {i} is {int(pinned[i])}; it has {int(n_paths[i])} "
            f"equal-cost path(s), 0 to {int(n_paths[i]) - 1} (-1: not pinned)"
        )
    return pinned.astype(np.int64)


def _pin(
    lay: ClosLayout,
    src: np.ndarray,
    dst: np.ndarray,
    cls: np.ndarray,
    pinned: np.ndarray,
    incidence: sp.csr_matrix,
    path: np.ndarray,
    hops: int,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The pinned sub-flows' rows replaced by their one path, and their path index."""
    on = pinned >= 0
    links = np.full((src.size, hops), -1, dtype=np.int64)
    links[on] = clos_path_links(lay, src[on], dst[on], cls[on], pinned[on], hops)
    keep = sp.diags((~on).astype(np.float64))
    incidence = (
        keep @ incidence.tocsr() + _single_path_incidence(links, incidence.shape[1])
    ).tocsr()
    incidence.eliminate_zeros()
    incidence.sort_indices()
    return incidence, np.where(on, pinned, path)


def _single_path_incidence(links: np.ndarray, n_links: int) -> sp.csr_matrix:
    mask = links >= 0
    indptr = np.zeros(links.shape[0] + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1), out=indptr[1:])
    indices = links[mask]
    data = np.ones(indices.size)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(links.shape[0], n_links))
    matrix.sort_indices()
    return matrix


def _chunked_incidence(
    lay: ClosLayout,
    src: np.ndarray,
    dst: np.ndarray,
    cls: np.ndarray,
    choices: np.ndarray,
    n_links: int,
    hops: int,
) -> sp.csr_matrix:
    """Incidence of sub-flows split into equal chunks, chunk ``c`` on path ``choices[:, c]``."""
    n, chunks = choices.shape
    if chunks == 1:
        return _single_path_incidence(
            clos_path_links(lay, src, dst, cls, choices[:, 0], hops), n_links
        )
    links = clos_path_links(
        lay,
        np.repeat(src, chunks),
        np.repeat(dst, chunks),
        np.repeat(cls, chunks),
        choices.ravel(),
        hops,
    )
    rows = np.broadcast_to(np.repeat(np.arange(n), chunks)[:, None], links.shape)
    mask = links >= 0
    matrix = sp.csr_matrix(
        (np.full(int(mask.sum()), 1.0 / chunks), (rows[mask], links[mask])), shape=(n, n_links)
    )
    matrix.sum_duplicates()
    return matrix


def _spray_incidence(
    topology: Topology, src: np.ndarray, dst: np.ndarray, cls: np.ndarray
) -> sp.csr_matrix:
    """Fractional incidence: every sub-flow spread evenly over all its paths."""
    lay = topology.layout
    a_n, j_n = lay.aggs_per_pod, lay.cores_per_plane
    rows_l: list[np.ndarray] = []
    cols_l: list[np.ndarray] = []
    vals_l: list[np.ndarray] = []

    def add(rows: np.ndarray, cols: np.ndarray, value: float) -> None:
        rows_b, cols_b = np.broadcast_arrays(rows, cols)
        rows_l.append(rows_b.ravel())
        cols_l.append(cols_b.ravel())
        vals_l.append(np.full(rows_b.size, value))

    fabric = np.flatnonzero(cls != CLASS_LOCAL)
    add(fabric, src[fabric], 1.0)
    add(fabric, lay.host_down0 + dst[fabric], 1.0)
    climbing = np.flatnonzero(cls >= CLASS_SAME_POD)
    aggs = np.arange(a_n)
    leaf_s, leaf_d = lay.leaf_of_host[src[climbing]], lay.leaf_of_host[dst[climbing]]
    add(climbing[:, None], lay.leaf_up_link(leaf_s[:, None], aggs), 1.0 / a_n)
    add(climbing[:, None], lay.agg_down_link(leaf_d[:, None], aggs), 1.0 / a_n)
    cross = np.flatnonzero(cls == CLASS_CROSS_POD)
    if cross.size:
        pod_s = lay.pod_of_leaf(lay.leaf_of_host[src[cross]])[:, None, None]
        pod_d = lay.pod_of_leaf(lay.leaf_of_host[dst[cross]])[:, None, None]
        a3 = np.arange(a_n)[None, :, None]
        j3 = np.arange(j_n)[None, None, :]
        share = 1.0 / (a_n * j_n)
        add(cross[:, None, None], lay.agg_up_link(pod_s, a3, j3), share)
        add(cross[:, None, None], lay.core_down_link(pod_d, a3, j3), share)
    matrix = sp.csr_matrix(
        (np.concatenate(vals_l), (np.concatenate(rows_l), np.concatenate(cols_l))),
        shape=(src.size, topology.n_links),
    )
    matrix.sort_indices()
    return matrix


def route(
    topology: Topology,
    src: np.ndarray,
    dst: np.ndarray,
    *,
    mode: str = "ecmp",
    qps_per_connection: int = 1,
    hash_seed: int = 0,
    connection_id: np.ndarray | None = None,
    load_weight: np.ndarray | None = None,
    adaptive_chunks: int = 8,
    pinned_path: np.ndarray | None = None,
) -> Routes:
    """Route flows (connections) between hosts over the fabric.

    Args:
        topology: The fabric.
        src: Source host per flow (hosts numbered in topology order).
        dst: Destination host per flow.
        mode: One of :data:`ROUTING_MODES` (see the module docstring).
        qps_per_connection: Queue pairs per connection (>= 1); each becomes a
            sub-flow carrying ``1/q`` of the bytes, routed on its own.
        hash_seed: Salt of the ECMP hash (``ecmp`` only).
        connection_id: Stable non-negative id per flow, from which queue-pair
            numbers (``id * q + r``) and hence UDP source ports are derived;
            defaults to the flow index. Keeping ids stable keeps a
            connection's ECMP paths stable when other flows come and go.
        load_weight: Per-flow load the ``adaptive`` mode counts (e.g. bytes or
            demand); defaults to 1 (count flows). Split evenly over sub-flows.
        adaptive_chunks: Pieces each sub-flow is cut into under ``adaptive``
            (>= 1), each placed on its own least-loaded path. InfiniBand
            adaptive routing steers packets, not flows, so one queue pair
            spreads over several paths; 1 models a per-flow path choice.
        pinned_path: Per flow, the equal-cost path all its queue pairs take
            (``0 <= i < equal_cost_path_count``, numbered as in
            :func:`sim.fabric.paths.path_links`), or -1 to route it by ``mode``; default: none
            pinned.

    Returns:
        The routes, with the sub-flow x link incidence matrix.

    Raises:
        ValueError: On a bad argument; the message names it.
    """
    if mode not in ROUTING_MODES:
        raise ValueError(f"mode must be one of {', '.join(ROUTING_MODES)}; got {mode!r}")
    if (
        isinstance(qps_per_connection, bool)
        or not isinstance(qps_per_connection, int | np.integer)
        or qps_per_connection < 1
    ):
        raise ValueError(f"qps_per_connection must be an integer >= 1, got {qps_per_connection!r}")
    if isinstance(hash_seed, bool) or not isinstance(hash_seed, int | np.integer):
        raise ValueError(f"hash_seed must be an integer, got {hash_seed!r}")
    if (
        isinstance(adaptive_chunks, bool)
        or not isinstance(adaptive_chunks, int | np.integer)
        or adaptive_chunks < 1
    ):
        raise ValueError(f"adaptive_chunks must be an integer >= 1, got {adaptive_chunks!r}")
    src, dst = checked_hosts(topology, src, dst)
    n_flows = src.size
    q = int(qps_per_connection)
    if connection_id is None:
        conn = np.arange(n_flows, dtype=np.int64)
    else:
        conn = np.asarray(connection_id)
        if conn.shape != (n_flows,) or (conn.size and not np.issubdtype(conn.dtype, np.integer)):
            raise ValueError(f"connection_id must be {n_flows} integers, one per flow")
        if conn.size and conn.min() < 0:
            raise ValueError("connection_id must be non-negative")
        conn = conn.astype(np.int64)
    if load_weight is None:
        weight = np.ones(n_flows)
    else:
        weight = np.asarray(load_weight, dtype=np.float64)
        if weight.shape != (n_flows,) or not np.all(np.isfinite(weight)) or np.any(weight < 0):
            raise ValueError(f"load_weight must be {n_flows} finite non-negative numbers")

    flow_of = np.repeat(np.arange(n_flows, dtype=np.int64), q)
    sub_src, sub_dst = src[flow_of], dst[flow_of]
    qpn = conn[flow_of] * q + np.tile(np.arange(q, dtype=np.int64), n_flows)
    lay = topology.layout
    cls = flow_class(topology, sub_src, sub_dst)
    n_paths = path_counts(lay, cls)
    pinned = _pinned_paths(pinned_path, n_flows, n_paths[::q])[flow_of]

    hops = max_hops(topology)
    if mode == "spray":
        incidence = _spray_incidence(topology, sub_src, sub_dst, cls)
        path = np.full(sub_src.size, -1, dtype=np.int64)
    elif mode == "adaptive":
        choices = _adaptive_choice(
            topology, sub_src, sub_dst, cls, weight[flow_of] / q, int(adaptive_chunks), pinned
        )
        incidence = _chunked_incidence(lay, sub_src, sub_dst, cls, choices, topology.n_links, hops)
        single = np.all(choices == choices[:, :1], axis=1)
        path = np.where(single, choices[:, 0], -1)
    else:
        if mode == "ecmp":
            path = _ecmp_choice(lay, sub_src, sub_dst, cls, qpn, int(hash_seed))
        else:
            path = _dmodk_choice(lay, sub_dst, cls)
        incidence = _single_path_incidence(
            clos_path_links(lay, sub_src, sub_dst, cls, path, hops), topology.n_links
        )
    if np.any(pinned >= 0):
        incidence, path = _pin(lay, sub_src, sub_dst, cls, pinned, incidence, path, hops)
    return Routes(
        incidence=incidence,
        flow_of_subflow=flow_of,
        share=np.full(flow_of.size, 1.0 / q),
        flow_class=cls,
        n_paths=n_paths,
        path_index=path,
        n_flows=n_flows,
        qps_per_connection=q,
        mode=mode,
    )

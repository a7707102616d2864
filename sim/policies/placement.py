"""Placement: which nodes, and which GPUs of them, a job gets.

A placement policy is a class registered in :data:`PLACEMENTS` under the
scenario's ``policies.placement.kind``. It is asked for a job of ``gpus`` GPUs
in a list of candidate clusters and a pool, and answers with the nodes, the
GPUs taken on each and, if it cares, which GPU slots in rank order; or
``None`` if the job does not fit now. It only proposes; the marketplace
commits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sim.market.inventory import SHARED, ClusterInfo, Inventory


@dataclass(frozen=True)
class Proposal:
    """Nodes and GPUs per node proposed for one job.

    ``slots`` are the GPUs within their nodes in rank order: ``counts[0]``
    slots of ``nodes[0]``, then ``nodes[1]``'s, ...; None lets the inventory
    take each node's lowest free slots.
    """

    cluster: int
    nodes: np.ndarray
    counts: np.ndarray
    slots: np.ndarray | None = None


@dataclass(frozen=True)
class Request:
    """What a job asks of a placement policy."""

    gpus: int
    """GPUs wanted."""
    waited_hours: float = math.inf
    """How long the job has queued (a policy may hold out for a better placement)."""
    tp: int = 1
    """The job's tensor-parallel degree: ranks ``0..tp-1``, ``tp..2tp-1``, ...
    exchange the most traffic (see :mod:`sim.workloads.training`)."""


class PlacementPolicy(Protocol):
    """What the marketplace asks a placement policy."""

    wait_hours: float
    """How long a job may wait for a better placement (0: it takes what fits now)."""

    def place(
        self,
        inventory: Inventory,
        clusters: list[ClusterInfo],
        pool: int,
        gpus: int,
        waited_hours: float = math.inf,
        excluded: np.ndarray | None = None,
        tp: int = 1,
    ) -> Proposal | None:
        """Propose nodes for ``gpus`` GPUs, or None if they do not fit (see
        :meth:`FirstFit.place`)."""
        ...


class FirstFit:
    """Lowest-numbered nodes first, in the first candidate cluster that fits.

    A job of at most one node's GPUs goes on the first node with room for all
    of them (never split across nodes). A larger job takes whole free nodes,
    plus one partly free node for a remainder that is not a whole node.
    """

    def __init__(self, config: object = None):
        self.config = config

    wait_hours = 0.0
    """How long a job may wait for a better placement (see :class:`TopologyAware`)."""

    def place(
        self,
        inventory: Inventory,
        clusters: list[ClusterInfo],
        pool: int,
        gpus: int,
        waited_hours: float = math.inf,
        excluded: np.ndarray | None = None,
        tp: int = 1,
    ) -> Proposal | None:
        """Propose nodes for ``gpus`` GPUs, or ``None`` if they do not fit.

        Args:
            inventory: The provider's nodes.
            clusters: Candidate clusters, in order.
            pool: The pool the job draws from.
            gpus: GPUs wanted.
            waited_hours: How long the job has queued (a policy may hold out
                for a better placement for a while).
            excluded: Per node of the inventory, whether the job must keep off
                it (the isolation policy's answer); None for no node.
            tp: The job's tensor-parallel degree (1 if it has no traffic model).
        """
        request = Request(gpus, waited_hours, tp)
        for cluster in clusters:
            if inventory.free_gpus(cluster, pool) < gpus:
                continue
            candidates = inventory.nodes_in(cluster, pool)
            if excluded is not None:
                candidates = candidates[~excluded[candidates]]
            free = inventory.free[candidates]
            proposal = self._choose(inventory, cluster, candidates, free, request)
            if proposal is not None:
                return proposal
        return None

    def _choose(
        self,
        inventory: Inventory,
        cluster: ClusterInfo,
        candidates: np.ndarray,
        free: np.ndarray,
        request: Request,
    ) -> Proposal | None:
        """Nodes of ``candidates`` (with ``free`` GPUs each) for the job, or None."""
        gpn = cluster.gpus_per_node
        whole, rem = divmod(request.gpus, gpn)
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


class TopologyAware(FirstFit):
    """The fewest pods and racks, so a job's collectives cross as few tiers as they can.

    Jobs that share no rack and no pod share no fabric link on a Clos whose
    racks are whole (two tiers inside a pod), so besides keeping collectives
    local this keeps jobs from slowing each other.

    - Up to one node's GPUs: the node with the fewest free GPUs that fit them
      (best fit), so whole nodes stay free for larger jobs.
    - Whole nodes: the pod with the fewest free whole nodes that still holds
      them all; if no pod does, the pods with the most free whole nodes,
      largest first, until the job fits. Inside a pod, whole free racks
      first, then the racks with the most free nodes.
    - A remainder of less than a node goes, best fit, on a node in one of
      the job's pods if it can.

    Nodes are handed out in (pod, rack, node) order, which is rank order.

    With ``pod_wait``, a job that fits in a pod by size but finds no pod with
    room is not placed until it has waited that long (Slurm's
    ``--switches=1@time``); then it spans pods.
    """

    def __init__(self, config: object = None):
        super().__init__(config)
        self.wait_hours = float(getattr(config, "pod_wait", 0.0) or 0.0)

    def _choose(
        self,
        inventory: Inventory,
        cluster: ClusterInfo,
        candidates: np.ndarray,
        free: np.ndarray,
        request: Request,
    ) -> Proposal | None:
        """Nodes of ``candidates`` (with ``free`` GPUs each) for the job, or None."""
        gpn = cluster.gpus_per_node
        whole, rem = divmod(request.gpus, gpn)
        picks, counts = [], []
        pods_used = np.zeros(0, dtype=np.int64)
        if whole:
            full = candidates[free == gpn]
            if full.size < whole:
                return None
            pod = inventory.pod[full]
            if request.waited_hours < self.wait_hours:
                pod_size = np.unique(inventory.pod[candidates], return_counts=True)[1].max()
                if whole <= pod_size and np.unique(pod, return_counts=True)[1].max() < whole:
                    return None  # wait for a pod with room
            chosen = fewest_domains(full, pod, inventory.rack[full], whole)
            picks.append(chosen)
            counts.append(np.full(whole, gpn, dtype=np.int64))
            pods_used = np.unique(inventory.pod[chosen])
            free = np.where(np.isin(candidates, chosen), 0, free)
        if rem:
            fits = np.flatnonzero(free >= rem)
            if fits.size == 0:
                return None
            near = fits[np.isin(inventory.pod[candidates[fits]], pods_used)]
            pool_fits = near if near.size else fits
            # Best fit: the fewest free GPUs, then the lowest node.
            best = pool_fits[np.lexsort((pool_fits, free[pool_fits]))[0]]
            picks.append(candidates[[best]])
            counts.append(np.array([rem], dtype=np.int64))
        return Proposal(cluster.index, np.concatenate(picks), np.concatenate(counts))


class _InOrder(FirstFit):
    """Whole free nodes in a subclass's order, then a node for the remainder.

    A subclass gives ``_order(inventory, nodes)``, the free ``nodes`` in the
    order they are handed out, and ``_remainder_keys(free, nodes)``, the
    ``np.lexsort`` keys (last one primary) that rank nodes for a remainder.
    """

    _order: Callable[[Inventory, np.ndarray], np.ndarray]
    _remainder_keys: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]

    def _choose(
        self,
        inventory: Inventory,
        cluster: ClusterInfo,
        candidates: np.ndarray,
        free: np.ndarray,
        request: Request,
    ) -> Proposal | None:
        """Nodes of ``candidates`` (with ``free`` GPUs each) for the job, or None."""
        gpn = cluster.gpus_per_node
        whole, rem = divmod(request.gpus, gpn)
        picks, counts = [], []
        if whole:
            full = candidates[free == gpn]
            if full.size < whole:
                return None
            chosen = np.sort(self._order(inventory, full)[:whole])
            picks.append(chosen)
            counts.append(np.full(whole, gpn, dtype=np.int64))
            free = np.where(np.isin(candidates, chosen), 0, free)
        if rem:
            fits = np.flatnonzero(free >= rem)
            if fits.size == 0:
                return None
            best = fits[np.lexsort(self._remainder_keys(free[fits], fits))[0]]
            picks.append(candidates[[best]])
            counts.append(np.array([rem], dtype=np.int64))
        return Proposal(cluster.index, np.concatenate(picks), np.concatenate(counts))


class Pack(_InOrder):
    """Fill what is already in use, so that whole racks and pods stay free.

    - Up to one node's GPUs: the node with the fewest free GPUs that fit
      them (best fit).
    - Whole nodes: free nodes in the pods with the fewest free nodes first,
      in them the racks with the fewest free nodes first: partly used racks
      fill up before a whole rack is broken into.
    - A remainder of less than a node: best fit among the rest.
    """

    @staticmethod
    def _order(inventory: Inventory, nodes: np.ndarray) -> np.ndarray:
        return _packed(inventory, nodes)

    @staticmethod
    def _remainder_keys(free: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, ...]:
        return nodes, free  # the fewest free GPUs, then the lowest node


class Spread(_InOrder):
    """Spread a job over as many racks and pods as it can (separate failure domains).

    - Up to one node's GPUs: the node with the most free GPUs (worst fit).
    - Whole nodes: one free node per rack, the racks taken in turn across
      the pods (the first rack with room in each pod, then the second, ...),
      before any rack gives a second node.
    - A remainder of less than a node: worst fit among the rest.

    The price is traffic: a spread job's collectives cross the spines (and
    the pods' aggregation layer) that a packed one keeps inside a rack.
    """

    @staticmethod
    def _order(inventory: Inventory, nodes: np.ndarray) -> np.ndarray:
        return _spread(inventory, nodes)

    @staticmethod
    def _remainder_keys(free: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, ...]:
        return nodes, -free  # the most free GPUs, then the lowest node


class RailAligned(TopologyAware):
    """The same GPU slots on every node of a job, so its rings stay on their rails.

    On a rail-optimised fabric GPU slot ``r`` of every node of a rail group
    hangs off rail switch ``r``: traffic between slot ``r`` of two nodes
    crosses that one switch, between different slots it crosses a spine. A
    ring snakes through a job's nodes (:mod:`sim.workloads.training`), so a
    job holding the same slots on each node keeps every hop between nodes on
    one rail. Whole nodes do; a job of a whole node and a remainder does not:
    the remainder's GPUs sit on some rails only, and the rings through them
    reach the whole node's GPUs on the others through the spines.

    - A job of ``gpus = k * c`` GPUs takes ``c`` GPUs on each of ``k`` nodes,
      the same ``c`` slots on every node, for the largest ``c`` up to a node
      that is a multiple of its ``tp`` (tensor groups stay inside a node)
      and divides ``gpus``: whole nodes when they are free (in the fewest
      pods and racks, as ``topology_aware``), else a window of ``c`` slots
      free on ``k`` nodes (partly used nodes first, so whole nodes stay
      whole; in the fewest pods and racks, then the fullest nodes).
    - A job of at most one node, or one no such shape fits, is placed as by
      ``topology_aware`` (whole nodes and a remainder).

    The price is sharing: a job spread over partly used nodes shares them
    (and their NVLink-free neighbours' fabric links) with other jobs.
    """

    def _choose(
        self,
        inventory: Inventory,
        cluster: ClusterInfo,
        candidates: np.ndarray,
        free: np.ndarray,
        request: Request,
    ) -> Proposal | None:
        """Nodes and slots of ``candidates`` (with ``free`` GPUs each) for the job, or None."""
        gpn, gpus, tp = cluster.gpus_per_node, request.gpus, request.tp
        if gpus > gpn and gpn % tp == 0 and gpus % tp == 0:
            for per_node in range(gpn, tp - 1, -tp):
                if gpus % per_node:
                    continue
                if per_node == gpn:
                    proposal = super()._choose(inventory, cluster, candidates, free, request)
                    if proposal is not None:
                        return proposal
                    continue
                # Partly used nodes first, so that whole nodes stay whole.
                want = gpus // per_node
                found = _common_window(inventory, candidates[free < gpn], per_node, want)
                if found is None:
                    found = _common_window(inventory, candidates, per_node, want)
                if found is not None:
                    nodes, first_slot = found
                    slots = (first_slot + np.arange(per_node)[None, :]).repeat(nodes.size, 0)
                    counts = np.full(nodes.size, per_node, dtype=np.int64)
                    return Proposal(cluster.index, nodes, counts, slots.reshape(-1))
        return super()._choose(inventory, cluster, candidates, free, request)


def _common_window(
    inventory: Inventory, candidates: np.ndarray, width: int, want: int
) -> tuple[np.ndarray, int] | None:
    """``want`` nodes of ``candidates`` with the same ``width`` slots free.

    Of the windows of consecutive slots free on enough nodes, the one whose
    nodes lie in the fewest racks, then have the fewest free GPUs, then the
    lowest offset. Returns the nodes (in order) and the window's first slot,
    or None.
    """
    nodes = candidates[inventory.free[candidates] >= width]
    if nodes.size < want:
        return None
    open_slots = ~inventory.held[nodes]
    # fits[i, o]: slots o .. o + width - 1 of node i are all free.
    run = np.cumsum(np.pad(open_slots, ((0, 0), (1, 0))), axis=1)
    fits = run[:, width:] - run[:, :-width] == width
    best: tuple[tuple[int, int, int], np.ndarray, int] | None = None  # key, nodes, offset
    for offset in np.flatnonzero(fits.sum(axis=0) >= want):
        eligible = nodes[fits[:, offset]]
        rack, pod = inventory.rack[eligible], inventory.pod[eligible]
        chosen = fewest_domains(eligible, pod, rack, want, inventory.free[eligible])
        key = (np.unique(inventory.rack[chosen]).size, int(inventory.free[chosen].sum()), offset)
        if best is None or key < best[0]:
            best = (key, chosen, int(offset))
    return None if best is None else (best[1], best[2])


def _packed(inventory: Inventory, nodes: np.ndarray) -> np.ndarray:
    """Free ``nodes`` ordered fullest pod, then fullest rack, then node."""
    rack, pod = inventory.rack[nodes], inventory.pod[nodes]
    _, rack_index, per_rack = np.unique(rack, return_inverse=True, return_counts=True)
    _, pod_index, per_pod = np.unique(pod, return_inverse=True, return_counts=True)
    return nodes[np.lexsort((nodes, rack, per_rack[rack_index], pod, per_pod[pod_index]))]


def _spread(inventory: Inventory, nodes: np.ndarray) -> np.ndarray:
    """Free ``nodes`` one per rack in turn, the racks taken in turn across the pods."""
    rack, pod = inventory.rack[nodes], inventory.pod[nodes]
    order = np.lexsort((nodes, rack))
    rack_sorted = rack[order]
    # Each node's place among its rack's free nodes (0 for the first).
    starts = np.flatnonzero(np.r_[True, rack_sorted[1:] != rack_sorted[:-1]])
    in_rack = np.empty(nodes.size, dtype=np.int64)
    in_rack[order] = np.arange(nodes.size) - np.repeat(starts, np.diff(np.r_[starts, nodes.size]))
    # Each rack's place among its pod's racks that have a free node.
    racks, first = np.unique(rack, return_index=True)
    rack_pod = pod[first]
    by_pod = np.lexsort((racks, rack_pod))
    pod_sorted = rack_pod[by_pod]
    pod_starts = np.flatnonzero(np.r_[True, pod_sorted[1:] != pod_sorted[:-1]])
    rack_rank = np.empty(racks.size, dtype=np.int64)
    rack_rank[by_pod] = np.arange(racks.size) - np.repeat(
        pod_starts, np.diff(np.r_[pod_starts, racks.size])
    )
    in_pod = rack_rank[np.searchsorted(racks, rack)]
    return nodes[np.lexsort((nodes, pod, in_pod, in_rack))]


def fewest_domains(
    nodes: np.ndarray,
    pod: np.ndarray,
    rack: np.ndarray,
    want: int,
    free: np.ndarray | None = None,
) -> np.ndarray:
    """``want`` of ``nodes`` in the fewest pods, then racks, in rank order.

    Within a rack the nodes with the fewest ``free`` GPUs go first (the
    lowest first if ``free`` is None, as when all are wholly free).
    """
    pods, per_pod = np.unique(pod, return_counts=True)
    fitting = per_pod >= want
    if fitting.any():
        # Best fit: the pod the job fills most; ties to the lowest pod.
        chosen_pods = pods[fitting][np.argmin(per_pod[fitting])][None]
    else:
        order = np.lexsort((pods, -per_pod))
        need = np.searchsorted(np.cumsum(per_pod[order]), want) + 1
        chosen_pods = np.sort(pods[order[:need]])
    inside = np.isin(pod, chosen_pods)
    nodes, pod, rack = nodes[inside], pod[inside], rack[inside]
    fullest = np.zeros(nodes.size, dtype=np.int64) if free is None else free[inside]
    _, rack_index, per_rack = np.unique(rack, return_inverse=True, return_counts=True)
    _, pod_index, pod_free = np.unique(pod, return_inverse=True, return_counts=True)
    # The fullest pods first, and in each the racks with the most free nodes.
    order = np.lexsort((nodes, fullest, rack, -per_rack[rack_index], pod, -pod_free[pod_index]))
    # Handed out in node order, which is (pod, rack, node) order: rank neighbours share racks.
    return np.sort(nodes[order[:want]])


def take_whole_nodes(
    inventory: Inventory,
    clusters: list[ClusterInfo],
    wanted: int,
    *,
    compact: bool,
    accelerator: str | None = None,
    excluded: np.ndarray | None = None,
) -> list[int]:
    """Up to ``wanted`` whole free nodes of the shared pool, chosen to keep racks whole.

    Whole-node claims (a reserved block, the inference fleet) take these; the
    caller commits them.

    Args:
        inventory: The provider's nodes.
        clusters: Where to look, in order.
        wanted: How many nodes.
        compact: Take whole racks in the fewest pods (a reserved block,
            whose jobs then share no rack with anyone else); otherwise
            fill the holes of partly taken racks and pods first (the
            inference fleet, which sends nothing over the fabric), leaving
            whole racks to jobs.
        accelerator: Only nodes of this type (None: any).
        excluded: Nodes the claim must keep off (an isolation policy's mask), or None.
    """
    taken: list[int] = []
    for cluster in clusters:
        need = wanted - len(taken)
        if need <= 0:
            break
        free = inventory.whole_free_nodes(cluster, SHARED)
        if accelerator is not None:
            free = free[inventory.node_type[free] == accelerator]
        if excluded is not None:
            free = free[~excluded[free]]
        if free.size == 0:
            continue
        rack, pod = inventory.rack[free], inventory.pod[free]
        if compact:
            chosen = fewest_domains(free, pod, rack, min(need, free.size))
        else:
            _, rack_at, per_rack = np.unique(rack, return_inverse=True, return_counts=True)
            _, pod_at, per_pod = np.unique(pod, return_inverse=True, return_counts=True)
            order = np.lexsort((free, per_rack[rack_at], per_pod[pod_at]))
            chosen = free[order[:need]]
        taken.extend(int(n) for n in chosen)
    return taken


PLACEMENTS: dict[str, type[PlacementPolicy]] = {
    "first_fit": FirstFit,
    "pack": Pack,
    "rail_aligned": RailAligned,
    "spread": Spread,
    "topology_aware": TopologyAware,
}
"""Placement policies by ``kind``."""


def make_placement(config: object) -> PlacementPolicy:
    """Build the placement policy a scenario names."""
    return PLACEMENTS[config.kind](config)

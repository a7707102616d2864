"""A training job's collectives on concrete GPUs: its network flows and iteration time.

A job's parallelism layout (tensor ``tp``, pipeline ``pp``, data ``dp`` and
expert ``ep`` parallel degrees), placed on concrete GPUs, turns into (1) the
inter-node flows its collectives need and (2) its iteration time given the rate
each flow gets from a fabric solver. The fabric model routes the flows of every
job, solves the rates for all of them together, then asks each job's plan for
``iteration_s(rates)``; the job's slowdown is that over
``iteration_s(ideal_rates_gbps())``.

Ranks and groups
    ``n`` GPUs, ``dp = n / (tp * pp)`` (``ep`` must divide ``dp``). Megatron
    rank order: rank ``t + tp * (d + dp * p)`` for tensor index ``t``, data
    index ``d`` and pipeline stage ``p`` runs on ``gpus[rank]``, on node
    ``gpu // gpus_per_node``. A TP group fixes ``(d, p)``, a DP group fixes
    ``(t, p)``, a PP chain fixes ``(t, d)``, and an EP group fixes ``(t, p)``
    with ``d`` in a block of ``ep`` consecutive data indices.

Message sizes (``b`` sequences per microbatch, ``s`` tokens per sequence,
``h`` hidden size, ``L`` layers, ``m`` microbatches, ``B`` bytes per value)
    - activation ``A = b * s * h * B`` bytes;
    - TP: 4 all-reduces of ``A`` per layer of the stage (``L / pp``) per
      microbatch (2 forward, 2 backward): ``4 * (L / pp) * m`` calls;
    - PP: ``A`` forward and ``A`` backward across every stage boundary per
      microbatch: ``2 * m`` point-to-point transfers;
    - DP: the rank's shard of the gradients, ``S = B * P / (tp * pp)``:
      one all-reduce (``allreduce``), or one reduce-scatter and two
      all-gathers (``fsdp``: gradients, then parameters forward and backward);
    - EP (mixture of experts, ``ep > 1``): 4 all-to-alls per layer of the
      stage per microbatch (dispatch and combine, forward and backward), each
      rank sending ``A * top_k`` bytes spread evenly over its group.

Compute
    ``6 * Pa * m * b * s / (tp * pp)`` FLOPs per GPU per iteration (``Pa``
    the parameters active per token) at ``accelerator_tflops * mfu``, times
    ``1 + (pp - 1) / m`` for the 1F1B pipeline bubble.

The collective library, as NCCL runs it (:class:`CollectiveLibrary`)
    A ring or tree collective runs on ``channels_per_nic`` *channels*: each
    channel is its own copy of the ring (the same order: NCCL duplicates the
    rings it finds, ``ncclTopoDupChannels`` in ``src/graph/search.cc`` and
    ``ncclTopoPostset`` in ``src/graph/connect.cc``) with its own network
    connection on every hop (collective connections are never shared,
    ``src/transport/net.cc``), and a call's buffer is split evenly over the
    channels. Every connection has ``qps_per_connection`` queue pairs
    (``NCCL_IB_QPS_PER_CONNECTION``, default 1 in ``src/transport/net_ib/
    connect.cc``), and its messages go to them in turn
    (``NCCL_IB_SPLIT_DATA_ON_QPS`` = 0, the default: one whole message per
    queue pair, round robin), so every queue pair carries the same share of
    the bytes. On RoCE each queue pair is its own flow for ECMP: NCCL leaves
    the flow label 0, so the NIC derives the UDP source port from the queue
    pair numbers. So a hop between nodes carries ``channels_per_nic *
    qps_per_connection`` equal queue pairs (a flow's :attr:`TrainingPlan.
    queue_pairs`); point-to-point transfers and all-to-all pairs carry one
    connection of ``qps_per_connection`` queue pairs. The defaults are
    NCCL's on Meta's H100 clusters, the baseline of Meta's QP-scaling
    result (see :data:`NCCL_CHANNELS_PER_NIC`).

    What gates a call: a connection moves at ``queue pairs x`` the rate of
    its slowest queue pair (equal messages in turn, so the slowest finishes
    last); a channel's ring moves at its slowest hop (NCCL's buffer slots,
    ``NCCL_STEPS`` per connection, hold every hop to the pace of the one
    that drains slowest); the call ends when every channel of every group
    has moved its share. Each of these carries an equal share of the call,
    so the call runs at the rate of the collective's slowest flow, ``r``
    below. The rates themselves are a fluid steady state over many calls
    (see :mod:`sim.fabric.network`): a channel that finishes first waits for
    the slowest before the next call, so on average every queue pair of a
    collective moves at the collective's pace.

Time of one collective call on groups of ``k`` ranks and ``S`` bytes
    All groups of a collective run at once and the iteration waits for the
    slowest, so ``r`` is the minimum rate over every hop of every group: the
    NVLink rate for a hop inside a node, the flow's fabric rate otherwise
    (its queue pairs times the rate of its slowest one).
    ``a`` is ``hop_latency_us`` if any hop crosses nodes, else 0.

    - ring all-reduce: ``2 (k-1)/k * S / r + 2 (k-1) a``. A ring visits the
      group's nodes in rank order and, as NCCL's rings do, every second
      node's GPUs in reverse (a snake), so that it enters and leaves a node
      on the same rail: on a rail-optimised fabric a job of whole nodes then
      keeps its rings off the spines;
    - tree all-reduce (NCCL's pipelined binary tree over the group in rank
      order, rank ``i``'s parent ``(i-1) // 2``; reduce goes up, broadcast
      down, so every edge is a flow in both directions):
      ``2 S / r + 2 ceil(log2 k) a``;
    - reduce-scatter, all-gather (ring): ``(k-1)/k * S / r + (k-1) a``;
    - all-to-all: every ordered pair of distinct ranks moves ``S / k``; a
      pair inside a node gets ``nvlink / (intra-node peers of its source)``:
      ``S / k / r + a``;
    - point-to-point (PP): ``S / r`` (no latency term).

    The ``all_reduce`` algorithm applies to TP and DP all-reduces alike.
    Communication per iteration is the sum over collectives of calls times
    time per call; ``overlap`` of it may hide under compute:
    ``exposed = max((1 - overlap) * comm, comm - compute)`` and
    ``iteration = compute + exposed``.

Flows and ideal rates
    The flows are the distinct ordered inter-node ``(src GPU, dst GPU)`` pairs
    of all hops, sorted; traffic inside a node never becomes a flow. A pair
    that serves several collectives is one flow with the most connections any
    of them opens (the collectives are taken to be on the wire at once). The
    ideal rates are the job alone on a non-blocking fabric: only each GPU's
    NIC (``nic_gbps`` up and down) limits its flows, and a NIC serves its
    queue pairs in turn: max-min fair shares weighted by each flow's queue
    pairs.

Rates are in Gb/s (1e9 bit/s), sizes in bytes. Everything is deterministic.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sim.fabric.solver import max_min_rates

COLLECTIVE_NAMES = ("tp", "pp", "dp", "ep")
"""Names of the collectives a plan may hold, in the order they are built."""

COLLECTIVE_KINDS = (
    "all_reduce_ring",
    "all_reduce_tree",
    "reduce_scatter",
    "all_gather",
    "all_to_all",
    "p2p",
)
"""Kinds of collective and how their time per call is computed."""

ALL_REDUCE_ALGORITHMS = ("ring", "tree")
DATA_PARALLEL_MODES = ("allreduce", "fsdp")

CHANNELED_KINDS = frozenset({"all_reduce_ring", "all_reduce_tree", "reduce_scatter", "all_gather"})
"""Kinds that run on the library's channels; point-to-point and all-to-all use one connection."""

NCCL_CHANNELS_PER_NIC = 4
"""Channels NCCL runs through a NIC for a ring whose node has one GPU of the communicator.

As we read NCCL's topology search (2.2x, ``src/graph/search.cc`` and
``src/graph/connect.cc``): on Hopper the ring search finds one channel at the
speed of a 400 Gb/s NIC (48 GB/s), ``ncclTopoDupChannels`` doubles it (the
channel has at least 25 GB/s) and ``ncclTopoPostset`` doubles the channels
again: 4. Had the search channel stayed at NIC speed, the "4 compute channels
per search channel" rule for fewer than 8 GPUs per node would give 4 as well.
A data-parallel group of a job with ``tp = 8`` (one GPU per node, Meta's
layout) is such a communicator. ``NCCL_MIN_NCHANNELS`` raises the count.
"""

MAX_CHANNELS = 64
"""NCCL's most channels per communicator (``MAXCHANNELS`` in ``src/include/device.h``)."""

MAX_QPS_PER_CONNECTION = 128
"""NCCL's most queue pairs per connection (``NCCL_IB_MAX_QPS``)."""


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _positive_float(name: str, value: float) -> None:
    if not (isinstance(value, int | float | np.number) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


@dataclass(frozen=True)
class CollectiveLibrary:
    """How the collective library (NCCL) carries collectives over the network.

    A ring runs on several channels, each with its own connection per hop,
    and each connection on several queue pairs (the module docstring says
    what gates a call). On RoCE every queue pair is hashed onto its own ECMP
    path, so a hop between nodes is spread over up to ``channels_per_nic *
    qps_per_connection`` paths; more queue pairs per connection is Meta's
    "QP scaling" (RDMA over Ethernet for distributed AI training at Meta
    scale, SIGCOMM 2024), and the defaults are NCCL's, their baseline.

    Attributes:
        channels_per_nic: Channels of a ring or tree collective through the
            NIC its hops between nodes leave by, 1 to :data:`MAX_CHANNELS`
            (default :data:`NCCL_CHANNELS_PER_NIC`).
        qps_per_connection: Queue pairs per connection, 1 to
            :data:`MAX_QPS_PER_CONNECTION` (``NCCL_IB_QPS_PER_CONNECTION``,
            default 1).
    """

    channels_per_nic: int = NCCL_CHANNELS_PER_NIC
    qps_per_connection: int = 1

    def __post_init__(self) -> None:
        for name, most in (
            ("channels_per_nic", MAX_CHANNELS),
            ("qps_per_connection", MAX_QPS_PER_CONNECTION),
        ):
            value = getattr(self, name)
            _positive_int(name, value)
            if value > most:
                raise ValueError(f"{name} must be at most {most}, got {value}")

    def connections(self, kind: str) -> int:
        """Connections a hop of a collective of this kind opens: its channels, or one."""
        return self.channels_per_nic if kind in CHANNELED_KINDS else 1


@dataclass(frozen=True)
class ModelShape:
    """The shape of a transformer being trained.

    Attributes:
        params_billion: Total parameters, billions.
        layers: Transformer layers.
        hidden: Hidden size.
        seq_len: Tokens per sequence.
        active_params_billion: Mixture of experts: parameters active per token,
            billions (default: all of ``params_billion``).
        experts: Mixture of experts: number of experts (None: dense model).
        top_k: Mixture of experts: experts each token is routed to.
    """

    params_billion: float
    layers: int
    hidden: int
    seq_len: int
    active_params_billion: float | None = None
    experts: int | None = None
    top_k: int = 2

    def __post_init__(self) -> None:
        _positive_float("params_billion", self.params_billion)
        _positive_int("layers", self.layers)
        _positive_int("hidden", self.hidden)
        _positive_int("seq_len", self.seq_len)
        if self.active_params_billion is not None:
            _positive_float("active_params_billion", self.active_params_billion)
            if self.active_params_billion > self.params_billion:
                raise ValueError(
                    f"active_params_billion ({self.active_params_billion}) exceeds "
                    f"params_billion ({self.params_billion})"
                )
        _positive_int("top_k", self.top_k)
        if self.experts is not None:
            _positive_int("experts", self.experts)
            if self.top_k > self.experts:
                raise ValueError(f"top_k ({self.top_k}) exceeds experts ({self.experts})")

    @property
    def active_params(self) -> float:
        """Parameters active per token (not in billions)."""
        if self.active_params_billion is None:
            return 1e9 * self.params_billion
        return 1e9 * self.active_params_billion


@dataclass(frozen=True)
class TrainingSpec:
    """How a training job splits its model and communicates.

    Attributes:
        model: The model trained.
        tp: Tensor parallel degree.
        pp: Pipeline parallel degree.
        ep: Expert parallel degree: EP groups are ``ep`` consecutive data
            parallel ranks (``ep`` must divide ``dp``); no EP traffic for a
            dense model.
        microbatches: Microbatches per iteration per data parallel rank.
        microbatch_sequences: Sequences per microbatch.
        mfu: Model FLOPs utilisation, in (0, 1].
        overlap: Fraction in [0, 1] of communication that can hide under
            compute.
        all_reduce: All-reduce algorithm, ``"ring"`` or ``"tree"``.
        data_parallel: ``"allreduce"`` (one all-reduce of the gradients) or
            ``"fsdp"`` (reduce-scatter of gradients, two all-gathers of
            parameters).
        bytes_per_value: Bytes per activation / gradient value (2 for bf16).
    """

    model: ModelShape
    tp: int = 1
    pp: int = 1
    ep: int = 1
    microbatches: int = 8
    microbatch_sequences: int = 1
    mfu: float = 0.4
    overlap: float = 0.0
    all_reduce: str = "ring"
    data_parallel: str = "allreduce"
    bytes_per_value: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelShape):
            raise ValueError(f"model must be a ModelShape, got {type(self.model).__name__}")
        for name in ("tp", "pp", "ep", "microbatches", "microbatch_sequences", "bytes_per_value"):
            _positive_int(name, getattr(self, name))
        if not (isinstance(self.mfu, int | float) and 0 < self.mfu <= 1):
            raise ValueError(f"mfu must be in (0, 1], got {self.mfu!r}")
        if not (isinstance(self.overlap, int | float) and 0 <= self.overlap <= 1):
            raise ValueError(f"overlap must be in [0, 1], got {self.overlap!r}")
        if self.all_reduce not in ALL_REDUCE_ALGORITHMS:
            raise ValueError(
                f"all_reduce must be one of {ALL_REDUCE_ALGORITHMS}, got {self.all_reduce!r}"
            )
        if self.data_parallel not in DATA_PARALLEL_MODES:
            raise ValueError(
                f"data_parallel must be one of {DATA_PARALLEL_MODES}, got {self.data_parallel!r}"
            )
        if self.model.experts is not None and self.ep > self.model.experts:
            raise ValueError(f"ep ({self.ep}) exceeds model.experts ({self.model.experts})")


def _cost_terms(kind: str, ranks: int) -> tuple[float, float]:
    """Bandwidth factor and latency steps of one call: ``t = f * S * 8 / r + steps * a``."""
    k = ranks
    if kind == "all_reduce_ring":
        return 2.0 * (k - 1) / k, 2.0 * (k - 1)
    if kind == "all_reduce_tree":
        return 2.0, 2.0 * math.ceil(math.log2(k))
    if kind in ("reduce_scatter", "all_gather"):
        return (k - 1) / k, float(k - 1)
    if kind == "all_to_all":
        return 1.0 / k, 1.0
    if kind == "p2p":
        return 1.0, 0.0
    raise ValueError(f"kind must be one of {COLLECTIVE_KINDS}, got {kind!r}")


@dataclass(frozen=True, eq=False)
class Collective:
    """One collective of a training iteration, over all its groups at once.

    Attributes:
        name: Which parallelism it serves: ``"tp"``, ``"pp"``, ``"dp"`` or ``"ep"``.
        kind: One of :data:`COLLECTIVE_KINDS`.
        bytes_per_call: ``S``: the buffer per rank of one call (for ``p2p``,
            the bytes of one transfer).
        calls_per_iteration: Calls per iteration (may be fractional when
            ``pp`` does not divide the layers).
        ranks: ``k``: ranks per group (pipeline stages for ``p2p``).
        groups: Number of groups that run the collective at once.
        flow_index: Indices into the plan's flows of its inter-node hops
            (sorted, distinct).
        intra_gbps: Slowest rate of its hops inside a node (NVLink, shared by
            a source's intra-node peers for all-to-all); ``inf`` if none.
        latency_s: Latency per step: ``hop_latency_us * 1e-6`` if any hop
            crosses nodes, else 0.
    """

    name: str
    kind: str
    bytes_per_call: float
    calls_per_iteration: float
    ranks: int
    groups: int
    flow_index: np.ndarray
    intra_gbps: float
    latency_s: float

    def __post_init__(self) -> None:
        _cost_terms(self.kind, self.ranks)

    def min_rate_gbps(self, flow_rates_gbps: np.ndarray) -> float:
        """Slowest hop rate over all groups, given the plan's flow rates."""
        if self.flow_index.size == 0:
            return self.intra_gbps
        return min(self.intra_gbps, float(flow_rates_gbps[self.flow_index].min()))

    def call_s(self, flow_rates_gbps: np.ndarray) -> float:
        """Time of one call (s), given the plan's flow rates (Gb/s)."""
        factor, steps = _cost_terms(self.kind, self.ranks)
        rate = self.min_rate_gbps(flow_rates_gbps)
        if not rate > 0:
            return math.inf
        return factor * self.bytes_per_call * 8.0 / (rate * 1e9) + steps * self.latency_s

    def iteration_s(self, flow_rates_gbps: np.ndarray) -> float:
        """Time of all its calls in one iteration (s)."""
        return self.calls_per_iteration * self.call_s(flow_rates_gbps)


class TrainingPlan:
    """A training job placed on GPUs: its inter-node flows and iteration time.

    Attributes:
        src: Source GPU of each inter-node flow (int64, read-only).
        dst: Destination GPU of each flow; ``(src, dst)`` pairs are distinct
            and sorted.
        compute_s: Compute time per iteration, pipeline bubble included.
        collectives: The iteration's collectives.
        overlap: Fraction of communication that can hide under compute.
        nic_gbps: Per-GPU NIC line rate (for the ideal rates).
        connections: Connections of each flow: the library's channels for a
            hop of a ring or tree, else 1 (int64, read-only).
        queue_pairs: Queue pairs of each flow: ``connections`` times the
            library's queue pairs per connection, each carrying an equal
            share of the flow's bytes (int64, read-only).
        library: The collective library the plan was built for.
    """

    def __init__(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        compute_s: float,
        collectives: tuple[Collective, ...],
        overlap: float,
        nic_gbps: float,
        connections: np.ndarray | None = None,
        library: CollectiveLibrary | None = None,
    ) -> None:
        self.src = np.asarray(src, dtype=np.int64)
        self.dst = np.asarray(dst, dtype=np.int64)
        self.src.setflags(write=False)
        self.dst.setflags(write=False)
        self.library = CollectiveLibrary() if library is None else library
        if connections is None:
            connections = np.ones(self.src.size, dtype=np.int64)
        self.connections = np.asarray(connections, dtype=np.int64)
        if self.connections.shape != self.src.shape or np.any(self.connections < 1):
            raise ValueError("connections must be one integer >= 1 per flow")
        self.connections.setflags(write=False)
        self.queue_pairs = self.connections * self.library.qps_per_connection
        self.queue_pairs.setflags(write=False)
        self.compute_s = float(compute_s)
        self.collectives = tuple(collectives)
        self.overlap = float(overlap)
        self.nic_gbps = float(nic_gbps)
        self._ideal_gbps: np.ndarray | None = None

    @property
    def n_flows(self) -> int:
        """Number of inter-node flows."""
        return int(self.src.size)

    def _rates(self, flow_rates_gbps: np.ndarray) -> np.ndarray:
        rates = np.asarray(flow_rates_gbps, dtype=np.float64)
        if rates.shape != (self.n_flows,):
            raise ValueError(
                f"flow_rates_gbps must have one rate per flow ({self.n_flows}), "
                f"got shape {rates.shape}"
            )
        return rates

    def comm_s(self, flow_rates_gbps: np.ndarray) -> dict[str, float]:
        """Communication time per iteration of each collective name (s).

        Args:
            flow_rates_gbps: Rate of each flow (Gb/s), indexed like ``src``.

        Returns:
            Seconds per iteration for each of ``"tp"``, ``"pp"``, ``"dp"``,
            ``"ep"`` (0 for a collective the job does not run).
        """
        rates = self._rates(flow_rates_gbps)
        times = dict.fromkeys(COLLECTIVE_NAMES, 0.0)
        for collective in self.collectives:
            times[collective.name] += collective.iteration_s(rates)
        return times

    def iteration_s(self, flow_rates_gbps: np.ndarray) -> float:
        """Iteration time (s): compute plus the communication it cannot hide.

        Args:
            flow_rates_gbps: Rate of each flow (Gb/s), indexed like ``src``.
        """
        comm = sum(self.comm_s(flow_rates_gbps).values())
        exposed = max((1.0 - self.overlap) * comm, comm - self.compute_s)
        return self.compute_s + exposed

    def ideal_rates_gbps(self) -> np.ndarray:
        """Rates of the job's flows alone on a non-blocking fabric (Gb/s).

        Only NICs limit: each flow crosses its source GPU's uplink and its
        destination GPU's downlink, ``nic_gbps`` each, and a NIC serves its
        queue pairs in turn: max-min fair shares weighted by each flow's
        :attr:`queue_pairs`. Computed once and cached; a copy is returned.
        """
        if self._ideal_gbps is None:
            self._ideal_gbps = self._solve_ideal()
        return self._ideal_gbps.copy()

    def slowdown(self, flow_rates_gbps: np.ndarray) -> float:
        """Iteration time at these rates over the ideal iteration time (>= 1 if slower)."""
        return self.iteration_s(flow_rates_gbps) / self.iteration_s(self.ideal_rates_gbps())

    def _solve_ideal(self) -> np.ndarray:
        n = self.n_flows
        if n == 0:
            return np.zeros(0)
        nodes = np.unique(np.concatenate([self.src, self.dst]))
        up = np.searchsorted(nodes, self.src)
        down = nodes.size + np.searchsorted(nodes, self.dst)
        incidence = sp.csr_matrix(
            (np.ones(2 * n), np.column_stack([up, down]).ravel(), np.arange(0, 2 * n + 1, 2)),
            shape=(n, 2 * nodes.size),
        )
        return max_min_rates(
            incidence, np.full(2 * nodes.size, self.nic_gbps), weights=self.queue_pairs
        )

    def collective_gbps(self, flow_rates_gbps: np.ndarray) -> tuple[tuple[str, str, float], ...]:
        """Each collective's bus bandwidth at these rates: the rate of its slowest flow (Gb/s).

        For a ring all-reduce, reduce-scatter or all-gather this is what
        nccl-tests reports as bus bandwidth (``busbw = algbw * 2(k-1)/k``,
        resp. ``(k-1)/k``), less the latency term.

        Args:
            flow_rates_gbps: Rate of each flow (Gb/s), indexed like ``src``.

        Returns:
            ``(name, kind, Gb/s)`` per collective, in the plan's order.
        """
        rates = self._rates(flow_rates_gbps)
        return tuple((c.name, c.kind, c.min_rate_gbps(rates)) for c in self.collectives)


@dataclass(frozen=True, eq=False)
class _Hops:
    """A collective being built: its groups and every hop (src GPU, dst GPU) of them."""

    name: str
    kind: str
    bytes_per_call: float
    calls_per_iteration: float
    groups: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    intra_gbps: float | None = None  # None: NVLink if any hop stays in a node
    connections: int = 1  # per hop between nodes: the library's channels, or 1


def _snake(groups: np.ndarray, gpus_per_node: int) -> np.ndarray:
    """Each row in ring order: its nodes in rank order, every second node's GPUs reversed.

    NCCL's ring enters and leaves a node on the same rail where it can: one
    node's GPUs in one direction, the next node's in the other. Where a
    group's nodes hold it on the same slots (whole nodes do), every hop
    between two nodes then joins GPUs in the same slot, except the
    wrap-around of a ring over an odd number of nodes.
    """
    k = groups.shape[1]
    node = groups // gpus_per_node
    col = np.broadcast_to(np.arange(k), groups.shape)
    first = np.ones(groups.shape, dtype=bool)  # the first member of its node's run
    first[:, 1:] = node[:, 1:] != node[:, :-1]
    last = np.ones(groups.shape, dtype=bool)
    last[:, :-1] = first[:, 1:]
    run = np.cumsum(first, axis=1) - 1
    start = np.maximum.accumulate(np.where(first, col, 0), axis=1)
    end = np.minimum.accumulate(np.where(last, col, k - 1)[:, ::-1], axis=1)[:, ::-1]
    position = np.where(run % 2 == 1, start + end - col, col)
    ordered = np.empty_like(groups)
    np.put_along_axis(ordered, position, groups, axis=1)
    return ordered


def _ring_hops(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hops of a ring over each row, in order, wrapping round."""
    return groups.ravel(), np.roll(groups, -1, axis=1).ravel()


def _tree_hops(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parent-child edges of a binary tree over each row, both directions."""
    k = groups.shape[1]
    child = groups[:, 1:].ravel()
    parent = groups[:, (np.arange(1, k) - 1) // 2].ravel()
    return np.concatenate([child, parent]), np.concatenate([parent, child])


def _all_to_all_hops(
    groups: np.ndarray, gpus_per_node: int, nvlink_gbps: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Ordered pairs of distinct ranks in each row, and the slowest intra-node pair rate."""
    n_groups, k = groups.shape
    pair = ~np.eye(k, dtype=bool)
    src = np.broadcast_to(groups[:, :, None], (n_groups, k, k))[:, pair]
    dst = np.broadcast_to(groups[:, None, :], (n_groups, k, k))[:, pair]
    nodes = groups // gpus_per_node
    peers = (nodes[:, :, None] == nodes[:, None, :]).sum(axis=2) - 1
    most = int(peers.max())
    return src.ravel(), dst.ravel(), (nvlink_gbps / most if most > 0 else math.inf)


def training_plan(
    spec: TrainingSpec,
    gpus: np.ndarray,
    gpus_per_node: int,
    accelerator_tflops: float,
    nic_gbps: float,
    nvlink_gbps: float = 3600.0,
    hop_latency_us: float = 0.0,
    library: CollectiveLibrary | None = None,
) -> TrainingPlan:
    """Place a training job on GPUs: its flows, compute time and collectives.

    Args:
        spec: The job's model and parallelism layout.
        gpus: GPU ids in rank order (distinct, non-negative integers).
        gpus_per_node: GPUs per node: GPU ``g`` is on node ``g // gpus_per_node``.
        accelerator_tflops: Dense BF16 TFLOP/s per GPU.
        nic_gbps: Per-GPU NIC line rate (one NIC per GPU), Gb/s.
        nvlink_gbps: Per-GPU NVLink bandwidth per direction, Gb/s.
        hop_latency_us: Latency per collective step over the fabric
            (propagation and store-and-forward); steps inside a node take 0.
        library: Channels and queue pairs of the collective library (default
            NCCL's, :class:`CollectiveLibrary`).

    Returns:
        The job's plan.

    Raises:
        ValueError: If the layout does not fit the GPUs or a parameter is out
            of range.
    """
    gpu = np.asarray(gpus)
    if gpu.ndim != 1 or gpu.size == 0 or not np.issubdtype(gpu.dtype, np.integer):
        raise ValueError(f"gpus must be a non-empty 1-D integer array, got {gpu.dtype} {gpu.shape}")
    gpu = gpu.astype(np.int64)
    if gpu.min() < 0 or np.unique(gpu).size != gpu.size:
        raise ValueError("gpus must be distinct non-negative GPU ids")
    _positive_int("gpus_per_node", gpus_per_node)
    _positive_float("accelerator_tflops", accelerator_tflops)
    _positive_float("nic_gbps", nic_gbps)
    _positive_float("nvlink_gbps", nvlink_gbps)
    if not (math.isfinite(hop_latency_us) and hop_latency_us >= 0):
        raise ValueError(f"hop_latency_us must be finite and >= 0, got {hop_latency_us!r}")
    library = CollectiveLibrary() if library is None else library
    if not isinstance(library, CollectiveLibrary):
        raise ValueError(f"library must be a CollectiveLibrary, got {type(library).__name__}")

    n, tp, pp, ep, m = gpu.size, spec.tp, spec.pp, spec.ep, spec.microbatches
    if n % (tp * pp):
        raise ValueError(f"tp * pp = {tp} * {pp} = {tp * pp} does not divide the {n} GPUs")
    dp = n // (tp * pp)
    if dp % ep:
        raise ValueError(f"ep = {ep} does not divide the data parallel degree dp = {dp}")

    model = spec.model
    bpv = spec.bytes_per_value
    seqs = spec.microbatch_sequences
    activation_bytes = float(seqs * model.seq_len * model.hidden * bpv)
    layers_per_stage = model.layers / pp
    shard_bytes = bpv * model.params_billion * 1e9 / (tp * pp)
    flops = 6.0 * model.active_params * m * seqs * model.seq_len / (tp * pp)
    compute_s = flops / (accelerator_tflops * 1e12 * spec.mfu) * (1.0 + (pp - 1) / m)

    grid = gpu.reshape(pp, dp, tp)  # [p, d, t]: rank = t + tp * (d + dp * p)

    all_reduce = "all_reduce_ring" if spec.all_reduce == "ring" else "all_reduce_tree"
    if spec.all_reduce == "ring":

        def reduce_hops(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return _ring_hops(_snake(groups, gpus_per_node))
    else:
        reduce_hops = _tree_hops
    layer_calls = 4.0 * layers_per_stage * m
    pending: list[_Hops] = []
    if tp > 1:
        groups = grid.reshape(-1, tp)
        src, dst = reduce_hops(groups)
        pending.append(_Hops("tp", all_reduce, activation_bytes, layer_calls, groups, src, dst))
    if pp > 1:
        chains = grid.transpose(1, 2, 0).reshape(-1, pp)  # [d, t, p]
        ahead, behind = chains[:, :-1].ravel(), chains[:, 1:].ravel()
        src, dst = np.concatenate([ahead, behind]), np.concatenate([behind, ahead])
        pending.append(_Hops("pp", "p2p", activation_bytes, 2.0 * m, chains, src, dst))
    by_data = grid.transpose(0, 2, 1)  # [p, t, d]
    if dp > 1:
        groups = by_data.reshape(-1, dp)
        if spec.data_parallel == "allreduce":
            src, dst = reduce_hops(groups)
            pending.append(_Hops("dp", all_reduce, shard_bytes, 1.0, groups, src, dst))
        else:
            src, dst = _ring_hops(_snake(groups, gpus_per_node))
            pending.append(_Hops("dp", "reduce_scatter", shard_bytes, 1.0, groups, src, dst))
            pending.append(_Hops("dp", "all_gather", shard_bytes, 2.0, groups, src, dst))
    if model.experts is not None and ep > 1:
        groups = by_data.reshape(-1, ep)  # blocks of ep consecutive data indices
        src, dst, intra = _all_to_all_hops(groups, gpus_per_node, nvlink_gbps)
        size = activation_bytes * model.top_k
        pending.append(_Hops("ep", "all_to_all", size, layer_calls, groups, src, dst, intra))

    pending = [dataclasses.replace(h, connections=library.connections(h.kind)) for h in pending]
    # Inter-node hops of every collective, deduplicated into flows sorted by (src, dst).
    span = int(gpu.max()) + 1
    crossing = [hops.src // gpus_per_node != hops.dst // gpus_per_node for hops in pending]
    keys = [
        hops.src[cross] * span + hops.dst[cross]
        for hops, cross in zip(pending, crossing, strict=True)
    ]
    flow_keys, inverse = np.unique(
        np.concatenate([np.zeros(0, np.int64), *keys]), return_inverse=True
    )
    bounds = np.cumsum([0, *(key.size for key in keys)])
    # A pair that serves several collectives keeps the most connections any of them opens.
    connections = np.ones(flow_keys.size, dtype=np.int64)
    for i, hops in enumerate(pending):
        np.maximum.at(connections, inverse[bounds[i] : bounds[i + 1]], hops.connections)
    alpha = hop_latency_us * 1e-6
    collectives = []
    for i, (hops, cross) in enumerate(zip(pending, crossing, strict=True)):
        intra = hops.intra_gbps
        if intra is None:
            intra = math.inf if cross.all() else nvlink_gbps
        flow_index = np.unique(inverse[bounds[i] : bounds[i + 1]]).astype(np.int64)
        flow_index.setflags(write=False)
        collectives.append(
            Collective(
                name=hops.name,
                kind=hops.kind,
                bytes_per_call=hops.bytes_per_call,
                calls_per_iteration=hops.calls_per_iteration,
                ranks=hops.groups.shape[1],
                groups=hops.groups.shape[0],
                flow_index=flow_index,
                intra_gbps=float(intra),
                latency_s=alpha if cross.any() else 0.0,
            )
        )
    return TrainingPlan(
        src=flow_keys // span,
        dst=flow_keys % span,
        compute_s=compute_s,
        collectives=tuple(collectives),
        overlap=spec.overlap,
        nic_gbps=nic_gbps,
        connections=connections,
        library=library,
    )

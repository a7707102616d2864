"""The fabric's schema: a topology and a transport, on their own or in a cluster.

A fabric is two choices, each picked by ``kind`` like every other choice in
Surplus:

* ``topology``: the cabling, one of the folded-Clos builders of
  :mod:`sim.fabric.topology` (``leaf_spine``, ``fat_tree``,
  ``rail_optimized``, ``meta_ai_zone``) with exactly that builder's
  parameters and defaults;
* ``transport``: how senders share it. ``roce`` is RDMA over Ethernet with
  per-flow ECMP hashing, optional PFC (lossless pauses) and ECN-driven DCQCN
  rate control; ``infiniband`` has credit-based back-pressure and adaptive
  routing; ``ideal`` is a fabric without congestion that sprays every flow
  evenly over all equal-cost paths, the yardstick the other two are measured
  against.

:class:`FabricConfig` is a whole FABRIC.yaml file (``surplus fabric``, read by
:mod:`sim.scenario.fabric_loader`); a scenario's cluster names its fabric with
:class:`IdealFabricConfig` or :class:`NetworkFabricConfig` (the same topology
and transport sections, plus the collective library). The runtime models that
these configure are :class:`sim.fabric.model.IdealFabric` and
:class:`sim.fabric.network.NetworkFabric`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from sim.fabric.limits import (
    MAX_BUFFER_BYTES,
    MAX_BUFFER_KB,
    MAX_FLOW_BYTES,
    MAX_GPUS_PER_NODE,
    MAX_HEADER_BYTES,
    MAX_LATENCY_SAMPLES,
    MAX_LINK_GBPS,
    MAX_MTU_BYTES,
    MAX_OVERSUBSCRIPTION,
    MAX_PROP_DELAY_US,
    MAX_SWITCH_PORTS,
    MIN_LINK_GBPS,
    MIN_OVERSUBSCRIPTION,
)
from sim.fabric.topology import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_MTU_BYTES,
    DEFAULT_PROP_DELAY_US,
    Topology,
)
from sim.fabric.topology_kinds import build_topology, size_problem
from sim.scenario.base import Strict

if TYPE_CHECKING:
    from sim.fabric.dcqcn import DcqcnParams

__all__ = [
    "INFINIBAND_HEADER_BYTES",
    "ROCE_HEADER_BYTES",
    "TOPOLOGY_KINDS",
    "TRANSPORT_KINDS",
    "ClusterFabricConfig",
    "CollectiveSettings",
    "DcqcnSettings",
    "FabricConfig",
    "FabricConfigBase",
    "FatTreeTopology",
    "IdealFabricConfig",
    "IdealTransport",
    "InfinibandTransport",
    "LeafSpineTopology",
    "MetaAiZoneTopology",
    "NetworkFabricConfig",
    "RailOptimizedTopology",
    "RateModel",
    "RoceTransport",
    "TopologyConfig",
    "TransportConfig",
]


# Numbers are strict: ``true`` or ``"100"`` is not a link speed. Every number has a
# range no real fabric leaves; the bounds and their reasons are in sim.fabric.limits.
Count = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_SWITCH_PORTS,
        description="a switch fan-out; 512 is the most ports of a switch chip",
    ),
]
"""A number of switches, hosts, racks or pods that is some switch's fan-out: 1 to 512
(:data:`sim.fabric.limits.MAX_SWITCH_PORTS`, the ports of the largest switch chip)."""

GpusPerNode = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_GPUS_PER_NODE,
        description="GPUs (one NIC each) per server; 576 is the largest NVLink domain",
    ),
]
"""GPUs of one NVLink domain: 1 to :data:`sim.fabric.limits.MAX_GPUS_PER_NODE`."""

Oversubscription = Annotated[
    float,
    Field(
        ge=MIN_OVERSUBSCRIPTION,
        le=MAX_OVERSUBSCRIPTION,
        description="downlink over uplink capacity (1 is non-blocking); 64:1 is past any fabric",
    ),
]
"""Downlink over uplink capacity: :data:`~sim.fabric.limits.MIN_OVERSUBSCRIPTION` to
:data:`~sim.fabric.limits.MAX_OVERSUBSCRIPTION`."""


def _link_gbps(default: float, what: str) -> Any:
    """A link speed field: 1 to 3,200 Gb/s (:data:`sim.fabric.limits.MAX_LINK_GBPS`)."""
    return Field(
        default=default,
        ge=MIN_LINK_GBPS,
        le=MAX_LINK_GBPS,
        description=f"{what}, Gb/s; 1G Ethernet to 3.2T, the fastest link",
    )


_KB = "KB (1 KB = 1000 bytes); 16 GB is the deepest switch buffer"

Kilobytes = Annotated[float, Field(ge=0, le=MAX_BUFFER_KB, description=_KB)]
"""A queue threshold in KB, 0 to :data:`sim.fabric.limits.MAX_BUFFER_KB`."""

PositiveKilobytes = Annotated[float, Field(gt=0, le=MAX_BUFFER_KB, description=_KB)]
"""A queue threshold in KB above zero, at most :data:`sim.fabric.limits.MAX_BUFFER_KB`."""

Seed = Annotated[int, Field(ge=0, le=2**63 - 1, description="the range of a scenario's seed")]
"""A root seed, 0 to 2**63 - 1 (the range of a scenario's seed)."""


def _micros(default: float, what: str) -> Any:
    """A DCQCN period in microseconds: 1 to 10,000 (real NICs use 4 to 300)."""
    return Field(
        default=default,
        ge=1.0,
        le=10_000.0,
        description=f"{what}, us; NIC defaults are 4 to 300",
    )


class FabricConfigBase(Strict):
    """Base for fabric sections: strict and finite numbers, as every :class:`Strict` model."""


# --------------------------------------------------------------------------- topologies


PropDelayUs = Annotated[
    float,
    Field(
        ge=0,
        le=MAX_PROP_DELAY_US,
        description="propagation delay of every link, us; 1,000 is 200 km of fibre",
    ),
]
"""Per-link propagation delay in microseconds, as the builders take it."""

BufferBytes = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_BUFFER_BYTES,
        description="buffer of every egress port; 16 GB is a deep-buffer chip's HBM",
    ),
]
"""Per-port buffer in bytes, 0 to :data:`sim.fabric.limits.MAX_BUFFER_BYTES`."""

MtuBytes = Annotated[
    int,
    Field(
        ge=64,
        le=MAX_MTU_BYTES,
        description="maximum transmission unit; 65,535 is the largest IP packet",
    ),
]
"""MTU in bytes, 64 (the smallest Ethernet frame) to 65,535."""


class _TopologyBase(FabricConfigBase):
    """Shared behaviour of the topology kinds; each kind's fields mirror its builder.

    Beyond each field's range, a topology too big to build (more than
    :data:`sim.fabric.limits.MAX_HOSTS` hosts or
    :data:`sim.fabric.limits.MAX_LINKS` links, computed from the counts, not
    by building) is refused, naming the count furthest above its default.
    """

    def builder_params(self) -> dict[str, Any]:
        """Keyword arguments for this kind's builder.

        The builder is in :data:`sim.fabric.topology_kinds.TOPOLOGIES`.
        """
        params = self.model_dump()
        del params["kind"]
        return params

    @model_validator(mode="after")
    def _fits(self) -> Any:
        found = size_problem(self.kind, self.builder_params())  # type: ignore[attr-defined]
        if found is not None:
            name, problem = found
            error = PydanticCustomError("topology_too_big", "{problem}", {"problem": problem})
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [InitErrorDetails(type=error, loc=(name,), input=getattr(self, name))],
            )
        return self


class LeafSpineTopology(_TopologyBase):
    """Two-tier leaf-spine; each leaf has one uplink per spine.

    ``oversubscription`` is leaf downlink over uplink capacity (1.0 is
    non-blocking, 3.0 is 3:1), realised by uplink speed.
    """

    kind: Literal["leaf_spine"]
    hosts_per_leaf: Count = 16
    leaves: Count = 8
    spines: Count = 4
    oversubscription: Oversubscription = 1.0
    link_gbps: float = _link_gbps(100.0, "host NIC speed")
    prop_delay_us: PropDelayUs = DEFAULT_PROP_DELAY_US
    buffer_bytes: BufferBytes = DEFAULT_BUFFER_BYTES
    mtu_bytes: MtuBytes = DEFAULT_MTU_BYTES


class FatTreeTopology(_TopologyBase):
    """The k-ary three-tier fat tree: ``k**3/4`` hosts, non-blocking, every link alike.

    ``k`` is even and at least 2; its upper end is the size rule: k = 100
    (250,000 hosts) is the largest fat tree within the 262,144 hosts a
    topology may have.
    """

    kind: Literal["fat_tree"]
    k: Annotated[
        int,
        Field(ge=2, description="switch radix, even; 100 is the largest that fits"),
    ] = 8
    link_gbps: float = _link_gbps(100.0, "speed of every link")
    prop_delay_us: PropDelayUs = DEFAULT_PROP_DELAY_US
    buffer_bytes: BufferBytes = DEFAULT_BUFFER_BYTES
    mtu_bytes: MtuBytes = DEFAULT_MTU_BYTES

    @field_validator("k")
    @classmethod
    def _even(cls, k: int) -> int:
        if k % 2:
            raise ValueError(f"must be even, got {k:.6g}")
        return k


class RailOptimizedTopology(_TopologyBase):
    """Rail-optimised: GPU ``r`` of every node in a group hangs off rail switch ``r``."""

    kind: Literal["rail_optimized"]
    gpus_per_node: GpusPerNode = 8
    nodes_per_group: Count = 16
    groups: Count = 4
    spines: Count = 8
    oversubscription: Oversubscription = 1.0
    link_gbps: float = _link_gbps(400.0, "GPU NIC speed")
    prop_delay_us: PropDelayUs = DEFAULT_PROP_DELAY_US
    buffer_bytes: BufferBytes = DEFAULT_BUFFER_BYTES
    mtu_bytes: MtuBytes = DEFAULT_MTU_BYTES


class MetaAiZoneTopology(_TopologyBase):
    """Meta's 24,576-GPU training zone: RTSW racks, CTSW pods, ATSW aggregation at 1:7."""

    kind: Literal["meta_ai_zone"]
    gpus_per_node: GpusPerNode = 8
    nodes_per_rack: Count = 2
    racks_per_pod: Count = 192
    pods: Count = 8
    ctsw_per_pod: Count = 16
    atsw_per_plane: Count = 4
    oversubscription: Oversubscription = 7.0
    link_gbps: float = _link_gbps(400.0, "GPU NIC speed")
    prop_delay_us: PropDelayUs = DEFAULT_PROP_DELAY_US
    buffer_bytes: BufferBytes = DEFAULT_BUFFER_BYTES
    mtu_bytes: MtuBytes = DEFAULT_MTU_BYTES


TopologyConfig = Annotated[
    LeafSpineTopology | FatTreeTopology | RailOptimizedTopology | MetaAiZoneTopology,
    Field(discriminator="kind"),
]
"""The ``topology`` section: one of the builders of :mod:`sim.fabric.topology`."""

TOPOLOGY_KINDS: dict[str, type[_TopologyBase]] = {
    "leaf_spine": LeafSpineTopology,
    "fat_tree": FatTreeTopology,
    "rail_optimized": RailOptimizedTopology,
    "meta_ai_zone": MetaAiZoneTopology,
}
"""Topology models by ``kind``.

The keys are those of :data:`sim.fabric.topology_kinds.TOPOLOGIES`.
"""


# --------------------------------------------------------------------------- transports

RateModel = Literal["dcqcn", "backpressure", "lossy", "ideal"]
"""How a transport's senders share the fabric (:mod:`sim.fabric.transport` describes each):
``dcqcn``, end-to-end rate control to max-min fair shares; ``backpressure``, line-rate
senders held back hop by hop (PFC without rate control, or InfiniBand credits);
``lossy``, line-rate senders whose overflow is dropped; ``ideal``, no congestion at all."""

ROCE_HEADER_BYTES = 82
"""What a RoCEv2 packet carries on the wire beyond its payload: Ethernet header 14, IPv4 20,
UDP 8, InfiniBand base transport header (BTH) 12, invariant CRC 4 and Ethernet FCS 4 (62
bytes of frame), plus the preamble and start delimiter (8) and the least inter-frame gap
(12) that every Ethernet frame costs in link time. A VLAN tag (PCP-based PFC) adds 4, an
RDMA write's first packet its RETH (16): left out, as they are not on every packet."""

INFINIBAND_HEADER_BYTES = 26
"""What an InfiniBand packet carries beyond its payload inside one subnet: local route
header (LRH) 8, BTH 12, invariant CRC 4 and variant CRC 2 (a global route header, 40 more,
only between subnets); the link layer's start and end symbols are left out."""

HeaderBytes = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_HEADER_BYTES,
        description="1,024 is ten times a RoCEv2 packet's headers and framing",
    ),
]
"""Per-packet wire overhead in bytes, 0 to :data:`sim.fabric.limits.MAX_HEADER_BYTES`."""


class DcqcnSettings(FabricConfigBase):
    """DCQCN reaction-point settings (Zhu et al., CoNEXT 2016, as in :mod:`sim.fabric.dcqcn`).

    Every setting has a range around what NICs accept, wide enough for the
    paper's experiments; the fluid model has a fixed point (or the solver
    says which side it is pinned to) everywhere in that box.

    Attributes:
        g: EWMA gain of the congestion estimate α, 1e-6 to 1 (below, α would
            take about a minute to react).
        rate_ai_mbps: Additive-increase step R_AI, 1 Mb/s (a NIC's rate
            granularity) to 100,000 Mb/s.
        tau_us: Rate-cut period τ (one CNP per τ at most), 1 to 10,000 µs.
        tau_prime_us: α update interval τ′, 1 to 10,000 µs.
        timer_us: Rate-increase timer T, 1 to 10,000 µs.
        byte_counter_mb: Rate-increase byte counter B, 0.001 MB (one 1 KB
            packet) to 1,000 MB.
        fast_recovery_steps: Fast-recovery steps F before additive increase,
            0 to 100 (the paper uses 5).
        feedback_delay_us: Delay between a mark at the switch and the sender's
            reaction, 0 to 1,000 µs (the paper explores up to 85).
    """

    g: float = Field(default=1.0 / 256.0, ge=1e-6, le=1, description="EWMA gain of alpha")
    rate_ai_mbps: float = Field(
        default=40.0,
        ge=1.0,
        le=100_000.0,
        description="additive-increase step; 1 Mb/s is a NIC's rate granularity",
    )
    tau_us: float = _micros(50.0, "rate-cut period")
    tau_prime_us: float = _micros(55.0, "alpha update interval")
    timer_us: float = _micros(55.0, "rate-increase timer")
    byte_counter_mb: float = Field(
        default=10.0,
        ge=0.001,
        le=1000.0,
        description="rate-increase byte counter; 0.001 MB is one 1 KB packet",
    )
    fast_recovery_steps: Annotated[
        int, Field(ge=0, le=100, description="steps before additive increase")
    ] = 5
    feedback_delay_us: float = Field(
        default=4.0,
        ge=0,
        le=1000.0,
        description="mark-to-reaction delay, us; the paper explores up to 85",
    )


class RoceTransport(FabricConfigBase):
    """RDMA over Converged Ethernet: ECMP hashing, PFC and ECN/DCQCN.

    Attributes:
        pfc: Lossless mode: a port whose ingress queue passes ``pfc_xoff_kb``
            pauses its upstream neighbour. Off means lossy (drops, not pauses).
        cc: Congestion control: ``dcqcn`` reacts to ECN marks, ``none`` sends at
            line rate and leans on PFC.
        qps_per_connection: Queue pairs per connection, 1 to 128 (NCCL's most
            per connection); each QP is hashed to its own path, so more QPs
            spread one connection over more paths.
        hash_seed: Seed of the ECMP hash, 0 to 2**64 - 1 (the hash is 64 bits
            wide), to vary collisions between runs.
        pfc_xoff_kb: Ingress queue at which a port sends PAUSE upstream
            (1 KB = 1000 bytes). Every threshold is at most 16,000,000 KB, the
            deepest switch buffer.
        pfc_xon_kb: Ingress queue at which it lets the upstream port resume.
        ecn_kmin_kb: ECN marking starts above this egress queue.
        ecn_kmax_kb: Marking probability reaches ``ecn_pmax`` here, 1 above.
        ecn_pmax: Marking probability at ``ecn_kmax_kb``, in (0, 1].
        dcqcn: Sender-side DCQCN settings.
        header_bytes: What every packet carries on the wire beyond its payload
            (the topology's ``mtu_bytes``), 0 to 1,024:
            :data:`ROCE_HEADER_BYTES` by default. ACKs are packets of this
            size with no payload.
        whole_packets: Send every packet with a full MTU of payload, the last
            one padded, as the packet-level reference (csg-htsim) does; off,
            the last packet carries what is left, as a NIC sends it.
    """

    kind: Literal["roce"]
    pfc: bool = True
    cc: Literal["dcqcn", "none"] = "dcqcn"
    qps_per_connection: Annotated[
        int, Field(ge=1, le=128, description="128 is NCCL's most per connection")
    ] = 1
    hash_seed: Annotated[int, Field(ge=0, le=2**64 - 1)] = 0
    pfc_xoff_kb: PositiveKilobytes = 512.0
    pfc_xon_kb: Kilobytes = 480.0
    ecn_kmin_kb: Kilobytes = 5.0
    ecn_kmax_kb: PositiveKilobytes = 200.0
    ecn_pmax: float = Field(default=0.01, gt=0, le=1)
    dcqcn: DcqcnSettings = DcqcnSettings()
    header_bytes: HeaderBytes = ROCE_HEADER_BYTES
    whole_packets: bool = False

    @model_validator(mode="after")
    def _thresholds(self) -> RoceTransport:
        if self.pfc_xon_kb >= self.pfc_xoff_kb:
            raise ValueError(
                f"pfc_xon_kb must be below pfc_xoff_kb ({self.pfc_xoff_kb:g}), "
                f"got {self.pfc_xon_kb:g}"
            )
        if self.ecn_kmax_kb <= self.ecn_kmin_kb:
            raise ValueError(
                f"ecn_kmax_kb must be greater than ecn_kmin_kb ({self.ecn_kmin_kb:g}), "
                f"got {self.ecn_kmax_kb:g}"
            )
        return self

    @property
    def lossless(self) -> bool:
        """Whether the fabric never drops a packet: here, whether PFC is on."""
        return self.pfc

    @property
    def pauses(self) -> bool:
        """Whether ports send PFC pause frames upstream."""
        return self.pfc

    @property
    def marks_ecn(self) -> bool:
        """Whether ports mark ECN for the senders' rate control (DCQCN)."""
        return self.cc == "dcqcn"

    @property
    def rate_model(self) -> RateModel:
        """``dcqcn`` with DCQCN, else ``backpressure`` with PFC, ``lossy`` without."""
        if self.cc == "dcqcn":
            return "dcqcn"
        return "backpressure" if self.pfc else "lossy"

    def routing_args(self, sizes_bytes: Any) -> dict[str, Any]:
        """How :func:`sim.fabric.routing.route` routes this transport's flows: ECMP per queue pair.

        Args:
            sizes_bytes: Per flow, its size (unused: hashing ignores load).
        """
        return {
            "mode": "ecmp",
            "qps_per_connection": self.qps_per_connection,
            "hash_seed": self.hash_seed,
        }

    def dcqcn_params(self, capacity_gbps: float) -> DcqcnParams:
        """The DCQCN fluid-model parameters for a bottleneck port of this transport.

        Args:
            capacity_gbps: Capacity C of the bottleneck port (and sender line rate).

        Returns:
            :class:`sim.fabric.dcqcn.DcqcnParams` with this transport's ECN ramp
            and DCQCN settings.
        """
        from sim.fabric.dcqcn import DcqcnParams

        d = self.dcqcn
        return DcqcnParams(
            capacity_gbps=float(capacity_gbps),
            kmin_kb=self.ecn_kmin_kb,
            kmax_kb=self.ecn_kmax_kb,
            pmax=self.ecn_pmax,
            g=d.g,
            tau_us=d.tau_us,
            tau_prime_us=d.tau_prime_us,
            timer_us=d.timer_us,
            byte_counter_mb=d.byte_counter_mb,
            fast_recovery_steps=d.fast_recovery_steps,
            rate_ai_mbps=d.rate_ai_mbps,
            feedback_delay_us=d.feedback_delay_us,
        )


class InfinibandTransport(FabricConfigBase):
    """InfiniBand: credit-based flow control (never drops) and adaptive routing.

    Attributes:
        adaptive_routing: Spread traffic over equal-cost paths by load; off
            means static, hash-like routing as with ECMP.
        adaptive_chunks: Pieces a flow is split into for adaptive routing
            (each piece picks the least-loaded path), 1 to 64: more no longer
            changes the spread measurably and costs memory per piece.
        hash_seed: Seed of the static route choice, 0 to 2**64 - 1.
        credit_buffer_kb: Buffer per input port, at most 16,000,000 KB; a port
            whose queue passes it stops granting credits upstream
            (back-pressure).
        header_bytes: What every packet carries on the wire beyond its payload,
            0 to 1,024: :data:`INFINIBAND_HEADER_BYTES` by default. ACKs are
            packets of this size with no payload.
        whole_packets: Send every packet with a full MTU of payload, the last
            one padded; off, the last packet carries what is left.
    """

    kind: Literal["infiniband"]
    adaptive_routing: bool = True
    adaptive_chunks: Annotated[
        int,
        Field(ge=1, le=64, description="pieces per flow; more do not change the spread"),
    ] = 8
    hash_seed: Annotated[int, Field(ge=0, le=2**64 - 1)] = 0
    credit_buffer_kb: PositiveKilobytes = 256.0
    header_bytes: HeaderBytes = INFINIBAND_HEADER_BYTES
    whole_packets: bool = False

    @property
    def lossless(self) -> bool:
        """Whether the fabric never drops a packet: always, credits hold packets back."""
        return True

    @property
    def pauses(self) -> bool:
        """Whether ports send PFC pause frames: never, credits are not PFC."""
        return False

    @property
    def marks_ecn(self) -> bool:
        """Whether ports mark ECN for the senders' rate control: no."""
        return False

    @property
    def rate_model(self) -> RateModel:
        """Always ``backpressure``: credit-based flow control."""
        return "backpressure"

    def routing_args(self, sizes_bytes: Any) -> dict[str, Any]:
        """How :func:`sim.fabric.routing.route` routes this transport's flows.

        Adaptive routing weighs each flow's chunks by its bytes; without it,
        destination-mod-k.

        Args:
            sizes_bytes: Per flow, its size (the load adaptive routing weighs).
        """
        if not self.adaptive_routing:
            return {"mode": "dmodk"}
        return {
            "mode": "adaptive",
            "adaptive_chunks": self.adaptive_chunks,
            "load_weight": np.asarray(sizes_bytes, dtype=np.float64),
        }


class IdealTransport(FabricConfigBase):
    """No congestion: every flow is sprayed evenly over all equal-cost paths.

    Attributes:
        header_bytes: What every packet carries on the wire beyond its payload,
            0 to 1,024; none by default (the yardstick moves payload only).
        whole_packets: Send every packet with a full MTU of payload, the last
            one padded; off, the last packet carries what is left.
    """

    kind: Literal["ideal"]
    header_bytes: HeaderBytes = 0
    whole_packets: bool = False

    @property
    def lossless(self) -> bool:
        """Whether the fabric never drops a packet: always, nothing congests."""
        return True

    @property
    def pauses(self) -> bool:
        """Whether ports send PFC pause frames: never."""
        return False

    @property
    def marks_ecn(self) -> bool:
        """Whether ports mark ECN: never."""
        return False

    @property
    def rate_model(self) -> RateModel:
        """Always ``ideal``: max-min fair shares of a fabric without congestion."""
        return "ideal"

    def routing_args(self, sizes_bytes: Any) -> dict[str, Any]:
        """How :func:`sim.fabric.routing.route` routes this transport's flows: sprayed.

        Args:
            sizes_bytes: Per flow, its size (unused: spraying ignores load).
        """
        return {"mode": "spray"}


TransportConfig = Annotated[
    RoceTransport | InfinibandTransport | IdealTransport, Field(discriminator="kind")
]
"""The ``transport`` section: how senders share the fabric."""

TRANSPORT_KINDS: dict[str, type[FabricConfigBase]] = {
    "roce": RoceTransport,
    "infiniband": InfinibandTransport,
    "ideal": IdealTransport,
}
"""Transport models by ``kind``."""


# --------------------------------------------------------------------------- file


class FabricConfig(FabricConfigBase):
    """A whole FABRIC.yaml file.

    Attributes:
        topology: The cabling.
        transport: How senders share it.
        seed: Root seed of everything random in the fabric run, 0 to 2**63 - 1.
        message_bytes: Size of the messages whose latency is sampled, 1 byte
            to 1 TB (the largest flow); one MTU of the topology when unset.
        latency_samples: How many messages to sample for the latency
            distribution (fewer if the traffic has fewer), 1 to 1,000,000
            (about 100 MB of samples).
    """

    topology: TopologyConfig
    transport: TransportConfig
    seed: Seed = 0
    message_bytes: (
        Annotated[int, Field(ge=1, le=MAX_FLOW_BYTES, description="1 TB, the largest flow")] | None
    ) = None
    latency_samples: Annotated[
        int,
        Field(ge=1, le=MAX_LATENCY_SAMPLES, description="a million is ~100 MB"),
    ] = 100_000

    def build_topology(self) -> Topology:
        """Compile the topology with :func:`sim.fabric.topology_kinds.build_topology`.

        Raises:
            ValueError: If the builder rejects a parameter (the message names it).
        """
        return _built(self.topology)


@functools.lru_cache(maxsize=8)
def _built(topology: TopologyConfig) -> Topology:
    """Build each distinct topology once: compiled topologies are read-only."""
    return build_topology(topology.kind, **topology.builder_params())


# --------------------------------------------------------------------------- in a cluster


class IdealFabricConfig(Strict):
    """No network effects: communication never slows a job."""

    kind: Literal["ideal"] = "ideal"


class CollectiveSettings(Strict):
    """How the collective library (NCCL) runs a job's collectives over the network.

    A ring or tree collective runs on several *channels*, each a copy of the
    ring with its own connection on every hop, and a call's bytes are split
    evenly over them; each connection has the transport's
    ``qps_per_connection`` queue pairs (RoCE; NCCL's default is 1). On RoCE
    every queue pair is its own ECMP flow. See
    :class:`sim.workloads.training.CollectiveLibrary`.

    Attributes:
        channels_per_nic: Channels of a ring or tree through the NIC its hops
            between nodes leave by, 1 to 64 (NCCL's ``MAXCHANNELS``). The
            default, 4, is what NCCL's topology search gives a ring with one
            H100 per node behind a 400 Gb/s NIC (a data-parallel group of a
            ``tp: 8`` job); ``NCCL_MIN_NCHANNELS`` raises it.
    """

    channels_per_nic: int = Field(
        default=4,
        ge=1,
        le=64,
        description="64 is NCCL's most per communicator (MAXCHANNELS)",
    )


class NetworkFabricConfig(Strict):
    """A modelled network: a topology, a transport and the collective library, as NCCL runs.

    GPU ``g`` of the cluster (node ``g // gpus_per_node``) is host ``g`` of the
    topology: one NIC per GPU, so the topology must have exactly
    ``nodes × gpus_per_node`` hosts.

    Attributes:
        topology: The cabling (FABRIC.yaml's ``topology``).
        transport: How senders share it (FABRIC.yaml's ``transport``).
        collectives: How the collective library runs training and serving
            collectives over it: NCCL's defaults unless set.
    """

    kind: Literal["network"]
    topology: TopologyConfig
    transport: TransportConfig
    collectives: CollectiveSettings = CollectiveSettings()

    def build_topology(self) -> Topology:
        """The compiled topology (built once per distinct topology section)."""
        return _built(self.topology)

    def host_problem(self, gpus: int) -> str | None:
        """Why this topology cannot carry a cluster of ``gpus`` GPUs, or None."""
        try:
            hosts = self.build_topology().n_hosts
        except ValueError as exc:
            return str(exc)
        if hosts != gpus:
            return (
                f"has {hosts:,} hosts but the cluster has {gpus:,} GPUs "
                f"(nodes x gpus_per_node); one host per GPU is needed"
            )
        return None


ClusterFabricConfig = Annotated[
    IdealFabricConfig | NetworkFabricConfig, Field(discriminator="kind")
]
"""A cluster's ``fabric`` section: no network effects, or a modelled network."""

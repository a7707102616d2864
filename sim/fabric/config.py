"""FABRIC.yaml: the fabric on its own, as used by ``surplus fabric``.

A fabric file names two things, each picked by ``kind`` like every other
choice in Surplus:

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

A small file::

    topology: {kind: fat_tree, k: 4, link_gbps: 100}
    transport: {kind: roce, pfc: true, cc: dcqcn}

Problems are reported like scenario problems, one line each, naming the file,
the line and the dotted field: ``fab.yaml:1: topology.k: must be even, got 5``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.fabric.topology import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_MTU_BYTES,
    DEFAULT_PROP_DELAY_US,
    Topology,
    build_topology,
)
from sim.scenario.base import Strict
from sim.scenario.loader import ScenarioError, parse_yaml, read_input, validation_problems

if TYPE_CHECKING:
    from sim.fabric.dcqcn import DcqcnParams

__all__ = [
    "TOPOLOGY_KINDS",
    "TRANSPORT_KINDS",
    "DcqcnSettings",
    "FabricConfig",
    "FatTreeTopology",
    "IdealTransport",
    "InfinibandTransport",
    "LeafSpineTopology",
    "MetaAiZoneTopology",
    "RailOptimizedTopology",
    "RoceTransport",
    "TopologyConfig",
    "TransportConfig",
    "fabric_from_text",
    "load_fabric",
]

# Numbers are strict: ``true`` or ``"100"`` is not a link speed.
Count = Annotated[int, Field(ge=1, strict=True)]
"""A whole number of switches, hosts or pods, at least 1."""

Positive = Annotated[float, Field(gt=0, strict=True)]
"""A finite number above zero."""

NonNegative = Annotated[float, Field(ge=0, strict=True)]
"""A finite number, zero or above."""


class FabricModel(Strict):
    """Base for fabric models: as :class:`Strict`, and numbers must be finite."""

    model_config = ConfigDict(allow_inf_nan=False)


# --------------------------------------------------------------------------- topologies


PropDelayUs = Annotated[
    float, Field(ge=0, strict=True, description="propagation delay of every link")
]
"""Per-link propagation delay in microseconds, as the builders take it."""

BufferBytes = Annotated[int, Field(ge=0, strict=True, description="buffer of every egress port")]
"""Per-port buffer in bytes."""

MtuBytes = Annotated[int, Field(ge=64, strict=True, description="maximum transmission unit")]
"""MTU in bytes; the builders refuse anything below 64."""


class _TopologyBase(FabricModel):
    """Shared behaviour of the topology kinds; each kind's fields mirror its builder."""

    def builder_params(self) -> dict[str, Any]:
        """Keyword arguments for this kind's builder in :data:`sim.fabric.topology.TOPOLOGIES`."""
        params = self.model_dump()
        del params["kind"]
        return params


class LeafSpineTopology(_TopologyBase):
    """Two-tier leaf-spine; each leaf has one uplink per spine.

    ``oversubscription`` is leaf downlink over uplink capacity (1.0 is
    non-blocking, 3.0 is 3:1), realised by uplink speed.
    """

    kind: Literal["leaf_spine"]
    hosts_per_leaf: Count = 16
    leaves: Count = 8
    spines: Count = 4
    oversubscription: Positive = 1.0
    link_gbps: Positive = Field(default=100.0, description="host NIC speed")
    prop_delay_us: PropDelayUs = DEFAULT_PROP_DELAY_US
    buffer_bytes: BufferBytes = DEFAULT_BUFFER_BYTES
    mtu_bytes: MtuBytes = DEFAULT_MTU_BYTES


class FatTreeTopology(_TopologyBase):
    """The k-ary three-tier fat tree: ``k**3/4`` hosts, non-blocking, every link alike."""

    kind: Literal["fat_tree"]
    k: Annotated[int, Field(ge=2, strict=True, description="switch radix, even")] = 8
    link_gbps: Positive = Field(default=100.0, description="speed of every link")
    prop_delay_us: PropDelayUs = DEFAULT_PROP_DELAY_US
    buffer_bytes: BufferBytes = DEFAULT_BUFFER_BYTES
    mtu_bytes: MtuBytes = DEFAULT_MTU_BYTES

    @field_validator("k")
    @classmethod
    def _even(cls, k: int) -> int:
        if k % 2:
            raise ValueError(f"must be even, got {k}")
        return k


class RailOptimizedTopology(_TopologyBase):
    """Rail-optimised: GPU ``r`` of every node in a group hangs off rail switch ``r``."""

    kind: Literal["rail_optimized"]
    gpus_per_node: Count = 8
    nodes_per_group: Count = 16
    groups: Count = 4
    spines: Count = 8
    oversubscription: Positive = 1.0
    link_gbps: Positive = Field(default=400.0, description="GPU NIC speed")
    prop_delay_us: PropDelayUs = DEFAULT_PROP_DELAY_US
    buffer_bytes: BufferBytes = DEFAULT_BUFFER_BYTES
    mtu_bytes: MtuBytes = DEFAULT_MTU_BYTES


class MetaAiZoneTopology(_TopologyBase):
    """Meta's 24,576-GPU training zone: RTSW racks, CTSW pods, ATSW aggregation at 1:7."""

    kind: Literal["meta_ai_zone"]
    gpus_per_node: Count = 8
    nodes_per_rack: Count = 2
    racks_per_pod: Count = 192
    pods: Count = 8
    ctsw_per_pod: Count = 16
    atsw_per_plane: Count = 4
    oversubscription: Positive = 7.0
    link_gbps: Positive = Field(default=400.0, description="GPU NIC speed")
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
"""Topology models by ``kind``; the keys are those of :data:`sim.fabric.topology.TOPOLOGIES`."""


# --------------------------------------------------------------------------- transports


class DcqcnSettings(FabricModel):
    """DCQCN reaction-point settings (Zhu et al., CoNEXT 2016, as in :mod:`sim.fabric.dcqcn`).

    Attributes:
        g: EWMA gain of the congestion estimate α.
        rate_ai_mbps: Additive-increase step R_AI.
        tau_us: Rate-cut period τ (one CNP per τ at most).
        tau_prime_us: α update interval τ′.
        timer_us: Rate-increase timer T.
        byte_counter_mb: Rate-increase byte counter B.
        fast_recovery_steps: Fast-recovery steps F before additive increase.
        feedback_delay_us: Delay between a mark at the switch and the sender's reaction.
    """

    g: float = Field(default=1.0 / 256.0, gt=0, le=1, strict=True)
    rate_ai_mbps: Positive = 40.0
    tau_us: Positive = 50.0
    tau_prime_us: Positive = 55.0
    timer_us: Positive = 55.0
    byte_counter_mb: Positive = 10.0
    fast_recovery_steps: Annotated[int, Field(ge=0, strict=True)] = 5
    feedback_delay_us: NonNegative = 4.0


class RoceTransport(FabricModel):
    """RDMA over Converged Ethernet: ECMP hashing, PFC and ECN/DCQCN.

    Attributes:
        pfc: Lossless mode: a port whose ingress queue passes ``pfc_xoff_kb``
            pauses its upstream neighbour. Off means lossy (drops, not pauses).
        cc: Congestion control: ``dcqcn`` reacts to ECN marks, ``none`` sends at
            line rate and leans on PFC.
        qps_per_connection: Queue pairs per connection; each QP is hashed to
            its own path, so more QPs spread one connection over more paths.
        hash_seed: Seed of the ECMP hash, to vary collisions between runs.
        pfc_xoff_kb: Ingress queue at which a port sends PAUSE upstream
            (1 KB = 1000 bytes).
        pfc_xon_kb: Ingress queue at which it lets the upstream port resume.
        ecn_kmin_kb: ECN marking starts above this egress queue.
        ecn_kmax_kb: Marking probability reaches ``ecn_pmax`` here, 1 above.
        ecn_pmax: Marking probability at ``ecn_kmax_kb``.
        dcqcn: Sender-side DCQCN settings.
    """

    kind: Literal["roce"]
    pfc: bool = True
    cc: Literal["dcqcn", "none"] = "dcqcn"
    qps_per_connection: Count = 1
    hash_seed: Annotated[int, Field(ge=0, strict=True)] = 0
    pfc_xoff_kb: Positive = 512.0
    pfc_xon_kb: NonNegative = 480.0
    ecn_kmin_kb: NonNegative = 5.0
    ecn_kmax_kb: Positive = 200.0
    ecn_pmax: float = Field(default=0.01, gt=0, le=1, strict=True)
    dcqcn: DcqcnSettings = DcqcnSettings()

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


class InfinibandTransport(FabricModel):
    """InfiniBand: credit-based flow control (never drops) and adaptive routing.

    Attributes:
        adaptive_routing: Spread traffic over equal-cost paths by load; off
            means static, hash-like routing as with ECMP.
        adaptive_chunks: Pieces a flow is split into for adaptive routing
            (each piece picks the least-loaded path).
        hash_seed: Seed of the static route choice.
        credit_buffer_kb: Buffer per input port; a port whose queue passes it
            stops granting credits upstream (back-pressure).
    """

    kind: Literal["infiniband"]
    adaptive_routing: bool = True
    adaptive_chunks: Count = 8
    hash_seed: Annotated[int, Field(ge=0, strict=True)] = 0
    credit_buffer_kb: Positive = 256.0


class IdealTransport(FabricModel):
    """No congestion: every flow is sprayed evenly over all equal-cost paths."""

    kind: Literal["ideal"]


TransportConfig = Annotated[
    RoceTransport | InfinibandTransport | IdealTransport, Field(discriminator="kind")
]
"""The ``transport`` section: how senders share the fabric."""

TRANSPORT_KINDS: dict[str, type[FabricModel]] = {
    "roce": RoceTransport,
    "infiniband": InfinibandTransport,
    "ideal": IdealTransport,
}
"""Transport models by ``kind``."""


# --------------------------------------------------------------------------- file


class FabricConfig(FabricModel):
    """A whole FABRIC.yaml file.

    Attributes:
        topology: The cabling.
        transport: How senders share it.
        seed: Root seed of everything random in the fabric run.
        message_bytes: Size of the messages whose latency is sampled; one
            MTU of the topology when unset.
        latency_samples: How many messages to sample for the latency
            distribution (fewer if the traffic has fewer).
    """

    topology: TopologyConfig
    transport: TransportConfig
    seed: Annotated[int, Field(ge=0, strict=True)] = 0
    message_bytes: Annotated[int, Field(ge=1, strict=True)] | None = None
    latency_samples: Annotated[int, Field(ge=1, strict=True)] = 100_000

    def build_topology(self) -> Topology:
        """Compile the topology with :func:`sim.fabric.topology.build_topology`.

        Raises:
            ValueError: If the builder rejects a parameter (the message names it).
        """
        return _built(self.topology)


@functools.lru_cache(maxsize=8)
def _built(topology: TopologyConfig) -> Topology:
    """Build each distinct topology once: compiled topologies are read-only."""
    return build_topology(topology.kind, **topology.builder_params())


_UNKNOWN_FIELD = re.compile(r"^(.*?): ([A-Za-z_][\w.]*): unknown field \(.*\)$")


def _model_at(parent: tuple[str, ...], data: dict[str, Any]) -> type[FabricModel] | None:
    """The model that validates the mapping at ``parent`` in the raw data, if known."""
    if not parent:
        return FabricConfig
    section = data.get(parent[0])
    registry = {"topology": TOPOLOGY_KINDS, "transport": TRANSPORT_KINDS}.get(parent[0])
    if registry is None or not isinstance(section, dict):
        return None
    model = registry.get(section.get("kind"))
    if len(parent) == 1:
        return model
    if parent == ("transport", "dcqcn") and model is RoceTransport:
        return DcqcnSettings
    return None


def _name_valid_fields(problems: list[str], data: dict[str, Any]) -> list[str]:
    """Replace the scenario loader's hint on unknown fields by the fields that are valid there."""
    out = []
    for problem in problems:
        match = _UNKNOWN_FIELD.match(problem)
        model = _model_at(tuple(match.group(2).split(".")[:-1]), data) if match else None
        if match is None or model is None:
            out.append(problem)
            continue
        valid = ", ".join(name for name in model.model_fields if name != "kind")
        hint = f"valid fields: {valid}" if valid else "this kind takes no field but 'kind'"
        out.append(f"{match.group(1)}: {match.group(2)}: unknown field; {hint}")
    return out


_BUILDER_PROBLEM = re.compile(r"^(?:\w+: )?parameter '(\w+)' (.*)$", re.DOTALL)


def _build_problem(exc: ValueError, lines: dict[tuple[str | int, ...], int], source: str) -> str:
    """Render a builder's ``ValueError`` as ``FILE:LINE: topology.PARAM: what is wrong``."""
    text = str(exc)
    match = _BUILDER_PROBLEM.match(text)
    path: tuple[str, ...] = ("topology",)
    if match is not None:
        path, text = ("topology", match.group(1)), match.group(2)
    line = lines.get(path, lines.get(("topology",)))
    where = f"{source}:{line}" if line is not None and line > 0 else source
    return f"{where}: {'.'.join(path)}: {text}"


def fabric_from_text(text: str, source: str = "<fabric>") -> FabricConfig:
    """Validate FABRIC.yaml text, building the topology once to check it.

    Args:
        text: The YAML text.
        source: The name used in problem lines (usually the file path).

    Returns:
        The validated configuration.

    Raises:
        ScenarioError: With one line per problem, if anything is wrong.
    """
    data, lines = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise ScenarioError(
            [
                f"{source}: a fabric file must be a mapping with 'topology' and 'transport', "
                f"got {type(data).__name__ if data is not None else 'an empty file'}"
            ]
        )
    try:
        config = FabricConfig.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, data, lines, source)
        raise ScenarioError(_name_valid_fields(problems, data)) from None
    try:
        config.build_topology()
    except ValueError as exc:
        raise ScenarioError([_build_problem(exc, lines, source)]) from None
    return config


def load_fabric(path: str | Path) -> FabricConfig:
    """Read and validate a FABRIC.yaml file.

    Args:
        path: The YAML file.

    Returns:
        The validated configuration; its topology is known to build.

    Raises:
        ScenarioError: With one line per problem, each naming the file, line and
            field, e.g. ``fab.yaml:3: topology.k: must be even, got 5``.
    """
    text, source = read_input(path)
    return fabric_from_text(text, source)

"""Scenario files as pydantic models.

A scenario describes a provider (sites, clusters, nodes), the provider's own
internal demand, the outside tenants with their contracts and workloads, and
the policies that run the marketplace. Every choice among alternatives is a
discriminated union on a ``kind`` field, so that the JSON Schema tells an
editor exactly which fields each kind takes.

Durations are hours internally; files may write them as "90s", "15m", "6h",
"30d" (see :mod:`sim.scenario.durations`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from sim.fabric.config import TopologyConfig, TransportConfig
from sim.scenario.base import Strict
from sim.scenario.durations import Duration, Step, format_duration
from sim.scenario.power import SitePower

Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]

# Bounds of every number a scenario holds: finite, and far beyond any real cluster, so
# that a typing slip is refused with the bound named rather than run for hours.
MAX_GPUS = 1_048_576
"""2**20 GPUs: a job, block, cluster or quota larger than a million GPUs is refused."""

MAX_PRICE = 10_000.0
"""USD per GPU-hour: thousands of times any public GPU price."""

MAX_PARAMS_BILLION = 100_000.0
"""100 trillion parameters: a hundred times the largest models trained."""

MAX_TOKENS = 10_000_000
"""Tokens in a sequence, prompt or answer: ten times the longest context windows."""

MAX_RATE_PER_HOUR = 10_000.0
"""Job arrivals per hour of one workload: ten times a busy public cluster trace's."""

MAX_REQUESTS_PER_SECOND = 10_000_000.0
"""Requests per second to one served model: far beyond any public service's."""

MAX_DEGREE = 65_536
"""A parallel degree, microbatch count or queue depth."""

MAX_EVENTS = 2_000_000
"""Marketplace events a run may take (arrivals, steps, failures): an hour or so of work."""

MAX_SWEEP_POINTS = 100_000
"""Runs one sweep may hold."""

Count = Annotated[int, Field(gt=0, le=MAX_GPUS)]
"""A number of GPUs, nodes or replicas: 1 to 2**20."""

Price = Annotated[float, Field(gt=0, le=MAX_PRICE)]
"""USD per GPU-hour."""


def _shorthand(kind: str, field: str):
    """Let a bare value stand for ``{kind: KIND, FIELD: value}``."""

    def expand(value: Any) -> Any:
        if isinstance(value, dict | BaseModel):
            return value
        return {"kind": kind, field: value}

    return BeforeValidator(expand)


# --------------------------------------------------------------------------- distributions


class FixedDuration(Strict):
    """Every draw is the same duration."""

    kind: Literal["fixed"] = "fixed"
    value: Duration


class ExponentialDuration(Strict):
    """Exponentially distributed duration (memoryless service)."""

    kind: Literal["exponential"]
    mean: Duration = Field(gt=0)


class LognormalDuration(Strict):
    """Log-normal duration given by its median and the sigma of its logarithm.

    Cluster traces (Philly, Helios) have heavy-tailed run times that a
    log-normal fits well: Philly's median run is 874 s and its mean 18,006 s,
    which a median of 874 s with sigma about 2.46 reproduces.
    """

    kind: Literal["lognormal"]
    median: Duration = Field(gt=0)
    sigma: float = Field(gt=0, le=5)


class UniformDuration(Strict):
    """Duration uniform between ``low`` and ``high``."""

    kind: Literal["uniform"]
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> UniformDuration:
        if self.high < self.low:
            raise ValueError("high must not be below low")
        return self


DurationDist = Annotated[
    FixedDuration | ExponentialDuration | LognormalDuration | UniformDuration,
    Field(discriminator="kind"),
    _shorthand("fixed", "value"),
]


class FixedGpus(Strict):
    """Every job asks for the same number of GPUs."""

    kind: Literal["fixed"] = "fixed"
    value: Count


class ChoiceGpus(Strict):
    """GPUs per job drawn from a list of sizes with optional weights."""

    kind: Literal["choice"]
    values: list[Count] = Field(min_length=1, max_length=10_000)
    weights: list[Annotated[float, Field(ge=0, le=1e12)]] | None = None

    @model_validator(mode="after")
    def _weights_match(self) -> ChoiceGpus:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(
                    f"weights has {len(self.weights)} entries but values has {len(self.values)}"
                )
            if not sum(self.weights) > 0:
                raise ValueError("weights must not all be zero")
        return self


GpuDist = Annotated[
    FixedGpus | ChoiceGpus, Field(discriminator="kind"), _shorthand("fixed", "value")
]


def gpu_sizes(dist: FixedGpus | ChoiceGpus) -> list[int]:
    """All job sizes a GPU distribution can draw."""
    return [dist.value] if isinstance(dist, FixedGpus) else list(dist.values)


class PoissonArrivals(Strict):
    """Poisson arrivals: exponential gaps with the given mean rate."""

    kind: Literal["poisson"]
    rate_per_hour: float = Field(gt=0, le=MAX_RATE_PER_HOUR)


Arrivals = Annotated[PoissonArrivals, Field(discriminator="kind")]


# --------------------------------------------------------------------------- workloads


class TrainingModel(Strict):
    """The shape of the model a training job trains (a transformer)."""

    params_billion: float = Field(
        gt=0, le=MAX_PARAMS_BILLION, description="total parameters, billions"
    )
    layers: int = Field(gt=0, le=MAX_DEGREE)
    hidden: int = Field(gt=0, le=MAX_GPUS, description="hidden size")
    seq_len: int = Field(gt=0, le=MAX_TOKENS, description="tokens per sequence")
    active_params_billion: float | None = Field(
        default=None,
        gt=0,
        le=MAX_PARAMS_BILLION,
        description="mixture of experts: parameters active per token (at most params_billion)",
    )
    experts: int | None = Field(
        default=None, gt=1, le=MAX_DEGREE, description="mixture of experts: experts"
    )
    top_k: int = Field(
        default=2, gt=0, le=MAX_DEGREE, description="mixture of experts: experts per token"
    )

    @model_validator(mode="after")
    def _shape(self) -> TrainingModel:
        from sim.workloads.training import ModelShape

        ModelShape(**self.model_dump())  # its checks across fields, e.g. top_k <= experts
        return self


class Training(Strict):
    """How a training job computes and communicates each iteration.

    Each job's GPUs are split into tensor (``tp``), pipeline (``pp``) and data
    parallel groups (``dp`` = GPUs / (tp × pp), so it follows the job's size),
    with expert parallel groups of ``ep`` data-parallel ranks for a mixture of
    experts. The layout turns into collectives (see
    :mod:`sim.workloads.training`): traffic inside a node uses NVLink, the
    rest crosses the cluster's fabric, whose solution sets the iteration time.
    """

    model: TrainingModel
    tp: int = Field(default=1, gt=0, le=MAX_DEGREE, description="tensor parallel degree")
    pp: int = Field(default=1, gt=0, le=MAX_DEGREE, description="pipeline parallel degree")
    ep: int = Field(default=1, gt=0, le=MAX_DEGREE, description="expert parallel degree")
    microbatches: int = Field(
        default=8, gt=0, le=MAX_DEGREE, description="per iteration and data rank"
    )
    microbatch_sequences: int = Field(default=1, gt=0, le=MAX_DEGREE)
    mfu: float = Field(default=0.4, gt=0, le=1, description="model FLOPs utilisation")
    overlap: float = Field(
        default=0.0, ge=0, le=1, description="share of communication hidden under compute"
    )
    all_reduce: Literal["ring", "tree"] = "ring"
    data_parallel: Literal["allreduce", "fsdp"] = "allreduce"

    @model_validator(mode="after")
    def _layout(self) -> Training:
        self.spec()  # its checks across fields, e.g. ep <= model.experts
        return self

    def spec(self) -> Any:
        """This layout as a :class:`sim.workloads.training.TrainingSpec`."""
        from sim.workloads.training import ModelShape, TrainingSpec

        return TrainingSpec(
            model=ModelShape(**self.model.model_dump()),
            tp=self.tp,
            pp=self.pp,
            ep=self.ep,
            microbatches=self.microbatches,
            microbatch_sequences=self.microbatch_sequences,
            mfu=self.mfu,
            overlap=self.overlap,
            all_reduce=self.all_reduce,
            data_parallel=self.data_parallel,
        )

    def layout_problem(self, gpus: int) -> str | None:
        """Why a job of ``gpus`` GPUs cannot take this layout, or None."""
        group = self.tp * self.pp
        if gpus % group:
            return f"{gpus} GPUs do not split into tp x pp = {group}"
        if (gpus // group) % self.ep:
            return f"data parallel degree {gpus // group} of {gpus} GPUs is not a multiple of ep"
        return None


class BatchWorkload(Strict):
    """Jobs that each hold some GPUs for a run time of work, then leave.

    ``duration`` is the work a job needs on an unslowed fabric (its ideal run
    time); ``checkpoint_interval`` is the work between checkpoints (every N
    iterations, so it is counted in work, not wall time). A preempted or failed
    job resumes from its last checkpoint; without checkpoints it starts over.
    Writing a checkpoint stalls the job for ``checkpoint_write``; every restart
    (after a preemption or a failure) holds its GPUs for ``restart_overhead``
    (reloading the checkpoint, re-forming its communicators) before it works.
    """

    kind: Literal["batch"] = "batch"
    arrivals: Arrivals
    gpus: GpuDist
    duration: DurationDist
    checkpoint_interval: Duration | None = Field(default=None, gt=0)
    checkpoint_write: Duration = Field(default=0.0, description="stall to write a checkpoint")
    restart_overhead: Duration = Field(
        default=0.0, description="time a restarted job holds its GPUs before it works"
    )
    max_jobs: int | None = Field(
        default=None, gt=0, le=100_000_000, description="stop submitting after this many"
    )
    training: Training | None = Field(
        default=None, description="the jobs' parallelism and model: their fabric traffic"
    )


class ServedModel(Strict):
    """The shape of a model being served (a transformer)."""

    params_billion: float = Field(
        gt=0, le=MAX_PARAMS_BILLION, description="total parameters, billions"
    )
    layers: int = Field(gt=0, le=MAX_DEGREE)
    hidden: int = Field(gt=0, le=MAX_GPUS, description="hidden size")
    active_params_billion: float | None = Field(
        default=None,
        gt=0,
        le=MAX_PARAMS_BILLION,
        description="mixture of experts: parameters active per token (at most params_billion)",
    )
    kv_heads_ratio: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="KV heads over attention heads (grouped-query attention; 1 = none)",
    )

    @model_validator(mode="after")
    def _active(self) -> ServedModel:
        active = self.active_params_billion
        if active is not None and active > self.params_billion:
            raise ValueError(
                f"active_params_billion ({active:g}) exceeds params_billion "
                f"({self.params_billion:g})"
            )
        return self


class Requests(Strict):
    """Poisson request arrivals whose rate follows the day.

    The rate is ``rate_per_second * (1 + amplitude * cos(2π (t − peak_hour) / 24h))``.
    """

    rate_per_second: float = Field(
        gt=0, le=MAX_REQUESTS_PER_SECOND, description="mean arrivals per second"
    )
    amplitude: float = Field(default=0.3, ge=0, le=1)
    peak_hour: float = Field(default=20.0, ge=0, lt=24)


class Serving(Strict):
    """How a model is served and what its users expect.

    Each replica runs on ``tp`` GPUs (tensor parallel) and decodes up to
    ``max_batch`` requests at once. A request's latency is its wait for a
    batch slot (an M/M/c queue over all slots), its service (prefill and
    decode, from the accelerator's TFLOP/s and memory bandwidth), the
    replica's tensor-parallel all-reduces (NVLink inside a node, the fabric's
    rates and queues between nodes) and the client's round trip over the
    front-end network. See :mod:`sim.workloads.inference`.
    """

    model: ServedModel
    tp: int = Field(
        default=1, gt=0, le=MAX_DEGREE, description="GPUs per replica (tensor parallel)"
    )
    max_batch: int = Field(
        default=64, gt=0, le=MAX_DEGREE, description="requests a replica decodes at once"
    )
    prompt_tokens: int = Field(default=1024, gt=0, le=MAX_TOKENS)
    output_tokens: int = Field(default=256, gt=0, le=MAX_TOKENS, description="mean output tokens")
    mfu: float = Field(default=0.5, gt=0, le=1, description="compute efficiency")
    bandwidth_efficiency: float = Field(
        default=0.7, gt=0, le=1, description="share of memory bandwidth a decode step gets"
    )
    requests: Requests
    slo: Duration = Field(gt=0, description="request latency objective")
    client_rtt: Duration = Field(
        default=0.0, ge=0, description="front-end network round trip (outside the GPU fabric)"
    )
    step: Step = Field(
        default=0.25, description="how often the request rate and replicas are sampled"
    )

    @model_validator(mode="after")
    def _spec(self) -> Serving:
        self.spec()  # its checks across fields
        return self

    def spec(self) -> Any:
        """This serving setup as a :class:`sim.workloads.inference.ServingSpec`."""
        from sim.workloads.inference import ServingSpec
        from sim.workloads.training import ModelShape

        model = self.model
        return ServingSpec(
            model=ModelShape(
                params_billion=model.params_billion,
                layers=model.layers,
                hidden=model.hidden,
                seq_len=self.prompt_tokens,
                active_params_billion=model.active_params_billion,
            ),
            tp=self.tp,
            max_batch=self.max_batch,
            prompt_tokens=self.prompt_tokens,
            output_tokens=self.output_tokens,
            mfu=self.mfu,
            bandwidth_efficiency=self.bandwidth_efficiency,
            kv_heads_ratio=model.kv_heads_ratio,
        )

    def layout_problem(self, gpus_per_node: int) -> str | None:
        """Why replicas of ``tp`` GPUs cannot sit on nodes of ``gpus_per_node``, or None."""
        if self.tp > gpus_per_node and self.tp % gpus_per_node:
            return (
                f"a replica of tp = {self.tp} GPUs must fit in a node or take whole nodes "
                f"of {gpus_per_node} GPUs"
            )
        return None


class InferenceWorkload(Strict):
    """A served model: ``replicas`` long-running replicas that answer requests.

    Every replica is a job of ``serving.tp`` GPUs submitted when the contract
    starts and held until the horizon (a preempted spot replica queues
    again). Usable GPU-hours are the replicas' GPU-hours times the share of
    requests answered within the SLO.
    """

    kind: Literal["inference"]
    replicas: Count
    serving: Serving


def _workload_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "batch"))
    return str(getattr(value, "kind", "batch"))


Workload = Annotated[
    Annotated[BatchWorkload, Tag("batch")] | Annotated[InferenceWorkload, Tag("inference")],
    Discriminator(_workload_kind),
]


# --------------------------------------------------------------------------- contracts


class ReservedContract(Strict):
    """A guaranteed block of GPUs for a term, never preempted.

    The provider carves ``gpus`` GPUs (whole nodes) out of one cluster for the
    term; the tenant's jobs queue FIFO with backfill inside that block. Unused
    reserved GPUs are paid for, so they count as sold.
    """

    kind: Literal["reserved"]
    gpus: Count
    start: Duration = 0.0
    term: Duration | None = Field(default=None, gt=0, description="default: to the horizon")
    max_wait: Duration | None = None
    price_per_gpu_hour: Price | None = Field(
        default=None, description="USD per GPU-hour of the block, used or not"
    )


class OnDemandContract(Strict):
    """Jobs queue FIFO with backfill for surplus GPUs; never preempted."""

    kind: Literal["on_demand"]
    max_wait: Duration | None = Field(
        default=None, description="reject a job that waits longer; 0 = start at once or reject"
    )
    price_per_gpu_hour: Price | None = Field(
        default=None, description="USD per GPU-hour held; none: no revenue figure"
    )


class SpotContract(Strict):
    """Surplus GPUs that higher classes reclaim after a notice period.

    On preemption the work since the job's last checkpoint is lost and the job
    queues again (its ``max_wait`` clock restarts).
    """

    kind: Literal["spot"]
    notice: Duration = 2.0 / 60.0
    max_wait: Duration | None = None
    price_per_gpu_hour: Price | None = Field(
        default=None, description="USD per GPU-hour held (fixed pricing)"
    )


Contract = Annotated[
    ReservedContract | OnDemandContract | SpotContract, Field(discriminator="kind")
]


class Tenant(Strict):
    """An outside buyer of GPU capacity."""

    name: Name
    contract: Contract
    workload: Workload
    cluster: str | None = Field(default=None, description="run only in this cluster")
    accelerators: list[str] | None = Field(
        default=None,
        min_length=1,
        description="accelerator types its jobs may run on (default: any); work is "
        "measured on the first, and runs faster or slower elsewhere by dense TFLOP/s",
    )
    priority: int = Field(
        default=0,
        ge=-1_000_000_000,
        le=1_000_000_000,
        description="lowest_priority preemption: higher is kept longer",
    )


# --------------------------------------------------------------------------- internal demand


class InternalInference(Strict):
    """The provider's own inference fleet: a diurnal base of whole nodes.

    The fleet wants ``gpus * (1 + amplitude * cos(2π (t − peak_hour) / 24h))``
    GPUs, rounded up to whole nodes, re-evaluated every ``step``. It has
    priority over everything sold and reclaims spot capacity when it grows.
    """

    gpus: Count = Field(description="mean GPUs of the fleet")
    amplitude: float = Field(default=0.3, ge=0, le=1)
    peak_hour: float = Field(default=20.0, ge=0, lt=24)
    step: Step = 1.0
    cluster: str | None = None
    serving: Serving | None = Field(
        default=None,
        description="the model the fleet serves and its requests (replicas fit in a node)",
    )


class InternalTraining(Strict):
    """Bursts of the provider's own large training jobs, first in every queue."""

    arrivals: Arrivals
    gpus: GpuDist
    duration: DurationDist
    checkpoint_interval: Duration | None = Field(default=None, gt=0)
    checkpoint_write: Duration = Field(default=0.0, description="stall to write a checkpoint")
    restart_overhead: Duration = Field(
        default=0.0, description="time a restarted job holds its GPUs before it works"
    )
    cluster: str | None = None
    accelerators: list[str] | None = Field(
        default=None,
        min_length=1,
        description="accelerator types its jobs may run on (default: any); work is "
        "measured on the first, and runs faster or slower elsewhere by dense TFLOP/s",
    )
    training: Training | None = Field(
        default=None, description="the jobs' parallelism and model: their fabric traffic"
    )


class Internal(Strict):
    """The provider's own demand, served before anything sold."""

    inference: InternalInference | None = None
    training: InternalTraining | None = None


# --------------------------------------------------------------------------- provider


class IdealFabric(Strict):
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


class NetworkFabric(Strict):
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

    def build_topology(self) -> Any:
        """The compiled topology (built once per distinct topology section)."""
        from sim.fabric.config import FabricConfig

        return FabricConfig(topology=self.topology, transport=self.transport).build_topology()

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


Fabric = Annotated[IdealFabric | NetworkFabric, Field(discriminator="kind")]


class Capex(Strict):
    """What a cluster cost to build, written off straight-line over its service life.

    Every GPU costs ``(usd_per_gpu + network_usd_per_gpu) / (service_life_years
    × 8,766 h)`` per hour owned, used or not.
    """

    usd_per_gpu: float = Field(
        gt=0, le=10_000_000, description="server cost per GPU (the GPU and its host)"
    )
    network_usd_per_gpu: float = Field(
        default=0.0, ge=0, le=10_000_000, description="fabric cost per GPU"
    )
    service_life_years: float = Field(gt=0, le=100)


class Cluster(Strict):
    """A cluster of nodes on one fabric.

    ``accelerator`` is the type of every node, or a mapping from types to
    node counts for a cluster that mixes them (``{H100: 32, H200: 16}``: the
    first 32 nodes hold H100, the next 16 H200). A job runs on nodes of one
    type.
    """

    name: Name
    nodes: Count
    gpus_per_node: int = Field(
        default=8, gt=0, le=576, description="576 is the largest NVLink domain announced"
    )
    accelerator: str | dict[str, Count] = Field(
        default="H100", description="the nodes' type, or types and their node counts in order"
    )
    fabric: Fabric = IdealFabric()
    capex: Capex | None = Field(default=None, description="none: no depreciation is counted")

    @model_validator(mode="after")
    def _counts(self) -> Cluster:
        if isinstance(self.accelerator, dict):
            total = sum(self.accelerator.values())
            if not self.accelerator or total != self.nodes:
                raise ValueError(
                    f"accelerator: the node counts add up to {total}, not the cluster's "
                    f"{self.nodes} nodes"
                )
        return self

    def node_types(self) -> list[tuple[str, int]]:
        """Its accelerator types and their node counts, in node order."""
        if isinstance(self.accelerator, str):
            return [(self.accelerator, self.nodes)]
        return list(self.accelerator.items())

    def types(self) -> list[str]:
        """Its accelerator types, in node order."""
        return [name for name, _ in self.node_types()]


class Site(Strict):
    """A data-centre site holding one or more clusters."""

    name: Name
    clusters: list[Cluster] = Field(min_length=1)
    power: SitePower | None = Field(
        default=None, description="none: power is neither capped nor counted"
    )


class Failures(Strict):
    """GPU, node and software failures at Meta's Llama 3 rates (see :mod:`sim.market.failures`).

    Every GPU fails as a Poisson process at the rate Meta recorded per GPU-hour
    pre-training Llama 3 on 16,384 H100 (466 interruptions in 54 days), times
    ``rate_scale``, split by root cause. A hardware cause stops every job on the
    node and takes the node out of service for ``repair``; a software cause
    restarts the job on the GPU; planned maintenance restarts it without lost
    work. ``spares`` nodes per cluster are kept aside, unsold, to replace a
    failed node at once; a repaired node becomes a spare.
    """

    kind: Literal["llama3"] = "llama3"
    rate_scale: float = Field(default=1.0, ge=0, le=10_000, description="multiplies every rate")
    repair: Duration = Field(gt=0, description="how long a failed node is out of service")
    spares: int = Field(
        default=0, ge=0, le=MAX_GPUS, description="nodes per cluster kept for failed ones"
    )


class Provider(Strict):
    """Everything the provider owns."""

    sites: list[Site] = Field(min_length=1)
    failures: Failures | None = Field(default=None, description="none: nothing ever fails")

    def clusters(self) -> list[Cluster]:
        """All clusters, in file order."""
        return [cluster for site in self.sites for cluster in site.clusters]


# --------------------------------------------------------------------------- policies


class FirstFitPlacement(Strict):
    """Place a job on the lowest-numbered nodes that fit it."""

    kind: Literal["first_fit"] = "first_fit"


class PackPlacement(Strict):
    """Fill partly used nodes, racks and pods first, so that whole ones stay free."""

    kind: Literal["pack"]


class SpreadPlacement(Strict):
    """Spread a job over as many racks and pods as it can: one node per rack in turn."""

    kind: Literal["spread"]


class TopologyAwarePlacement(Strict):
    """Place a job in the fewest pods and racks of its cluster's fabric.

    A job that fits in one pod goes to the pod it fills best (the fewest free
    nodes that still hold it); a larger one spans the pods with the most free
    nodes. Inside a pod it takes whole free racks first. Jobs of at most one
    node go to the fullest node they fit on. On a fabric without pods (the
    ideal fabric) this is first fit with best-fit small jobs.

    ``pod_wait`` is Slurm's ``--switches=1@time`` for pods: a job small
    enough for one pod, when no pod has room for it, waits up to this long
    (from when it queued) for one before it spans pods.
    """

    kind: Literal["topology_aware"]
    pod_wait: Duration = Field(
        default=0.0, ge=0, description="how long a job that fits a pod waits for one"
    )


class RailAlignedPlacement(Strict):
    """Keep every node-to-node hop of a job's collectives on one rail.

    A job takes the same GPU slots on each of its nodes (whole nodes, or a
    window of slots a multiple of its tensor-parallel degree wide on partly
    used nodes) and lays its tensor groups on them in a snake, so that its
    data-parallel, pipeline and expert traffic runs between GPUs on the same
    rail switch of a rail-optimised fabric. Nodes are chosen in the fewest
    pods and racks (rail groups). A job of at most one node, or one no such
    shape fits, is placed as by ``topology_aware``.
    """

    kind: Literal["rail_aligned"]


Placement = Annotated[
    FirstFitPlacement
    | PackPlacement
    | RailAlignedPlacement
    | SpreadPlacement
    | TopologyAwarePlacement,
    Field(discriminator="kind"),
]


class Scheduling(Strict):
    """How queues are served: FIFO by class, with EASY backfilling."""

    backfill: bool = True
    backfill_depth: int = Field(
        default=200,
        ge=1,
        le=MAX_DEGREE,
        description="queued jobs examined per pass, as Slurm's bf_max_job_test",
    )


class Quota(Strict):
    """A tenant's share of the shared pool (Kueue's nominal quota), and what it lends."""

    gpus: int = Field(ge=0, le=MAX_GPUS, description="GPUs of the shared pool it may hold")
    cohort: Name | None = Field(default=None, description="tenants that lend each other")
    borrowing_limit: int | None = Field(
        default=None,
        ge=0,
        le=MAX_GPUS,
        description="GPUs it may hold beyond its quota (default: any)",
    )
    lending_limit: int | None = Field(
        default=None,
        ge=0,
        le=MAX_GPUS,
        description="of its unused quota, what others may use (default: all)",
    )


class AcceptAllAdmission(Strict):
    """Every job that fits may start."""

    kind: Literal["accept_all"] = "accept_all"


class QuotaAdmission(Strict):
    """Kueue-style quotas of the shared pool, with cohorts, borrowing and lending."""

    kind: Literal["quotas"]
    quotas: dict[Name, Quota] = Field(min_length=1)


class FabricAwareAdmission(Strict):
    """Defer a placement the fabric predicts would push a tenant past its slowdown SLO."""

    kind: Literal["fabric_aware"]
    slowdown_slo: dict[Name, Annotated[float, Field(ge=1, le=1_000_000)]] = Field(
        min_length=1, description="per tenant, the iteration slowdown to keep it under"
    )


Admission = Annotated[
    AcceptAllAdmission | QuotaAdmission | FabricAwareAdmission, Field(discriminator="kind")
]


class Preemption(Strict):
    """Which spot jobs get notice first when capacity is reclaimed.

    ``newest``: the most recently started; ``least_progress``: the least work
    done; ``lowest_priority``: tenants by ``priority`` (higher is kept
    longer), the newest first among equals.
    """

    kind: Literal["newest", "least_progress", "lowest_priority"] = "newest"


class SharedIsolation(Strict):
    """Tenants share every rack, spine and pod."""

    kind: Literal["shared"] = "shared"


class DedicatedPodsIsolation(Strict):
    """Pods of their own for some tenants; everyone else shares the other pods.

    ``pods`` gives each such tenant (``internal`` for the provider's own jobs)
    that many pods in every cluster, handed out in the order listed from the
    lowest pod. Only jobs of the shared pool are kept apart: reserved blocks
    and the inference fleet take whole nodes as before.
    """

    kind: Literal["dedicated_pods"]
    pods: dict[Name, Annotated[int, Field(ge=1, le=MAX_GPUS)]] = Field(
        min_length=1, description="pods per tenant, in every cluster"
    )


class RateLimitsIsolation(Strict):
    """Tenants share the fabric, but some send at most ``gbps`` per GPU.

    Each GPU's NIC shapes the tenant's traffic: the flows leaving one GPU share
    the limit equally (traffic inside a node is not shaped). A limited tenant
    cannot push its line rate into a congested port, so it spreads fewer pauses.
    """

    kind: Literal["rate_limits"]
    gbps: dict[Name, Annotated[float, Field(gt=0, le=100_000)]] = Field(
        min_length=1, description="per tenant, Gb/s per GPU"
    )


class TrafficClassesIsolation(Strict):
    """The named tenants' traffic gets a class of its own, with its own queues and PFC.

    Switches serve it first (strict priority), but on a link the other traffic
    also uses only up to ``1 - low_min_share`` of it: the other class keeps that
    share (an ETS guarantee) and gets whatever the first leaves. Pauses are per
    class, so a congested port of one class never stops the other's flows.
    """

    kind: Literal["traffic_classes"]
    high: list[Name] = Field(min_length=1, description="tenants of the high-priority class")
    low_min_share: float = Field(
        gt=0, lt=1, description="share of a link the other traffic keeps when both use it"
    )


Isolation = Annotated[
    SharedIsolation | DedicatedPodsIsolation | RateLimitsIsolation | TrafficClassesIsolation,
    Field(discriminator="kind"),
]


class FixedPricing(Strict):
    """Every contract pays the price written on it, spot included."""

    kind: Literal["fixed"] = "fixed"


class SurplusUtilisationPricing(Strict):
    """Spot pays ``floor + (ceiling - floor) * u ** exponent`` per GPU-hour.

    ``u`` is the share of the surplus GPUs (neither internal, reserved nor
    down) that on-demand and spot jobs hold. Reserved and on-demand contracts
    pay the price written on them.
    """

    kind: Literal["surplus_utilisation"]
    floor_per_gpu_hour: float = Field(
        ge=0, le=MAX_PRICE, description="USD per GPU-hour at an idle surplus"
    )
    ceiling_per_gpu_hour: Price = Field(description="USD per GPU-hour at a full surplus")
    exponent: float = Field(default=1.0, gt=0, le=100, description="1: linear in utilisation")

    @model_validator(mode="after")
    def _ordered(self) -> SurplusUtilisationPricing:
        if self.floor_per_gpu_hour > self.ceiling_per_gpu_hour:
            raise ValueError(
                f"floor_per_gpu_hour ({self.floor_per_gpu_hour}) is above "
                f"ceiling_per_gpu_hour ({self.ceiling_per_gpu_hour})"
            )
        return self


Pricing = Annotated[FixedPricing | SurplusUtilisationPricing, Field(discriminator="kind")]


class Policies(Strict):
    """Policy choices, each picked by ``kind`` from a registry."""

    placement: Placement = FirstFitPlacement()
    isolation: Isolation = SharedIsolation()
    pricing: Pricing = FixedPricing()
    preemption: Preemption = Preemption()
    admission: Admission = AcceptAllAdmission()
    scheduling: Scheduling = Scheduling()


# --------------------------------------------------------------------------- scenario


class Compare(Strict):
    """A ready comparison: what ``surplus compare FILE`` runs when no ``--policy`` is given.

    Each policy is a name and the fields it changes, as ``dotted.path: value`` pairs
    (the same paths as ``--set``); an empty mapping is the scenario as written.
    """

    seeds: int = Field(default=5, ge=1, le=10_000)
    baseline: Name | None = None
    policies: dict[Name, dict[str, Any]] = Field(min_length=1, max_length=1_000)

    @model_validator(mode="after")
    def _known_baseline(self) -> Compare:
        if self.baseline is not None and self.baseline not in self.policies:
            raise ValueError(
                f"baseline {self.baseline!r} is not one of the policies "
                f"({', '.join(self.policies)})"
            )
        return self


class Sweep(Strict):
    """A sweep: what ``surplus sweep FILE`` runs, one run per point.

    ``grid`` maps dotted paths (as for ``--set``) to lists of values and runs
    every combination; ``zip`` maps paths to lists of one length, varied
    together; every grid combination runs with every zip row, on ``seeds``
    seeds each (the file's seed and the ones after it).
    """

    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: dict[str, list[Any]] = Field(default_factory=dict)
    seeds: int = Field(default=1, ge=1, le=10_000)

    @model_validator(mode="after")
    def _shapes(self) -> Sweep:
        for path, values in {**self.grid, **self.zip}.items():
            if not values:
                raise ValueError(f"{path}: give at least one value")
        lengths = {path: len(values) for path, values in self.zip.items()}
        if len(set(lengths.values())) > 1:
            sizes = _few(f"{path}: {n}" for path, n in lengths.items())
            raise ValueError(f"zip: every list must have the same length ({sizes})")
        both = sorted(set(self.grid) & set(self.zip))
        if both:
            raise ValueError(f"{both[0]} is in both grid and zip")
        points = math.prod(len(values) for values in self.grid.values()) * self.seeds
        points *= max(lengths.values(), default=1)
        if points > MAX_SWEEP_POINTS:
            raise ValueError(
                f"the sweep has {points:,} points (grid x zip x seeds); at most "
                f"{MAX_SWEEP_POINTS:,} are supported"
            )
        return self


class Scenario(Strict):
    """A whole scenario file."""

    name: Name
    description: str = Field(default="", max_length=100_000)
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    horizon: Duration = Field(gt=0)
    provider: Provider
    internal: Internal = Internal()
    tenants: list[Tenant] = Field(default_factory=list)
    policies: Policies = Policies()
    compare: Compare | None = None
    sweep: Sweep | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        problems: list[str] = []
        clusters = {c.name: c for c in self.provider.clusters()}
        seen_sites: set[str] = set()
        for site in self.provider.sites:
            if site.name in seen_sites:
                problems.append(f"provider.sites: site name {site.name!r} is used twice")
            seen_sites.add(site.name)
        if len(clusters) != len(self.provider.clusters()):
            problems.append("provider: cluster names must be unique across sites")
        names = [t.name for t in self.tenants]
        for name in sorted(set(names)):
            if names.count(name) > 1:
                problems.append(f"tenants: tenant name {name!r} is used twice")
        if "internal" in names:
            problems.append("tenants: the name 'internal' is kept for the provider's own demand")
        if self.policies.pricing.kind == "surplus_utilisation":
            for t in self.tenants:
                if t.contract.kind == "spot" and t.contract.price_per_gpu_hour is not None:
                    problems.append(
                        f"tenants.{t.name}.contract.price_per_gpu_hour: spot pays the "
                        "surplus_utilisation price of policies.pricing; remove this price"
                    )
        contracts = {t.name: t.contract.kind for t in self.tenants}
        for name in getattr(self.policies.admission, "slowdown_slo", {}):
            if name != "internal" and name not in contracts:
                problems.append(
                    f"policies.admission.slowdown_slo: no tenant named {name!r} "
                    f"(tenants: {_few(names) or 'none'}; 'internal' is the provider)"
                )
        for name in getattr(self.policies.admission, "quotas", {}):
            if name not in contracts:
                problems.append(
                    f"policies.admission.quotas: no tenant named {name!r} "
                    f"(tenants: {_few(names) or 'none'})"
                )
            elif contracts[name] == "reserved":
                problems.append(
                    f"policies.admission.quotas.{name}: a reserved tenant runs in its own "
                    "block; quotas are for on-demand and spot tenants"
                )
        isolation = self.policies.isolation
        field = {"dedicated_pods": "pods", "rate_limits": "gbps", "traffic_classes": "high"}.get(
            isolation.kind, ""
        )
        for name in getattr(isolation, field, ()):
            if name != "internal" and name not in names:
                problems.append(
                    f"policies.isolation.{field}: no tenant named {name!r} "
                    f"(tenants: {_few(names) or 'none'}; 'internal' is the provider)"
                )

        def check_cluster(
            where: str, name: str | None, types: list[str] | None = None
        ) -> list[Cluster]:
            if name is None:
                eligible = list(clusters.values())
            elif name not in clusters:
                problems.append(
                    f"{where}.cluster: no cluster named {name!r} "
                    f"(clusters: {_few(sorted(clusters))})"
                )
                return []
            else:
                eligible = [clusters[name]]
            if types is None:
                return eligible
            unknown = [t for t in types if t not in known]
            if unknown:
                problems.append(
                    f"{where}.accelerators: unknown accelerator {unknown[0]!r}; "
                    f"known: {', '.join(sorted(known))}"
                )
                return []
            fitting = [c for c in eligible if set(c.types()) & set(types)]
            if not fitting:
                have = sorted({t for c in eligible for t in c.types()})
                problems.append(
                    f"{where}.accelerators: no cluster it may use has {', '.join(types)} "
                    f"(they have {_few(have)})"
                )
            return fitting

        def check_sizes(where: str, dist: FixedGpus | ChoiceGpus, limit: int) -> None:
            too_big = [g for g in gpu_sizes(dist) if g > limit]
            if too_big:
                problems.append(
                    f"{where}: jobs of {_few(map(str, too_big))} GPUs can never run "
                    f"(at most {limit} GPUs are available to them)"
                )

        def check_training(where: str, training: Training | None, dist: GpuDist) -> None:
            if training is None:
                return
            for gpus in gpu_sizes(dist):
                problem = training.layout_problem(gpus)
                if problem:
                    problems.append(f"{where}: {problem}")
                    return

        from sim.catalog import accelerators

        known = accelerators()
        spares = self.provider.failures.spares if self.provider.failures is not None else 0
        for i, site in enumerate(self.provider.sites):
            problem = _power_problem(site, known)
            if problem:
                problems.append(f"provider.sites[{i}].power.cap_mw: {problem}")
            for j, cluster in enumerate(site.clusters):
                if spares >= cluster.nodes:
                    problems.append(
                        f"provider.failures.spares: {spares} spare nodes per cluster leave "
                        f"none of cluster {cluster.name!r}'s {cluster.nodes} nodes in service"
                    )
                for name in cluster.types():
                    if name not in known:
                        problems.append(
                            f"provider.sites[{i}].clusters[{j}].accelerator: unknown "
                            f"accelerator {name!r}; known: {', '.join(sorted(known))}"
                        )
                if isinstance(cluster.fabric, NetworkFabric):
                    problem = cluster.fabric.host_problem(cluster.nodes * cluster.gpus_per_node)
                    if problem:
                        problems.append(
                            f"provider.sites[{i}].clusters[{j}].fabric.topology: {problem}"
                        )

        def check_serving(where: str, serving: Serving, clusters: list[Cluster]) -> None:
            for cluster in clusters:
                problem = serving.layout_problem(cluster.gpus_per_node)
                if problem:
                    problems.append(f"{where}.tp: {problem} (cluster {cluster.name!r})")
                    return

        for i, tenant in enumerate(self.tenants):
            where = f"tenants[{i}]"
            workload = tenant.workload
            if isinstance(workload, BatchWorkload):
                check_training(f"{where}.workload.training", workload.training, workload.gpus)
            eligible = check_cluster(where, tenant.cluster, tenant.accelerators)
            if not eligible:
                continue
            contract = tenant.contract
            if isinstance(contract, ReservedContract):
                fitting = [
                    c
                    for c in eligible
                    if contract.gpus % c.gpus_per_node == 0
                    and contract.gpus <= _gpus_of(c, (tenant.accelerators or c.types())[:1])
                ]
                if not fitting:
                    sizes = _few(f"{c.name}: {c.nodes} x {c.gpus_per_node}" for c in eligible)
                    problems.append(
                        f"{where}.contract.gpus: {contract.gpus} GPUs must be whole nodes "
                        f"within one cluster ({sizes})"
                    )
                    continue
                limit = contract.gpus
                if contract.start >= self.horizon:
                    problems.append(f"{where}.contract.start: the term starts after the horizon")
            else:
                limit = max(_gpus_of(c, tenant.accelerators) for c in eligible)
            if isinstance(workload, InferenceWorkload):
                check_serving(f"{where}.workload.serving", workload.serving, eligible)
                wanted = workload.replicas * workload.serving.tp
                if wanted > limit:
                    problems.append(
                        f"{where}.workload.replicas: {workload.replicas} replicas of "
                        f"{workload.serving.tp} GPUs need {wanted} GPUs, more than the "
                        f"{limit} available to them"
                    )
            else:
                check_sizes(f"{where}.workload.gpus", workload.gpus, limit)
        if self.internal.training is not None:
            check_training(
                "internal.training.training",
                self.internal.training.training,
                self.internal.training.gpus,
            )
            eligible = check_cluster(
                "internal.training",
                self.internal.training.cluster,
                self.internal.training.accelerators,
            )
            if eligible:
                types = self.internal.training.accelerators
                limit = max(_gpus_of(c, types) for c in eligible)
                check_sizes("internal.training.gpus", self.internal.training.gpus, limit)
        if self.internal.inference is not None:
            eligible = check_cluster("internal.inference", self.internal.inference.cluster)
            serving = self.internal.inference.serving
            for cluster in eligible if serving is not None else []:
                if serving.tp > cluster.gpus_per_node:
                    problems.append(
                        f"internal.inference.serving.tp: the fleet holds single nodes, so a "
                        f"replica of {serving.tp} GPUs must fit in a node of "
                        f"{cluster.gpus_per_node} (cluster {cluster.name!r})"
                    )
                    break
            if eligible:
                peak = self.internal.inference.gpus * (1 + self.internal.inference.amplitude)
                room = sum(c.nodes * c.gpus_per_node for c in eligible)
                if peak > room:
                    problems.append(
                        f"internal.inference.gpus: the peak of {math.ceil(peak)} GPUs exceeds "
                        f"the {room} GPUs it may use"
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _size(self) -> Scenario:
        gpus = sum(c.nodes * c.gpus_per_node for c in self.provider.clusters())
        if gpus > MAX_GPUS:
            raise ValueError(
                f"provider: its clusters hold {gpus:,} GPUs in all; at most {MAX_GPUS:,} "
                "are supported"
            )
        events = self.estimated_events()
        total = sum(events.values())
        if total > MAX_EVENTS:
            where, most = max(events.items(), key=lambda item: item[1])
            raise ValueError(
                f"{where}: the scenario would simulate about {total:.3g} marketplace events "
                f"({most:.3g} here) over its {format_duration(self.horizon)} horizon; at most "
                f"{MAX_EVENTS:,} are supported: shorten the horizon or lower the rate"
            )
        return self

    def estimated_events(self) -> dict[str, float]:
        """The expected number of marketplace events, by the field that causes them.

        Counts job arrivals (rate × horizon, at most ``max_jobs``), the sampling
        steps of every served model and of the inference fleet, failures at
        Meta's Llama 3 rates and the steps of random-walk electricity prices:
        what a run's cost grows with, known before it starts.
        """
        hours = self.horizon
        events: dict[str, float] = {}

        def jobs(where: str, workload: BatchWorkload | InternalTraining) -> None:
            expected = workload.arrivals.rate_per_hour * hours
            limit = getattr(workload, "max_jobs", None)
            events[f"{where}.arrivals.rate_per_hour"] = (
                expected if limit is None else min(expected, limit)
            )

        for i, tenant in enumerate(self.tenants):
            workload = tenant.workload
            if isinstance(workload, BatchWorkload):
                jobs(f"tenants[{i}].workload", workload)
            else:
                events[f"tenants[{i}].workload.serving.step"] = (
                    workload.replicas + hours / workload.serving.step
                )
        internal = self.internal
        if internal.training is not None:
            jobs("internal.training", internal.training)
        if internal.inference is not None:
            steps = hours / internal.inference.step
            if internal.inference.serving is not None:
                steps += hours / internal.inference.serving.step
            events["internal.inference.step"] = steps
        failures = self.provider.failures
        if failures is not None:
            from sim.market.failures import LLAMA3_CAUSES, LLAMA3_GPU_HOURS

            per_gpu_hour = sum(c.interruptions for c in LLAMA3_CAUSES) / LLAMA3_GPU_HOURS
            gpus = sum(c.nodes * c.gpus_per_node for c in self.provider.clusters())
            events["provider.failures.rate_scale"] = (
                2 * gpus * per_gpu_hour * failures.rate_scale * hours  # each failure and repair
            )
        for i, site in enumerate(self.provider.sites):
            price = site.power.price if site.power is not None else None
            if price is not None and price.kind == "random_walk":
                events[f"provider.sites[{i}].power.price.step"] = hours / price.step
        return events


def _few(items: Iterable[str], shown: int = 4) -> str:
    """Up to ``shown`` items joined by commas, then how many more: messages stay one short line."""
    items = list(items)
    text = ", ".join(items[:shown])
    return text if len(items) <= shown else f"{text} and {len(items) - shown:,} more"


def _gpus_of(cluster: Cluster, types: list[str] | None) -> int:
    """The GPUs of the cluster's largest block of one accepted type (a job takes one type)."""
    return max(
        (
            n * cluster.gpus_per_node
            for name, n in cluster.node_types()
            if types is None or name in types
        ),
        default=0,
    )


def _power_problem(site: Site, catalog: dict[str, Any]) -> str | None:
    """Why the site's cap cannot work, or None."""
    power = site.power
    blocks = [(c, name, n) for c in site.clusters for name, n in c.node_types()]
    if power is None or any(name not in catalog for _, name, _ in blocks):
        return None
    host = power.host_watts_per_gpu
    if power.policy == "throttle":
        idle_w = sum(
            n * c.gpus_per_node * (catalog[name].idle_watts + host) for c, name, n in blocks
        )
        if power.pue * idle_w > power.cap_mw * 1e6:
            return (
                f"{power.cap_mw} MW does not cover the site's GPUs even idle "
                f"({power.pue * idle_w / 1e6:.3f} MW at PUE {power.pue}); raise it or park nodes"
            )
        return None
    node_w = min(
        c.gpus_per_node * (catalog[name].tdp_watts + host) * power.pue for c, name, _ in blocks
    )
    if node_w > power.cap_mw * 1e6:
        return f"{power.cap_mw} MW cannot run even one node at full power ({node_w / 1e6:.4f} MW)"
    return None

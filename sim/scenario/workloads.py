"""What tenants and the provider run: job-size and duration distributions, arrivals,
training jobs and served models.

A batch workload is a stream of jobs (sizes, durations, arrivals, or a public
trace's jobs replayed: :mod:`sim.scenario.trace_source`; and optionally the model
it trains, which gives its network traffic); an inference workload is
a fleet of replicas serving a model to a request stream.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Discriminator, Field, Tag, model_validator

from sim.scenario.base import MAX_DEGREE, MAX_GPUS, Count, Strict
from sim.scenario.durations import Duration, Step
from sim.scenario.sla import misplaced
from sim.scenario.trace_source import TraceSource

# Bounds of a workload's numbers: far beyond any real model or service (as in
# sim.scenario.base).
MAX_PARAMS_BILLION = 100_000.0
"""100 trillion parameters: a hundred times the largest models trained."""

MAX_TOKENS = 10_000_000
"""Tokens in a sequence, prompt or answer: ten times the longest context windows."""

MAX_RATE_PER_HOUR = 10_000.0
"""Job arrivals per hour of one workload: ten times a busy public cluster trace's."""

MAX_REQUESTS_PER_SECOND = 10_000_000.0
"""Requests per second to one served model: far beyond any public service's."""


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


def trace_or_distributions(workload: Any) -> None:
    """A workload's jobs come from its ``trace`` or from its three distributions, not both.

    Raises:
        ValueError: Naming the field that must go, or the one that is missing.
    """
    fields = ("arrivals", "gpus", "duration")
    if workload.trace is not None:
        given = [f for f in fields if getattr(workload, f) is not None]
        if given:
            raise ValueError(
                f"{given[0]}: a trace workload's arrivals, GPUs and durations come from its "
                f"trace; remove {', '.join(given)}"
            )
        return
    for field in fields:
        if getattr(workload, field) is None:
            raise ValueError(f"{field}: missing required field (or give a trace)")


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
    arrivals: Arrivals | None = Field(default=None, description="required unless trace is given")
    gpus: GpuDist | None = Field(default=None, description="required unless trace is given")
    duration: DurationDist | None = Field(
        default=None, description="required unless trace is given"
    )
    trace: TraceSource | None = Field(
        default=None, description="replay a trace's jobs instead of drawing them"
    )
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

    @model_validator(mode="after")
    def _source(self) -> BatchWorkload:
        trace_or_distributions(self)
        return self


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

    @model_validator(mode="before")
    @classmethod
    def _no_tenant_sla(cls, data: Any) -> Any:
        """A tenant's terms are its contract's: refuse them on its serving block."""
        if isinstance(data, dict) and "sla" in data and "sla" not in cls.model_fields:
            why = (
                "a tenant's terms go in its contract's `sla` block (contract.sla); "
                "only the provider's own served model (internal.inference.serving) "
                "takes an `sla` here"
            )
            raise misplaced(cls.__name__, [("sla", why, data["sla"])])
        return data

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

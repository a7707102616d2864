"""Who asks for GPUs: outside tenants with their contracts, and the provider's own demand."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.scenario.base import Count, Name, Price, Strict
from sim.scenario.durations import Duration, Step
from sim.scenario.sla import ServedModelSla, Sla
from sim.scenario.trace_source import TraceSource
from sim.scenario.workloads import (
    Arrivals,
    DurationDist,
    GpuDist,
    Serving,
    Training,
    Workload,
    trace_or_distributions,
)

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
    sla: Sla | None = Field(default=None, description="service-level terms and credits")


class OnDemandContract(Strict):
    """Jobs queue FIFO with backfill for surplus GPUs; never preempted."""

    kind: Literal["on_demand"]
    max_wait: Duration | None = Field(
        default=None, description="reject a job that waits longer; 0 = start at once or reject"
    )
    price_per_gpu_hour: Price | None = Field(
        default=None, description="USD per GPU-hour held; none: no revenue figure"
    )
    sla: Sla | None = Field(default=None, description="service-level terms and credits")


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
    sla: Sla | None = Field(default=None, description="service-level terms and credits")


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


class InternalServing(Serving):
    """The model the provider's own fleet serves, and the terms it sets itself.

    The fields of a tenant's ``serving`` block (:class:`Serving`: how the model is
    served and its requests' latency modelled), plus ``sla``: a latency
    P99 ceiling and an SLO attainment floor the fleet's requests are checked
    against (verdicts in the ``internal`` entry of ``summary.json``, no credits).
    """

    sla: ServedModelSla | None = Field(
        default=None, description="service-level terms of the served model (no credits)"
    )


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
    serving: InternalServing | None = Field(
        default=None,
        description="the model the fleet serves, its requests and its terms "
        "(replicas fit in a node)",
    )


class InternalTraining(Strict):
    """Bursts of the provider's own large training jobs, first in every queue."""

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

    @model_validator(mode="after")
    def _source(self) -> InternalTraining:
        trace_or_distributions(self)
        return self


class Internal(Strict):
    """The provider's own demand, served before anything sold."""

    inference: InternalInference | None = None
    training: InternalTraining | None = None

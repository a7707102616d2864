"""The policies that run the marketplace, each picked by ``kind`` from a registry.

Placement, scheduling, admission, preemption, isolation and pricing: each
section here configures the policy class of the same ``kind`` in
:mod:`sim.policies`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.scenario.base import MAX_DEGREE, MAX_GPUS, MAX_PRICE, Name, Price, Strict
from sim.scenario.durations import Duration


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


class IsolationConfigBase(Strict):
    """What every isolation section answers, so that nothing else reads its fields.

    The scenario's checks ask which tenants it names (:meth:`tenant_fields`), the
    isolation policy which pods it gives (:meth:`pods_per_tenant`), and the fabric
    what it enforces (:meth:`rate_limits_gbps`, :meth:`high_priority_tenants`,
    :meth:`low_priority_share`): nothing, unless a kind says otherwise.
    """

    def tenant_fields(self) -> dict[str, list[str]]:
        """Per field of this section that names tenants, the names it lists."""
        return {}

    def pods_per_tenant(self) -> dict[str, int]:
        """Per tenant with pods of its own, how many in every cluster, in the order listed."""
        return {}

    def rate_limits_gbps(self) -> dict[str, float]:
        """Per tenant, the rate each of its GPUs may send at, Gb/s."""
        return {}

    def high_priority_tenants(self) -> frozenset[str]:
        """Tenants whose traffic has a class of its own, served first."""
        return frozenset()

    def low_priority_share(self) -> float:
        """Share of a link the other traffic keeps when both classes use it (0: no classes)."""
        return 0.0


class SharedIsolation(IsolationConfigBase):
    """Tenants share every rack, spine and pod."""

    kind: Literal["shared"] = "shared"


class DedicatedPodsIsolation(IsolationConfigBase):
    """Pods of their own for some tenants; everyone else shares the other pods.

    ``pods`` gives each such tenant (``internal`` for the provider's own jobs)
    that many pods in every cluster, handed out in the order listed from the
    lowest pod. Jobs of the shared pool keep to their zones, and so do reserved
    blocks: a tenant's block is carved from its own pods (or, for a tenant
    without pods, from the pods no tenant owns). The inference fleet takes whole
    nodes anywhere (it sends nothing over the fabric).
    """

    kind: Literal["dedicated_pods"]
    pods: dict[Name, Annotated[int, Field(ge=1, le=MAX_GPUS)]] = Field(
        min_length=1, description="pods per tenant, in every cluster"
    )

    def tenant_fields(self) -> dict[str, list[str]]:
        return {"pods": list(self.pods)}

    def pods_per_tenant(self) -> dict[str, int]:
        return dict(self.pods)


class RateLimitsIsolation(IsolationConfigBase):
    """Tenants share the fabric, but some send at most ``gbps`` per GPU.

    Each GPU's NIC shapes the tenant's traffic: the flows leaving one GPU share
    the limit equally (traffic inside a node is not shaped). A limited tenant
    cannot push its line rate into a congested port, so it spreads fewer pauses.
    """

    kind: Literal["rate_limits"]
    gbps: dict[Name, Annotated[float, Field(gt=0, le=100_000)]] = Field(
        min_length=1, description="per tenant, Gb/s per GPU"
    )

    def tenant_fields(self) -> dict[str, list[str]]:
        return {"gbps": list(self.gbps)}

    def rate_limits_gbps(self) -> dict[str, float]:
        return dict(self.gbps)


class TrafficClassesIsolation(IsolationConfigBase):
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

    def tenant_fields(self) -> dict[str, list[str]]:
        return {"high": list(self.high)}

    def high_priority_tenants(self) -> frozenset[str]:
        return frozenset(self.high)

    def low_priority_share(self) -> float:
        return self.low_min_share


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

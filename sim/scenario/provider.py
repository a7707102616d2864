"""What the provider owns: sites, their clusters of nodes on one fabric each, and failures."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.scenario.base import MAX_GPUS, Count, Name, Strict
from sim.scenario.durations import Duration
from sim.scenario.fabric import ClusterFabricConfig, IdealFabricConfig
from sim.scenario.power import SitePower
from sim.scenario.trace_source import NodesFrom


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
    type. ``nodes_from`` builds the nodes from a trace's node list instead (see
    :class:`~sim.scenario.trace_source.NodesFrom`): the loader fills ``nodes``,
    ``gpus_per_node`` and ``accelerator`` from it.
    """

    name: Name
    nodes: Count | None = Field(default=None, description="required unless nodes_from gives it")
    gpus_per_node: int = Field(
        default=8, gt=0, le=576, description="576 is the largest NVLink domain announced"
    )
    accelerator: str | dict[str, Count] = Field(
        default="H100", description="the nodes' type, or types and their node counts in order"
    )
    fabric: ClusterFabricConfig = IdealFabricConfig()
    capex: Capex | None = Field(default=None, description="none: no depreciation is counted")
    nodes_from: NodesFrom | None = Field(
        default=None, description="take nodes, GPUs per node and types from a trace's node list"
    )

    @model_validator(mode="after")
    def _counts(self) -> Cluster:
        if self.nodes is None:
            raise ValueError("nodes: missing required field (or give nodes_from)")
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

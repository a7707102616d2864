"""Isolation: which tenants may share a part of the fabric.

An isolation policy is a class registered in :data:`ISOLATIONS` under the scenario's
``policies.isolation.kind``. Before a job of the shared pool is placed, the marketplace
asks it which nodes the job must keep off; the placement policy chooses among the rest,
and spot GPUs are reclaimed for a blocked job only where it may run.

- ``shared``: tenants share every rack, spine and pod (the default).
- ``dedicated_pods``: some tenants get pods of their own (``pods: {atlas: 1, swarm: 1}``,
  that many pods in every cluster, handed out in the order listed from the lowest pod).
  A tenant with pods runs only there; every other tenant, the provider's own jobs
  included, runs in the pods nobody was given. On a Clos whose pods join only through
  the top tier, each link below the top tier and each link between a pod and the top tier
  serves one pod, so a tenant with its own pods shares no link with anyone (tested). The
  price: a tenant's pods stand idle when it has nothing to run, and its jobs wait when
  its pods are full although others have room. Reserved blocks keep to their tenant's
  zone too (its own pods, else the pods nobody owns); the inference fleet, which sends
  nothing over the fabric, takes whole nodes anywhere.
- ``rate_limits``: tenants share every node, but some send at most ``gbps`` per GPU
  (``gbps: {swarm: 100}``): the fabric model caps what their GPUs push, so a limited
  tenant cannot drive a congested port at line rate and spreads fewer pauses.
- ``traffic_classes``: tenants share every node, but the named ones (``high: [atlas]``)
  get a traffic class of their own with its own queues and per-priority PFC, served
  first up to all but the other class's guaranteed share (``low_min_share``) of a link.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from sim.market.inventory import Inventory
from sim.scenario.policies import Isolation, IsolationConfigBase
from sim.scenario.yaml_input import ScenarioError


class IsolationPolicy(Protocol):
    """What the marketplace asks an isolation policy (the fabric reads its section's config)."""

    config: IsolationConfigBase | None

    def bind(self, inventory: Inventory) -> None:
        """Learn the provider's nodes (once, after racks and pods are known)."""
        ...

    def excluded(self, tenant: str) -> np.ndarray | None:
        """Per node of the inventory, whether a job of ``tenant`` must keep off it (None: none)."""
        ...


class Shared:
    """Every tenant may use every node.

    What the fabric enforces (rate limits, traffic classes) it reads from the
    scenario's section itself (:class:`sim.scenario.policies.IsolationConfigBase`).
    """

    def __init__(self, config: IsolationConfigBase | None = None):
        self.config = config

    def bind(self, inventory: Inventory) -> None:
        """Learn the provider's nodes (once, after racks and pods are known)."""

    def excluded(self, tenant: str) -> np.ndarray | None:
        """Per node of the inventory, whether a job of ``tenant`` must keep off it (None: none)."""
        return None


class DedicatedPods(Shared):
    """Pods of their own for some tenants (see the module docstring)."""

    def __init__(self, config: IsolationConfigBase | None = None):
        super().__init__(config)
        self.pods_per_tenant = config.pods_per_tenant() if config is not None else {}
        self.zone: dict[str, np.ndarray] = {}
        """Per tenant with pods, its nodes (a boolean mask over the inventory)."""
        self._others: np.ndarray | None = None

    def bind(self, inventory: Inventory) -> None:
        n_nodes = inventory.capacity.size
        self.zone = {name: np.zeros(n_nodes, dtype=bool) for name in self.pods_per_tenant}
        wanted = sum(self.pods_per_tenant.values())
        problems = []
        for cluster in inventory.clusters:
            pods = np.unique(inventory.pod[cluster.node_slice])
            if pods.size < wanted:
                problems.append(
                    f"policies.isolation.pods: cluster {cluster.name!r} has {pods.size} "
                    f"pod(s), the tenants ask for {wanted}"
                )
                continue
            start = 0
            for name, count in self.pods_per_tenant.items():
                own = pods[start : start + count]
                self.zone[name] |= np.isin(inventory.pod, own)
                start += count
        if problems:
            raise ScenarioError(problems)
        given = np.zeros(n_nodes, dtype=bool)
        for mask in self.zone.values():
            given |= mask
        self._others = given

    def excluded(self, tenant: str) -> np.ndarray | None:
        zone = self.zone.get(tenant)
        return ~zone if zone is not None else self._others


class RateLimits(Shared):
    """Shared nodes; the fabric shapes some tenants' GPUs (see :mod:`sim.fabric.network`)."""


class TrafficClasses(Shared):
    """Shared nodes; the fabric gives some tenants a traffic class of their own."""


ISOLATIONS: dict[str, type[IsolationPolicy]] = {
    "shared": Shared,
    "dedicated_pods": DedicatedPods,
    "rate_limits": RateLimits,
    "traffic_classes": TrafficClasses,
}
"""Isolation policies by ``kind``."""


def make_isolation(config: Isolation) -> IsolationPolicy:
    """Build the isolation policy a scenario names."""
    return ISOLATIONS[config.kind](config)

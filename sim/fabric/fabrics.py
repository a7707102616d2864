"""The fabric models a cluster may have, by the scenario's ``fabric.kind``.

Kept apart from :mod:`sim.fabric.model` (the seam both models implement) so
that the registry can name the network model without the seam importing it.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.fabric.model import FabricModel, IdealFabric
from sim.fabric.network import NetworkFabric

__all__ = ["FABRICS"]

FABRICS: dict[str, Callable[..., FabricModel]] = {"ideal": IdealFabric, "network": NetworkFabric}
"""Fabric models by the scenario's ``fabric.kind``; each takes the cluster's ``fabric`` section
and the options of :class:`sim.fabric.network.NetworkFabric` (the ideal model ignores them)."""

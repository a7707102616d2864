"""The seam between the marketplace and the fabric: one solve per epoch.

Marketplace events are seconds to days apart; the fabric settles in micro- to
milliseconds. So whenever the set of running jobs in a cluster changes, the
marketplace hands the cluster's fabric model every running placement at once
and gets back each job's slowdown (actual / ideal iteration time) for the
epoch that starts now. Jobs then progress at ``1 / slowdown`` until the next
change. Models cache solutions of traffic mixes they have seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class RunningPlacement:
    """A running job as the fabric sees it: who, and on which nodes."""

    job_id: int
    tenant: str
    contract: str
    nodes: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True)
class EpochSolution:
    """What the fabric says about one epoch of a cluster.

    Attributes:
        slowdown: Iteration time over ideal iteration time (>= 1), per job id;
            a job left out runs at its ideal speed.
        pfc_pause_fraction: Fraction of time fabric ports are paused, or None
            where the fabric has no PFC.
        ecn_mark_fraction: Fraction of packets ECN-marked, or None.
    """

    slowdown: dict[int, float] = field(default_factory=dict)
    pfc_pause_fraction: float | None = None
    ecn_mark_fraction: float | None = None


class FabricModel(Protocol):
    """Anything that can solve a cluster's fabric for a set of placements."""

    def solve(self, placements: Sequence[RunningPlacement]) -> EpochSolution:
        """Solve one epoch for all the cluster's running placements together."""
        ...


class IdealFabric:
    """A fabric with infinite capacity and no latency: nothing is ever slowed."""

    def __init__(self, config: object = None, gpus_per_node: int = 8):
        self.config = config

    def solve(self, placements: Sequence[RunningPlacement]) -> EpochSolution:
        """Every job runs at its ideal speed."""
        return EpochSolution()


FABRICS: dict[str, type] = {"ideal": IdealFabric}
"""Fabric models by the scenario's ``fabric.kind``."""

"""Preemption: which spot jobs go first when capacity is reclaimed.

A preemption policy is a class registered in :data:`PREEMPTIONS` under the scenario's
``policies.preemption.kind``. When the provider's own demand (a training job, a growing
inference fleet) or an on-demand job needs GPUs that spot jobs hold, the marketplace
gives notice to spot jobs in the order the policy gives; a job under notice keeps
running until its notice ends, then loses the work since its last checkpoint and queues
again. Reserved and on-demand jobs are never preempted, whatever the policy (tested).

- ``newest``: the most recently started first (the default: it loses the least time
  since a start);
- ``least_progress``: the job with the least work done first (the least to redo when
  it restarts without checkpoints);
- ``lowest_priority``: tenants by their ``priority`` (higher is kept longer), newest
  first among equals.

Whole-node claims (a reserved block's term starting, the inference fleet growing) need
whole nodes, so they take the nodes that need the fewest GPUs preempted instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from sim.workloads.jobs import Job


class PreemptionPolicy(Protocol):
    """What the marketplace asks a preemption policy."""

    def order(self, victims: list[Job], now: float) -> list[Job]:
        """Spot jobs in the order they receive notice, at time ``now``."""
        ...


class Newest:
    """The most recently started spot job first."""

    def __init__(self, config: object = None, priorities: Mapping[str, int] | None = None):
        self.config = config
        self.priorities = dict(priorities or {})

    def order(self, victims: list[Job], now: float) -> list[Job]:
        """Spot jobs in the order they receive notice, at time ``now``."""
        return sorted(victims, key=lambda j: (-j.run_since, -j.job_id))


class LeastProgress(Newest):
    """The spot job with the least work done first; the newest first among equals."""

    def order(self, victims: list[Job], now: float) -> list[Job]:
        return sorted(victims, key=lambda j: (j.progress_at(now), -j.run_since, -j.job_id))


class LowestPriority(Newest):
    """The tenant with the lowest ``priority`` first; the newest first among equals."""

    def order(self, victims: list[Job], now: float) -> list[Job]:
        return sorted(
            victims,
            key=lambda j: (self.priorities.get(j.tenant, 0), -j.run_since, -j.job_id),
        )


PREEMPTIONS: dict[str, type[PreemptionPolicy]] = {
    "newest": Newest,
    "least_progress": LeastProgress,
    "lowest_priority": LowestPriority,
}
"""Preemption policies by ``kind``."""


def make_preemption(config: object, priorities: Mapping[str, int]) -> PreemptionPolicy:
    """Build the preemption policy a scenario names, with each tenant's priority."""
    return PREEMPTIONS[config.kind](config, priorities)

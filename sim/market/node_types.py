"""Clusters that mix node types: a job takes nodes of one type, so it keeps off the others.

A cluster may hold nodes of several accelerator types (a mixed fleet, or a
cluster filled from a trace's node list). A job runs on nodes of one type: of
the types it accepts (``Job.speeds``, in its order), or of any the cluster has.
Placement, spot reclaiming and EASY backfilling's shadow all ask, per type the
job may take, which nodes it must keep off; :func:`keep_offs` answers.
"""

from __future__ import annotations

import numpy as np

from sim.market.inventory import Inventory
from sim.workloads.jobs import Job


def keep_offs(
    inventory: Inventory, job: Job, excluded: np.ndarray | None
) -> list[np.ndarray | None]:
    """The nodes ``job`` must keep off, once per node type it may take, in its order.

    Args:
        inventory: The provider's nodes.
        job: The job.
        excluded: Nodes it may not use whatever their type (its isolation policy's), or None.

    Returns:
        ``[excluded]`` when no cluster of the job's mixes types; otherwise, per type,
        ``excluded`` and every node of another type.
    """
    if not any(inventory.clusters[i].node_types for i in job.clusters):
        return [excluded]
    kinds = list(job.speeds) if job.speeds else sorted(set(inventory.node_type))
    masks: list[np.ndarray | None] = []
    for kind in kinds:
        other = inventory.node_type != kind
        masks.append(other if excluded is None else (excluded | other))
    return masks


def never_usable(masks: list[np.ndarray | None]) -> np.ndarray | None:
    """Nodes off limits under every one of ``masks`` (None: some type may use any node)."""
    if any(mask is None for mask in masks):
        return None
    return np.logical_and.reduce(masks)

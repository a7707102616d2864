"""A trace's node list: the GPU nodes a public cluster had, by model and size.

:func:`read_nodes` reads a node list of a named format into a :class:`NodeList`
(one entry per node: its name, GPU model as the trace names it, and GPUs);
:meth:`NodeList.groups` counts its nodes per (model, GPUs per node), which is
what a scenario's cluster takes from it (``nodes_from``). Nodes with no GPU
(CPU-only hosts) are skipped and counted.

Formats: ``alibaba_spot_2026`` (``node_info_df.csv``: ``node_name, gpu_model,
gpu_capacity_num, cpu_num``, one row per node).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.scenario.yaml_input import ScenarioError
from sim.traces.csv_rows import Rows, number

__all__ = ["NODE_FORMATS", "NodeList", "read_nodes"]


@dataclass(frozen=True)
class NodeList:
    """The GPU nodes of a trace, one entry per node.

    Attributes:
        source: The file's name as messages give it.
        format: The node-list format (a key of :data:`NODE_FORMATS`).
        name: Each node's name.
        gpu_model: Each node's GPU model as the trace names it.
        gpus: Each node's GPUs (>= 1).
        skipped: Rows left out, counted per reason (e.g. ``"zero GPUs"``).
    """

    source: str
    format: str
    name: np.ndarray
    gpu_model: np.ndarray
    gpus: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)

    def groups(self) -> list[tuple[str, int, int]]:
        """``(gpu_model, gpus_per_node, node_count)`` per kind of node, sorted."""
        counts = Counter(zip(self.gpu_model.tolist(), self.gpus.tolist(), strict=True))
        return sorted((str(m), int(g), int(n)) for (m, g), n in counts.items())


def _alibaba_spot_2026(path: Path) -> NodeList:
    """The nodes of an Alibaba 2026 spot-GPU ``node_info_df.csv``."""
    rows = Rows(path, ("node_name", "gpu_model", "gpu_capacity_num"))
    names, models, gpus = [], [], []
    skipped = {"zero GPUs": 0}
    for line, row in rows:
        text = row["gpu_capacity_num"]
        try:
            value = number(text)
        except ValueError:
            rows.problem(line, "gpu_capacity_num", f"{text!r} is not a number")
            continue
        if value is None or value == 0:
            skipped["zero GPUs"] += 1
            continue
        if value < 0 or value != int(value):
            rows.problem(line, "gpu_capacity_num", f"{text!r} is not a whole number of GPUs")
            continue
        names.append(row["node_name"].strip())
        models.append(row["gpu_model"].strip())
        gpus.append(int(value))
    rows.raise_problems()
    if not gpus:
        raise ScenarioError([f"{path}: no node with GPUs"])
    return NodeList(
        source=str(path),
        format="alibaba_spot_2026",
        name=np.asarray(names, dtype=object),
        gpu_model=np.asarray(models, dtype=object),
        gpus=np.asarray(gpus, dtype=np.int64),
        skipped={k: v for k, v in skipped.items() if v},
    )


NODE_FORMATS: dict[str, Callable[[Path], NodeList]] = {
    "alibaba_spot_2026": _alibaba_spot_2026,
}
"""Readers of node lists by format name."""


def read_nodes(format: str, path: Path) -> NodeList:
    """Read a node list of the named format.

    Raises:
        ScenarioError: If the format is unknown, or the file cannot be read or has
            malformed rows (file, line and column named).
    """
    reader = NODE_FORMATS.get(format)
    if reader is None:
        known = ", ".join(sorted(NODE_FORMATS))
        raise ScenarioError([f"{path}: unknown node-list format {format!r}; known: {known}"])
    return reader(Path(path))

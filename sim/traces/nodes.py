"""A trace's node list: the machines its jobs ran on, to build a cluster from.

Two formats have one (by the same names as their job tables):

- ``alibaba_spot_2026``: ``node_info_df.csv`` with ``node_name, gpu_model,
  gpu_capacity_num, cpu_num`` (a header row); 4,278 nodes of 1, 4 or 8 GPUs of six
  models, some named only ``GPU-series-N``.
- ``alibaba_pai_2020``: ``pai_machine_spec`` with ``machine, gpu_type, cap_cpu,
  cap_mem, cap_gpu``; released without a header row (taken from a ``.header``
  file beside it, a header row, or the documented order, as for its job tables).

Nodes with no GPU (CPU machines) are skipped and counted. Sources: the traces'
READMEs in alibaba/clusterdata.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sim.scenario.yaml_input import ScenarioError
from sim.traces.csv_rows import Rows, header_of, number

__all__ = ["NODE_FORMATS", "Node", "NodeList", "read_nodes"]


@dataclass(frozen=True)
class Node:
    """One machine of a node list.

    Attributes:
        name: Its name in the file.
        gpu_model: Its GPU model as the file names it.
        gpus: Its GPUs (>= 1).
        line: Its line in the file.
    """

    name: str
    gpu_model: str
    gpus: int
    line: int


@dataclass(frozen=True)
class NodeList:
    """The GPU nodes of a trace's node list, in file order.

    Attributes:
        source: The file's name as messages give it.
        format: The node list's format (a key of :data:`NODE_FORMATS`).
        nodes: Its GPU nodes.
        skipped: Rows left out, counted per reason (``"zero GPUs"``).
    """

    source: str
    format: str
    nodes: tuple[Node, ...]
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.nodes)

    def groups(self) -> list[tuple[str, int, int]]:
        """``(gpu_model, gpus_per_node, node_count)`` per kind of node, sorted."""
        counts = Counter((node.gpu_model, node.gpus) for node in self.nodes)
        return [(model, gpus, count) for (model, gpus), count in sorted(counts.items())]

    def line_of(self, gpu_model: str) -> int:
        """The first line naming a GPU model (for messages about it); 0 if none does."""
        return next((node.line for node in self.nodes if node.gpu_model == gpu_model), 0)


def _read(path: Path, format: str, columns: tuple[str, ...], headerless: bool) -> NodeList:
    """Nodes from a CSV whose first three named columns are name, model and GPUs."""
    name_column, model_column, gpus_column = columns[0], columns[1], columns[-1]
    rows = Rows(path, columns, header_of(path, columns) if headerless else None)
    nodes = []
    zero = 0
    for line, row in rows:
        try:
            gpus = number(row[gpus_column])
        except ValueError:
            gpus = -1.0
        if gpus is None or gpus < 0 or gpus != math.floor(gpus):
            rows.problem(line, gpus_column, f"{row[gpus_column]!r} is not a whole number of GPUs")
            continue
        if gpus == 0:
            zero += 1
            continue
        model = row[model_column].strip()
        if not model:
            rows.problem(line, model_column, "empty, on a node with GPUs")
            continue
        nodes.append(Node(row[name_column].strip(), model, int(gpus), line))
    rows.raise_problems()
    return NodeList(str(path), format, tuple(nodes), {"zero GPUs": zero} if zero else {})


def read_alibaba_nodes(path: Path) -> NodeList:
    """The nodes of Alibaba 2026's ``node_info_df.csv``."""
    columns = ("node_name", "gpu_model", "cpu_num", "gpu_capacity_num")
    return _read(path, "alibaba_spot_2026", columns, headerless=False)


def read_pai_machines(path: Path) -> NodeList:
    """The machines of PAI 2020's ``pai_machine_spec`` (with or without a header row)."""
    columns = ("machine", "gpu_type", "cap_cpu", "cap_mem", "cap_gpu")
    return _read(path, "alibaba_pai_2020", columns, headerless=True)


NODE_FORMATS: dict[str, Callable[[Path], NodeList]] = {
    "alibaba_spot_2026": read_alibaba_nodes,
    "alibaba_pai_2020": read_pai_machines,
}
"""Readers of node lists by format name."""


def read_nodes(format: str, path: Path) -> NodeList:
    """Read a node list of the named format.

    Raises:
        ScenarioError: If the format has no node list, or the file cannot be read
            or has malformed rows (file, line and column named).
    """
    reader = NODE_FORMATS.get(format)
    if reader is None:
        known = ", ".join(sorted(NODE_FORMATS))
        raise ScenarioError([f"{path}: no node list in format {format!r}; known: {known}"])
    return reader(Path(path))

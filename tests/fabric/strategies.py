"""Shared hypothesis strategies for the fabric tests: rate problems, small fabrics, fuzzed files."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st
from pydantic import BaseModel

from sim.fabric.topology import Topology
from sim.fabric.topology_kinds import build_topology
from sim.scenario.fabric import TOPOLOGY_KINDS, TRANSPORT_KINDS, DcqcnSettings, FabricConfig


@dataclass(frozen=True)
class RateProblem:
    """A max-min rate allocation problem."""

    incidence: sp.csr_matrix
    capacity_gbps: np.ndarray
    weights: np.ndarray | None
    demand_gbps: np.ndarray | None

    @property
    def n_flows(self) -> int:
        return self.incidence.shape[0]


@st.composite
def rate_problems(
    draw: st.DrawFn,
    *,
    max_flows: int = 8,
    max_links: int = 6,
    fractional: bool = False,
    weighted: bool = True,
    demands: bool = True,
) -> RateProblem:
    """Random small incidence matrices, capacities, weights and demands.

    Every flow crosses at least one link. Capacities, weights and demands are
    drawn from a handful of round values so that ties between bottleneck
    levels (the hard case for progressive filling) happen often.
    """
    n_flows = draw(st.integers(1, max_flows))
    n_links = draw(st.integers(1, max_links))
    rows = []
    for _ in range(n_flows):
        row = draw(st.lists(st.booleans(), min_size=n_links, max_size=n_links))
        if not any(row):
            row[draw(st.integers(0, n_links - 1))] = True
        rows.append(row)
    mask = np.array(rows, dtype=bool)
    values = np.ones(mask.shape)
    if fractional:
        shares = st.sampled_from([0.25, 0.5, 1.0, 0.3])
        values = np.array(
            [[draw(shares) for _ in range(n_links)] for _ in range(n_flows)], dtype=float
        )
    incidence = sp.csr_matrix(np.where(mask, values, 0.0))
    capacity = np.array(
        [draw(st.sampled_from([1.0, 2.0, 3.0, 10.0, 40.0, 100.0, 0.5])) for _ in range(n_links)]
    )
    weights = None
    if weighted and draw(st.booleans()):
        weights = np.array(
            [draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])) for _ in range(n_flows)], dtype=float
        )
    demand = None
    if demands and draw(st.booleans()):
        demand = np.array(
            [draw(st.sampled_from([np.inf, 0.0, 0.5, 1.0, 5.0, np.inf])) for _ in range(n_flows)]
        )
    return RateProblem(incidence, capacity, weights, demand)


@st.composite
def small_topologies(draw: st.DrawFn) -> Topology:
    """Small fabrics of every registered kind."""
    kind = draw(st.sampled_from(["leaf_spine", "fat_tree", "rail_optimized", "meta_ai_zone"]))
    if kind == "leaf_spine":
        return build_topology(
            kind,
            hosts_per_leaf=draw(st.integers(1, 4)),
            leaves=draw(st.integers(1, 4)),
            spines=draw(st.integers(1, 3)),
            oversubscription=draw(st.sampled_from([1.0, 2.0, 3.0])),
        )
    if kind == "fat_tree":
        return build_topology(kind, k=draw(st.sampled_from([2, 4, 6])))
    if kind == "rail_optimized":
        return build_topology(
            kind,
            gpus_per_node=draw(st.integers(1, 4)),
            nodes_per_group=draw(st.integers(1, 3)),
            groups=draw(st.integers(1, 3)),
            spines=draw(st.integers(1, 3)),
        )
    return build_topology(
        kind,
        gpus_per_node=draw(st.integers(1, 4)),
        nodes_per_rack=draw(st.integers(1, 2)),
        racks_per_pod=draw(st.integers(1, 3)),
        pods=draw(st.integers(1, 3)),
        ctsw_per_pod=draw(st.integers(1, 3)),
        atsw_per_plane=draw(st.integers(1, 2)),
    )


@st.composite
def host_pairs(draw: st.DrawFn, topology: Topology, max_flows: int = 20) -> tuple[np.ndarray, ...]:
    """Random (src, dst) host arrays for ``topology``."""
    n = draw(st.integers(1, max_flows))
    host = st.integers(0, topology.n_hosts - 1)
    src = np.array(draw(st.lists(host, min_size=n, max_size=n)), dtype=np.int64)
    dst = np.array(draw(st.lists(host, min_size=n, max_size=n)), dtype=np.int64)
    return src, dst


# --------------------------------------------------------------------------- fuzzing inputs


@dataclass(frozen=True)
class Raw:
    """A YAML token written as is (``1e30``, ``.nan``, ``0x10``), not as Python would."""

    text: str


SMALL_TOPOLOGIES: tuple[dict[str, Any], ...] = (
    {"kind": "fat_tree", "k": 4, "link_gbps": 100.0},
    {"kind": "leaf_spine", "hosts_per_leaf": 2, "leaves": 3, "spines": 2, "oversubscription": 2.0},
    {
        "kind": "rail_optimized",
        "gpus_per_node": 2,
        "nodes_per_group": 2,
        "groups": 2,
        "spines": 2,
        "oversubscription": 1.0,
    },
    {
        "kind": "meta_ai_zone",
        "gpus_per_node": 2,
        "nodes_per_rack": 1,
        "racks_per_pod": 2,
        "pods": 2,
        "ctsw_per_pod": 2,
        "atsw_per_plane": 1,
        "oversubscription": 7.0,
    },
)
"""Valid fabrics of a few hosts, one per topology kind."""

SMALL_TRANSPORTS: tuple[dict[str, Any], ...] = (
    {"kind": "roce", "pfc": True, "cc": "dcqcn", "dcqcn": {"g": 0.00390625, "tau_us": 50.0}},
    {"kind": "roce", "pfc": True, "cc": "none", "pfc_xoff_kb": 270.0, "pfc_xon_kb": 180.0},
    {"kind": "roce", "pfc": False, "cc": "dcqcn", "qps_per_connection": 2},
    {"kind": "roce", "pfc": False, "cc": "none"},
    {"kind": "infiniband", "adaptive_routing": True, "adaptive_chunks": 4},
    {"kind": "infiniband", "adaptive_routing": False, "credit_buffer_kb": 256.0},
    {"kind": "ideal"},
)
"""Valid transports of every kind and mode."""

EVIL_VALUES: tuple[Any, ...] = (
    -1,
    0,
    -0.0,
    float("nan"),
    float("inf"),
    float("-inf"),
    1e300,
    -1e300,
    1e30,
    10**30,
    2**63,
    2**64,
    1e-300,
    0.5,
    1.5,
    True,
    None,
    "text",
    "",
    [],
    {},
    [1, 2],
    {"x": 1},
    Raw("1e30"),
    Raw("1.0e+30"),
    Raw("1e300"),
    Raw(".nan"),
    Raw("-.inf"),
    Raw("0x10"),
    Raw("1_000"),
    Raw("~"),
    Raw("1e-400"),
    Raw("'8'"),
)
"""Values no field should take, and spellings YAML reads in surprising ways."""

EDGE_VALUES: tuple[Any, ...] = (
    1,
    2,
    3,
    4,
    7,
    64,
    100,
    102,
    128,
    512,
    513,
    576,
    1000,
    0.01,
    64.0,
    1.0,
    3200.0,
    3200.5,
    1000.0,
    65_535,
    16_000_000.0,
    16_000_000_000,
    10_000.0,
    100_000.0,
    1_000_000,
    2**64 - 1,
)
"""Values at or just past the ends of the accepted ranges."""

FIELD_NAMES: tuple[str, ...] = (
    "k",
    "hosts_per_leaf",
    "leaves",
    "spines",
    "pods",
    "racks_per_pod",
    "ctsw_per_pod",
    "atsw_per_plane",
    "gpus_per_node",
    "nodes_per_rack",
    "nodes_per_group",
    "groups",
    "oversubscription",
    "link_gbps",
    "prop_delay_us",
    "buffer_bytes",
    "mtu_bytes",
)
"""Topology fields, to add to a kind that may not have them."""


def to_yaml(value: Any) -> str:
    """Flow-style YAML for nested dicts, lists and scalars; :class:`Raw` verbatim."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {to_yaml(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_yaml(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    return json.dumps(value)


def _model_of(document: dict[str, Any], section: str | None) -> type[BaseModel] | None:
    """The model that validates ``document[section]`` (the whole file for ``None``)."""
    if section is None:
        return FabricConfig
    if section == "dcqcn":
        return DcqcnSettings
    kinds: dict[str, Any] = {**TOPOLOGY_KINDS, **TRANSPORT_KINDS}
    part = document.get(section)
    kind = part.get("kind") if isinstance(part, dict) else None
    return kinds.get(kind) if isinstance(kind, str) else None


@st.composite
def in_range(draw: st.DrawFn, model: type[BaseModel], name: str) -> Any:
    """A value inside the declared range of a numeric field: an end, or log-uniform between."""
    field = model.model_fields[name]
    low, high, above = 0.0, None, False
    for rule in field.metadata:
        low = float(getattr(rule, "ge", low))
        if getattr(rule, "gt", None) is not None:
            low, above = float(rule.gt), True
        high = getattr(rule, "le", high)
    if field.annotation is int:
        top = int(high) if high is not None else 120
        return draw(st.sampled_from([int(low) + above, top]) | st.integers(int(low) + above, top))
    top = float(high) if high is not None else 1e6
    bottom = max(low, 1e-9) * (1 + 1e-9) if above else low
    if bottom <= 0:
        bottom_log = math.log10(max(top, 1.0)) - 12
        ends = st.sampled_from([0.0, top])
    else:
        bottom_log = math.log10(bottom)
        ends = st.sampled_from([bottom, top])
    spread = st.floats(bottom_log, math.log10(top)).map(lambda e: min(max(10**e, bottom), top))
    return draw(ends | spread)


def _paths(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key in data:
        out.append((*prefix, key))
        if isinstance(data[key], dict):
            out.extend(_paths(data[key], (*prefix, key)))
    return out


@st.composite
def fabric_documents(
    draw: st.DrawFn, *, max_mutations: int = 3, in_range_only: bool = False
) -> dict[str, Any]:
    """A small valid fabric file as data, with up to ``max_mutations`` random mutations.

    Mutations: a field set to an evil or edge value, or to a value anywhere in
    its declared range (an end, or log-uniform between), a field deleted, an
    unknown field or another kind's field added, a section replaced by a
    scalar, the kind changed or removed. With ``in_range_only`` every mutation
    stays in range: the file is valid field by field, and only the size rule
    or a combination (PFC Xon above Xoff) may refuse it.
    """
    document: dict[str, Any] = {
        "topology": copy.deepcopy(draw(st.sampled_from(SMALL_TOPOLOGIES))),
        "transport": copy.deepcopy(draw(st.sampled_from(SMALL_TRANSPORTS))),
    }
    if draw(st.booleans()):
        document["seed"] = draw(st.sampled_from([0, 3, 2**63 - 1]))
    if draw(st.booleans()):
        document["latency_samples"] = draw(st.sampled_from([1, 10, 1000]))
    if draw(st.booleans()):
        document["message_bytes"] = draw(st.sampled_from([64, 4096, 10**6]))
    values = st.sampled_from(EVIL_VALUES) | st.sampled_from(EDGE_VALUES)
    for _ in range(draw(st.integers(0, max_mutations))):
        paths = _paths(document)
        actions = [
            "set",
            "set",
            "set",
            "range",
            "range",
            "range",
            "delete",
            "add",
            "kind",
            "scalar",
        ]
        action = "range" if in_range_only else draw(st.sampled_from(actions))
        if action == "range":
            section = draw(st.sampled_from(["topology", "transport", "dcqcn", None]))
            target: Any = document
            if section == "dcqcn":
                target = document.get("transport")
                if isinstance(target, dict) and target.get("kind") == "roce":
                    target = target.setdefault("dcqcn", {})
            elif section is not None:
                target = document.get(section)
            model = _model_of(document, section)
            if model is None or not isinstance(target, dict):
                continue
            numeric = [
                name
                for name, field in model.model_fields.items()
                if field.annotation in (int, float) or (name == "message_bytes" and section is None)
            ]
            if not numeric:
                continue
            name = draw(st.sampled_from(numeric))
            target[name] = (
                draw(in_range(model, name))
                if name != "message_bytes"
                else draw(st.sampled_from([1, 64, 10**12]))
            )
            continue
        if action == "add":
            section = draw(st.sampled_from(["topology", "transport", None]))
            target = document.get(section) if section else document
            if isinstance(target, dict):
                name = draw(st.sampled_from([*FIELD_NAMES, "pfc", "dcqcn", "unknown_field"]))
                target[name] = copy.deepcopy(draw(values))
            continue
        if action == "kind":
            section = draw(st.sampled_from(["topology", "transport"]))
            if isinstance(document.get(section), dict):
                kind = draw(
                    st.sampled_from(["fat_tree", "roce", "ideal", "torus", "", None, Raw("~")])
                )
                if kind is None:
                    document[section].pop("kind", None)
                else:
                    document[section]["kind"] = kind
            continue
        if action == "scalar":
            document[draw(st.sampled_from(["topology", "transport"]))] = copy.deepcopy(draw(values))
            continue
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        holder = document
        for part in path[:-1]:
            holder = holder[part]
        if action == "delete":
            del holder[path[-1]]
        else:
            holder[path[-1]] = copy.deepcopy(draw(values))
    return document


def fabric_text(document: dict[str, Any]) -> str:
    """FABRIC.yaml text of a fabric document, one top-level key per line."""
    return "".join(f"{key}: {to_yaml(value)}\n" for key, value in document.items())


EVIL_CELLS: tuple[str, ...] = (
    "-1",
    "0",
    "-0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e300",
    "-1e300",
    "1e30",
    "99999999999999999999999999",
    "9223372036854775808",
    "1e12",
    "1000000000001",
    "86400000000",
    "86400000001",
    "1.5",
    "0.5",
    "abc",
    "",
    " 3 ",
    "0x10",
    "1_000",
    "true",
    '"1"',
    "1e-400",
)
"""FLOWS.csv cells no column should take, and spellings that read in surprising ways."""


@st.composite
def flows_texts(draw: st.DrawFn, n_hosts: int, *, max_rows: int = 5, mutate: bool = True) -> str:
    """A small valid FLOWS.csv for ``n_hosts`` hosts, randomly mutated unless ``mutate`` is off.

    Mutations: cells replaced by evil values, a column deleted or added,
    columns reordered, a row cut short or given an extra field, blank lines,
    a byte-order mark, and the degenerate files (empty, header only, no header).
    """
    if n_hosts < 2:
        mutate = True  # no valid flow exists: one host cannot send to another
    shapes = ["rows"] * 12 + ["empty", "header only", "blank", "no header", "junk"]
    shape = draw(st.sampled_from(shapes)) if mutate else "rows"
    header = ["src", "dst", "start_us", "size_bytes"]
    if shape == "empty":
        return ""
    if shape == "blank":
        return "\n\n"
    if shape == "junk":
        return draw(st.text(max_size=40))
    host = st.integers(0, max(n_hosts - 1, 0))
    rows = []
    for _ in range(draw(st.integers(1, max_rows))):
        src = draw(host)
        dst = draw(host)
        if n_hosts > 1 and dst == src:
            dst = (src + 1) % n_hosts
        start = draw(st.sampled_from(["0", "0", "1.5", "10", "1000", "86400000000"]))
        size = draw(st.sampled_from(["1", "1000", "64000", "1000000", "4000000", "1e12"]))
        rows.append([str(src), str(dst), start, size])
    if not mutate:
        return "src,dst,start_us,size_bytes\n" + "".join(",".join(row) + "\n" for row in rows)
    for _ in range(draw(st.integers(0, 3))):
        row = draw(st.integers(0, len(rows) - 1))
        rows[row][draw(st.integers(0, 3))] = draw(st.sampled_from(EVIL_CELLS))
    if draw(st.integers(0, 9)) == 0:  # a column deleted
        gone = draw(st.integers(0, 3))
        header.pop(gone)
        rows = [row[:gone] + row[gone + 1 :] for row in rows]
    if draw(st.integers(0, 9)) == 0:  # an extra column, or a path column
        extra = draw(st.sampled_from(["flow_id", "tag", "src", "", "path_index", "ack_path_index"]))
        header.append(extra)
        cells = st.sampled_from(["x", "", "0", "1", "3", "15", "-1", "0.5", "1e300", "nan"])
        rows = [[*row, draw(cells)] for row in rows]
    if draw(st.integers(0, 9)) == 0:  # columns in another order
        order = draw(st.permutations(range(len(header))))
        header = [header[i] for i in order]
        rows = [[row[i] for i in order] for row in rows]
    lines = [",".join(row) for row in rows]
    if draw(st.integers(0, 9)) == 0:  # a row too short or too long
        line = draw(st.integers(0, len(lines) - 1))
        lines[line] = lines[line].rsplit(",", 1)[0] if draw(st.booleans()) else lines[line] + ",7"
    if draw(st.integers(0, 9)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), "")
    head = ",".join(header)
    if shape == "header only":
        return head + "\n"
    if shape == "no header":
        return "\n".join(lines) + "\n"
    bom = "\ufeff" if draw(st.integers(0, 19)) == 0 else ""
    return bom + head + "\n" + "\n".join(lines) + "\n"

"""Clusters built from a trace's node list (a cluster's ``nodes_from``), when a scenario loads.

The loader reads each ``nodes_from`` node list (:func:`sim.traces.nodes.read_nodes`)
and fills its cluster's ``nodes``, ``gpus_per_node`` and ``accelerator`` before the
scenario is validated (:func:`expand_node_lists`), so that everything after it
(checks, power, fabrics, the run) sees an ordinary cluster, and the resolved
scenario shows the nodes it ran on. See :class:`sim.scenario.trace_source.NodesFrom`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.catalog import UnknownModel, catalog_name
from sim.scenario.trace_source import NodesFrom, scaled_count
from sim.scenario.yaml_input import Path_, ScenarioError, dotted


def node_fields(spec: NodesFrom, where: str) -> dict[str, Any]:
    """The ``nodes``, ``gpus_per_node`` and ``accelerator`` a node list gives a cluster.

    Args:
        spec: The cluster's ``nodes_from``.
        where: Its field path for messages.

    Raises:
        ScenarioError: Naming the field: a malformed row (file, line, column), a node
            size the list lacks or several sizes with none chosen, or a GPU model the
            catalog does not know.
    """
    from sim.traces.nodes import read_nodes

    try:
        nodes = read_nodes(spec.format, Path(spec.path))
    except ScenarioError as exc:
        raise ScenarioError([f"{where}.path: {p}" for p in exc.problems]) from None
    groups = nodes.groups()
    per_size: dict[int, int] = {}
    for _, gpus, count in groups:
        per_size[gpus] = per_size.get(gpus, 0) + count
    sizes = ", ".join(f"{n:,} nodes of {g} GPUs" for g, n in sorted(per_size.items()))
    size = spec.gpus_per_node
    if size is None and len(per_size) > 1:
        raise ScenarioError(
            [
                f"{where}.gpus_per_node: {nodes.source} has {sizes}; a cluster has one node "
                "size: declare one cluster per size, each with nodes_from.gpus_per_node"
            ]
        )
    if size is None:
        size = next(iter(per_size))
    if size not in per_size:
        raise ScenarioError([f"{where}.gpus_per_node: {nodes.source} has {sizes}, none of {size}"])
    counts: dict[str, int] = {}
    problems = []
    for model, gpus, count in groups:
        if gpus != size:
            continue
        try:
            name = catalog_name(model, spec.accelerator_map)
        except UnknownModel as exc:
            problems.append(f"{where}.accelerator_map: {exc} ({count:,} nodes in {nodes.source})")
            continue
        counts[name] = counts.get(name, 0) + count
    if problems:
        raise ScenarioError(problems)
    scaled = {name: scaled_count(count, spec.scale) for name, count in counts.items()}
    accelerator: str | dict[str, int] = next(iter(scaled)) if len(scaled) == 1 else scaled
    return {"nodes": sum(scaled.values()), "gpus_per_node": size, "accelerator": accelerator}


def expand_node_lists(
    data: dict[str, Any], lines: dict[Path_, int], source: str, base_dir: str | None
) -> None:
    """Fill, in place, every cluster of ``data`` that has ``nodes_from`` from its node list.

    A ``nodes_from`` that does not validate is left for the scenario's validation
    to report. A cluster that also gives ``nodes``, ``gpus_per_node`` or
    ``accelerator`` must agree with its list (a resolved scenario, dumped and
    read again, does).

    Raises:
        ScenarioError: One line per problem, naming the scenario file, line and field.
    """
    provider = data.get("provider")
    sites = provider.get("sites") if isinstance(provider, dict) else None
    problems: list[str] = []
    for i, site in enumerate(sites if isinstance(sites, list) else []):
        clusters = site.get("clusters") if isinstance(site, dict) else None
        for j, cluster in enumerate(clusters if isinstance(clusters, list) else []):
            if not isinstance(cluster, dict) or not isinstance(cluster.get("nodes_from"), dict):
                continue
            path: Path_ = ("provider", "sites", i, "clusters", j)
            at = lines.get((*path, "nodes_from"), 0)
            here = f"{source}:{at}" if at > 0 else f"{source} (--set)"
            try:
                spec = NodesFrom.model_validate(
                    cluster["nodes_from"], context={"base_dir": base_dir}
                )
            except ValidationError:
                continue
            try:
                filled = node_fields(spec, dotted((*path, "nodes_from")))
            except ScenarioError as exc:
                problems.extend(f"{here}: {p}" for p in exc.problems)
                continue
            for key, value in filled.items():
                if key in cluster and cluster[key] != value:
                    problems.append(
                        f"{here}: {dotted((*path, key))}: {cluster[key]!r} where nodes_from "
                        f"gives {value!r}; remove it (nodes_from sets it)"
                    )
                cluster[key] = value
                lines.setdefault((*path, key), at)
            cluster["nodes_from"] = spec.model_dump(mode="json")
    if problems:
        raise ScenarioError(problems)

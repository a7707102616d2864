"""Checks across a scenario's sections: what no single section can check on its own.

Each section that refers to another (a tenant's cluster, a quota's tenant, a
cluster's fabric and its GPUs) has one check here, named after it; a
:class:`sim.scenario.models.Scenario` runs them all, section by section, and
reports every problem at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sim.scenario.fabric import NetworkFabricConfig
from sim.scenario.policies import (
    Admission,
    FabricAwareAdmission,
    Isolation,
    Pricing,
    QuotaAdmission,
)
from sim.scenario.provider import Cluster, Provider, Site
from sim.scenario.tenants import Internal, ReservedContract, Tenant
from sim.scenario.trace_source import TraceSource, replay_jobs
from sim.scenario.workloads import (
    BatchWorkload,
    ChoiceGpus,
    FixedGpus,
    GpuDist,
    InferenceWorkload,
    Serving,
    Training,
    gpu_sizes,
)
from sim.scenario.yaml_input import ScenarioError


def provider_name_problems(provider: Provider) -> list[str]:
    """``provider``: site names and cluster names are each used once."""
    problems: list[str] = []
    seen_sites: set[str] = set()
    for site in provider.sites:
        if site.name in seen_sites:
            problems.append(f"provider.sites: site name {site.name!r} is used twice")
        seen_sites.add(site.name)
    if len({c.name for c in provider.clusters()}) != len(provider.clusters()):
        problems.append("provider: cluster names must be unique across sites")
    return problems


def tenant_name_problems(names: list[str]) -> list[str]:
    """``tenants``: each name once, and not ``internal`` (the provider's own demand)."""
    problems = [
        f"tenants: tenant name {name!r} is used twice"
        for name in sorted(set(names))
        if names.count(name) > 1
    ]
    if "internal" in names:
        problems.append("tenants: the name 'internal' is kept for the provider's own demand")
    return problems


def pricing_problems(pricing: Pricing, tenants: list[Tenant]) -> list[str]:
    """``policies.pricing``: a spot tenant names no price where the policy sets it."""
    if pricing.kind != "surplus_utilisation":
        return []
    return [
        f"tenants.{t.name}.contract.price_per_gpu_hour: spot pays the "
        "surplus_utilisation price of policies.pricing; remove this price"
        for t in tenants
        if t.contract.kind == "spot" and t.contract.price_per_gpu_hour is not None
    ]


def admission_problems(admission: Admission, tenants: list[Tenant]) -> list[str]:
    """``policies.admission``: SLOs and quotas name tenants (quotas no reserved one)."""
    problems: list[str] = []
    names = [t.name for t in tenants]
    contracts = {t.name: t.contract.kind for t in tenants}
    if isinstance(admission, FabricAwareAdmission):
        for name in admission.slowdown_slo:
            if name != "internal" and name not in contracts:
                problems.append(
                    f"policies.admission.slowdown_slo: no tenant named {name!r} "
                    f"(tenants: {few(names) or 'none'}; 'internal' is the provider)"
                )
    if isinstance(admission, QuotaAdmission):
        for name in admission.quotas:
            if name not in contracts:
                problems.append(
                    f"policies.admission.quotas: no tenant named {name!r} "
                    f"(tenants: {few(names) or 'none'})"
                )
            elif contracts[name] == "reserved":
                problems.append(
                    f"policies.admission.quotas.{name}: a reserved tenant runs in its own "
                    "block; quotas are for on-demand and spot tenants"
                )
    return problems


def isolation_problems(isolation: Isolation, names: list[str]) -> list[str]:
    """``policies.isolation``: every tenant it names exists (or is ``internal``)."""
    return [
        f"policies.isolation.{field}: no tenant named {name!r} "
        f"(tenants: {few(names) or 'none'}; 'internal' is the provider)"
        for field, named in isolation.tenant_fields().items()
        for name in named
        if name != "internal" and name not in names
    ]


def provider_problems(provider: Provider, known: dict[str, Any]) -> list[str]:
    """``provider.sites``: caps, spares, accelerators and fabrics that can work.

    A site's power cap must run its nodes, the spares must leave nodes in
    service, every accelerator must be in the catalog, and a network fabric
    must have one host per GPU.
    """
    problems: list[str] = []
    spares = provider.failures.spares if provider.failures is not None else 0
    for i, site in enumerate(provider.sites):
        problem = _power_problem(site, known)
        if problem:
            problems.append(f"provider.sites[{i}].power.cap_mw: {problem}")
        for j, cluster in enumerate(site.clusters):
            if spares >= cluster.nodes:
                problems.append(
                    f"provider.failures.spares: {spares} spare nodes per cluster leave "
                    f"none of cluster {cluster.name!r}'s {cluster.nodes} nodes in service"
                )
            for name in cluster.types():
                if name not in known:
                    problems.append(
                        f"provider.sites[{i}].clusters[{j}].accelerator: unknown "
                        f"accelerator {name!r}; known: {', '.join(sorted(known))}"
                    )
            if isinstance(cluster.fabric, NetworkFabricConfig):
                problem = cluster.fabric.host_problem(cluster.nodes * cluster.gpus_per_node)
                if problem:
                    problems.append(f"provider.sites[{i}].clusters[{j}].fabric.topology: {problem}")
    return problems


def tenant_problems(
    tenants: list[Tenant], clusters: dict[str, Cluster], known: dict[str, Any], horizon: float
) -> list[str]:
    """``tenants``: each tenant's demand fits where it may run.

    Its cluster and accelerators must exist, and its jobs, reserved block or
    replicas must fit the clusters it may use.
    """
    problems: list[str] = []
    for i, tenant in enumerate(tenants):
        where = f"tenants[{i}]"
        workload = tenant.workload
        if isinstance(workload, BatchWorkload) and workload.trace is None:
            _training_problems(
                problems, f"{where}.workload.training", workload.training, workload.gpus
            )
        eligible = _eligible(problems, where, tenant.cluster, tenant.accelerators, clusters, known)
        if not eligible:
            continue
        contract = tenant.contract
        if isinstance(contract, ReservedContract):
            fitting = [
                c
                for c in eligible
                if contract.gpus % c.gpus_per_node == 0
                and contract.gpus <= _gpus_of(c, (tenant.accelerators or c.types())[:1])
            ]
            if not fitting:
                sizes = few(f"{c.name}: {c.nodes} x {c.gpus_per_node}" for c in eligible)
                problems.append(
                    f"{where}.contract.gpus: {contract.gpus} GPUs must be whole nodes "
                    f"within one cluster ({sizes})"
                )
                continue
            limit = contract.gpus
            if contract.start >= horizon:
                problems.append(f"{where}.contract.start: the term starts after the horizon")
        else:
            limit = max(_gpus_of(c, tenant.accelerators) for c in eligible)
        if isinstance(workload, InferenceWorkload):
            _serving_problems(problems, f"{where}.workload.serving", workload.serving, eligible)
            wanted = workload.replicas * workload.serving.tp
            if wanted > limit:
                problems.append(
                    f"{where}.workload.replicas: {workload.replicas} replicas of "
                    f"{workload.serving.tp} GPUs need {wanted} GPUs, more than the "
                    f"{limit} available to them"
                )
        elif workload.trace is not None:
            problems.extend(
                replay_problems(
                    f"{where}.workload",
                    workload.trace,
                    workload.training,
                    eligible,
                    tenant.accelerators,
                    limit if isinstance(contract, ReservedContract) else None,
                )
            )
        else:
            _size_problems(problems, f"{where}.workload.gpus", workload.gpus, limit)
    return problems


def internal_problems(
    internal: Internal, clusters: dict[str, Cluster], known: dict[str, Any]
) -> list[str]:
    """``internal``: the provider's training jobs and inference fleet fit where they may run."""
    problems: list[str] = []
    training = internal.training
    if training is not None:
        if training.trace is None:
            _training_problems(
                problems, "internal.training.training", training.training, training.gpus
            )
        eligible = _eligible(
            problems, "internal.training", training.cluster, training.accelerators, clusters, known
        )
        if eligible and training.trace is not None:
            problems.extend(
                replay_problems(
                    "internal.training",
                    training.trace,
                    training.training,
                    eligible,
                    training.accelerators,
                )
            )
        elif eligible:
            limit = max(_gpus_of(c, training.accelerators) for c in eligible)
            _size_problems(problems, "internal.training.gpus", training.gpus, limit)
    inference = internal.inference
    if inference is not None:
        eligible = _eligible(
            problems, "internal.inference", inference.cluster, None, clusters, known
        )
        serving = inference.serving
        for cluster in eligible if serving is not None else []:
            if serving.tp > cluster.gpus_per_node:
                problems.append(
                    f"internal.inference.serving.tp: the fleet holds single nodes, so a "
                    f"replica of {serving.tp} GPUs must fit in a node of "
                    f"{cluster.gpus_per_node} (cluster {cluster.name!r})"
                )
                break
        if eligible:
            peak = inference.gpus * (1 + inference.amplitude)
            room = sum(c.nodes * c.gpus_per_node for c in eligible)
            if peak > room:
                problems.append(
                    f"internal.inference.gpus: the peak of {math.ceil(peak)} GPUs exceeds "
                    f"the {room} GPUs it may use"
                )
    return problems


def replay_problems(
    where: str,
    source: TraceSource,
    training: Training | None,
    eligible: list[Cluster],
    types: list[str] | None,
    limit: int | None = None,
) -> list[str]:
    """``WORKLOAD.trace``: the trace reads, and every job it replays can run somewhere.

    Reads the trace (once per process, :func:`replay_jobs`). With ``accelerator:
    trace`` each job needs a cluster it may use with nodes of its own type, and
    the workload's ``accelerators`` list does not apply; with ``any``, a cluster of
    a type it accepts. Every job's GPUs must fit one block of such nodes (and
    ``limit``: a reserved block), and the training layout must split them.
    """
    trace = f"{where}.trace"
    try:
        replay = replay_jobs(source, trace)
    except ScenarioError as exc:
        return exc.problems
    owner = where.removesuffix(".workload")
    if source.accelerator == "trace" and types is not None:
        return [
            f"{owner}.accelerators: with {trace}.accelerator: trace each job runs on the "
            "type its trace names; remove accelerators, or set accelerator: any"
        ]
    problems: list[str] = []
    for gpus in sorted({int(g) for g in replay.gpus}) if training is not None else []:
        problem = training.layout_problem(gpus)
        if problem:
            problems.append(f"{where}.training: {problem} (a job of {trace})")
            break

    def first(chosen: Any) -> str:
        return f"{replay.source}:{int(replay.line[chosen][0])}"

    for kind in sorted(set(replay.accelerator.tolist())):
        mine = replay.accelerator == kind
        if source.accelerator == "trace":
            room = max(_gpus_of(c, [kind]) for c in eligible)
            if room == 0:
                have = sorted({t for c in eligible for t in c.types()})
                problems.append(
                    f"{trace}: {int(mine.sum()):,} jobs ran on {kind} (first at {first(mine)}), "
                    f"which no cluster they may use has (they have {few(have)}); map their "
                    "model to one of those (accelerator_map) or set accelerator: any"
                )
                continue
        else:
            room = max(_gpus_of(c, types) for c in eligible)
        if limit is not None:
            room = min(room, limit)
        big = mine & (replay.gpus > room)
        if big.any():
            problems.append(
                f"{trace}.gpu_scale: {int(big.sum()):,} jobs on {kind} need up to "
                f"{int(replay.gpus[big].max())} GPUs (first at {first(big)}), more than the "
                f"{room} available to them; lower gpu_scale or give them more nodes"
            )
    return problems


def _eligible(
    problems: list[str],
    where: str,
    name: str | None,
    types: list[str] | None,
    clusters: dict[str, Cluster],
    known: dict[str, Any],
) -> list[Cluster]:
    """The clusters a demand may use (its ``cluster``, else all) that have its accelerators."""
    if name is None:
        eligible = list(clusters.values())
    elif name not in clusters:
        problems.append(
            f"{where}.cluster: no cluster named {name!r} (clusters: {few(sorted(clusters))})"
        )
        return []
    else:
        eligible = [clusters[name]]
    if types is None:
        return eligible
    unknown = [t for t in types if t not in known]
    if unknown:
        problems.append(
            f"{where}.accelerators: unknown accelerator {unknown[0]!r}; "
            f"known: {', '.join(sorted(known))}"
        )
        return []
    fitting = [c for c in eligible if set(c.types()) & set(types)]
    if not fitting:
        have = sorted({t for c in eligible for t in c.types()})
        problems.append(
            f"{where}.accelerators: no cluster it may use has {', '.join(types)} "
            f"(they have {few(have)})"
        )
    return fitting


def _size_problems(
    problems: list[str], where: str, dist: FixedGpus | ChoiceGpus, limit: int
) -> None:
    """Job sizes above ``limit`` GPUs, which could never run."""
    too_big = [g for g in gpu_sizes(dist) if g > limit]
    if too_big:
        problems.append(
            f"{where}: jobs of {few(map(str, too_big))} GPUs can never run "
            f"(at most {limit} GPUs are available to them)"
        )


def _training_problems(
    problems: list[str], where: str, training: Training | None, dist: GpuDist
) -> None:
    """The first job size the training layout cannot split into."""
    if training is None:
        return
    for gpus in gpu_sizes(dist):
        problem = training.layout_problem(gpus)
        if problem:
            problems.append(f"{where}: {problem}")
            return


def _serving_problems(
    problems: list[str], where: str, serving: Serving, clusters: list[Cluster]
) -> None:
    """The first cluster whose nodes the serving layout does not fit."""
    for cluster in clusters:
        problem = serving.layout_problem(cluster.gpus_per_node)
        if problem:
            problems.append(f"{where}.tp: {problem} (cluster {cluster.name!r})")
            return


def few(items: Iterable[str], shown: int = 4) -> str:
    """Up to ``shown`` items joined by commas, then how many more: messages stay one short line."""
    items = list(items)
    text = ", ".join(items[:shown])
    return text if len(items) <= shown else f"{text} and {len(items) - shown:,} more"


def _gpus_of(cluster: Cluster, types: list[str] | None) -> int:
    """The GPUs of the cluster's largest block of one accepted type (a job takes one type)."""
    return max(
        (
            n * cluster.gpus_per_node
            for name, n in cluster.node_types()
            if types is None or name in types
        ),
        default=0,
    )


def _power_problem(site: Site, catalog: dict[str, Any]) -> str | None:
    """Why the site's cap cannot work, or None."""
    power = site.power
    blocks = [(c, name, n) for c in site.clusters for name, n in c.node_types()]
    if power is None or any(name not in catalog for _, name, _ in blocks):
        return None
    host = power.host_watts_per_gpu
    if power.policy == "throttle":
        idle_w = sum(
            n * c.gpus_per_node * (catalog[name].idle_watts + host) for c, name, n in blocks
        )
        if power.pue * idle_w > power.cap_mw * 1e6:
            return (
                f"{power.cap_mw} MW does not cover the site's GPUs even idle "
                f"({power.pue * idle_w / 1e6:.3f} MW at PUE {power.pue}); raise it or park nodes"
            )
        return None
    node_w = min(
        c.gpus_per_node * (catalog[name].tdp_watts + host) * power.pue for c, name, _ in blocks
    )
    if node_w > power.cap_mw * 1e6:
        return f"{power.cap_mw} MW cannot run even one node at full power ({node_w / 1e6:.4f} MW)"
    return None

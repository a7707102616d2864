"""Benchmark: the 24K-GPU Meta scenarios, and how run time scales with GPUs (run by hand).

    python benchmarks/meta_24k.py                    # both scenarios, 30 days, and scaling
    python benchmarks/meta_24k.py --skip-full        # only the scaling table
    python benchmarks/meta_24k.py --scenario roce --horizon 3d
    python benchmarks/meta_24k.py --skip-full --max-job-gpus 3072   # one job mix at all scales
    python benchmarks/meta_24k.py --scenario roce-131k --horizon 7d  # 43 pods, 132,096 GPUs

Times ``Simulation(...).run()`` (the simulation, not the interpreter or file writing) of
``scenarios/meta-24k-roce.yaml`` and ``scenarios/meta-24k-ib.yaml`` (target: each under
120 s for 30 simulated days on 2 cores).

Scaling: the same scenario on 1, 2, 4 and 8 pods of 3,072 GPUs. Everything that scales with
the provider scales with the pod count: the inference fleet and its request rate, the
reserved block, the served tenant's replicas and requests, and every arrival rate; job
sizes stay as they are, less the sizes that no longer fit (the target:
run time grows no faster than linearly with GPUs).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import yaml

from sim.runner import Simulation
from sim.scenario import scenario_from_text

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "roce": ROOT / "scenarios" / "meta-24k-roce.yaml",
    "ib": ROOT / "scenarios" / "meta-24k-ib.yaml",
    "roce-131k": ROOT / "scenarios" / "meta-131k-roce.yaml",
}
FULL_PODS = 8


def scaled(data: dict, pods: int, max_job_gpus: int | None = None) -> dict:
    """The scenario on ``pods`` pods instead of 8, with its demand scaled alike.

    ``max_job_gpus`` also drops larger job sizes at every scale, so that every scale
    runs the same mix of job sizes.
    """
    data = copy.deepcopy(data)
    f = pods / FULL_PODS
    cluster = data["provider"]["sites"][0]["clusters"][0]
    cluster["nodes"] = cluster["nodes"] * pods // FULL_PODS
    cluster["fabric"]["topology"]["pods"] = pods
    gpus = cluster["nodes"] * cluster["gpus_per_node"]
    if max_job_gpus is not None:
        gpus = min(gpus, max_job_gpus)
    inference = data["internal"]["inference"]
    inference["gpus"] = round(inference["gpus"] * f)
    inference["serving"]["requests"]["rate_per_second"] *= f

    def scale_workload(workload: dict, limit: int = gpus) -> None:
        workload["arrivals"]["rate_per_hour"] *= f
        dist = workload["gpus"]
        if isinstance(dist, dict) and dist.get("kind") == "choice":
            weights = dist.get("weights", [1.0] * len(dist["values"]))
            kept = [(v, w) for v, w in zip(dist["values"], weights, strict=True) if v <= limit]
            dist["values"] = [v for v, _ in kept]
            dist["weights"] = [w for _, w in kept]

    scale_workload(data["internal"]["training"])
    for tenant in data["tenants"]:
        workload = tenant["workload"]
        limit = gpus
        if tenant["contract"]["kind"] == "reserved":
            tenant["contract"]["gpus"] = limit = round(tenant["contract"]["gpus"] * f)
        if workload.get("kind") == "inference":
            workload["replicas"] = max(1, round(workload["replicas"] * f))
            workload["serving"]["requests"]["rate_per_second"] *= f
        else:
            scale_workload(workload, limit)
    return data


def timed(data: dict, horizon: str) -> tuple[float, Simulation, dict]:
    data = {**data, "horizon": horizon}
    spec = scenario_from_text(yaml.safe_dump(data, sort_keys=False), "bench.yaml")
    simulation = Simulation(spec)
    start = time.perf_counter()
    result = simulation.run()
    return time.perf_counter() - start, simulation, result.summary


def report(label: str, seconds: float, simulation: Simulation, summary: dict) -> None:
    solves = sum(getattr(f, "solves", 0) for f in simulation.market.epochs.fabrics)

    def figure(key: str, spec: str) -> str:
        value = summary[key]
        return "-" if value is None else format(value, spec)

    print(
        f"{label}: {seconds:7.1f} s  {summary['fabric_epochs']:5d} epochs  {solves:5d} solves  "
        f"{summary['jobs_submitted']:4d} jobs  slowdown P50/P99 "
        f"{figure('iteration_slowdown_p50', '.3f')}/{figure('iteration_slowdown_p99', '.3f')}  "
        f"inference P99 {figure('inference_latency_ms_p99', '.0f')} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--horizon", default="30d", help="horizon of the full-size runs")
    parser.add_argument("--scaling-horizon", default="3d", help="horizon of the scaling runs")
    parser.add_argument("--skip-full", action="store_true", help="only the scaling table")
    parser.add_argument("--skip-scaling", action="store_true", help="only the full-size runs")
    parser.add_argument(
        "--max-job-gpus",
        type=int,
        help="scaling runs: drop job sizes above this at every scale (the same job mix)",
    )
    args = parser.parse_args()
    for name in args.scenario or ["roce", "ib"]:
        data = yaml.safe_load(SCENARIOS[name].read_text(encoding="utf-8"))
        cluster = data["provider"]["sites"][0]["clusters"][0]
        if not args.skip_full:
            gpus = cluster["nodes"] * cluster["gpus_per_node"]
            report(f"{name} {gpus:,} GPUs {args.horizon}", *timed(data, args.horizon))
        if not args.skip_scaling and cluster["fabric"]["topology"].get("pods", FULL_PODS) == 8:
            for pods in (1, 2, 4, 8):
                gpus = data["provider"]["sites"][0]["clusters"][0]["nodes"] * 8 * pods // 8
                label = f"{name} {gpus:6,d} GPUs {args.scaling_horizon}"
                report(label, *timed(scaled(data, pods, args.max_job_gpus), args.scaling_horizon))


if __name__ == "__main__":
    main()

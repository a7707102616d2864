"""Benchmark: route and solve random permutations on fat trees (run by hand).

    python benchmarks/fabric_solve.py

Prints, for a random permutation of one flow per host, the best of several
timings of routing (ECMP and adaptive) and of the max-min solve, for fat trees
of growing size, plus the full-size Meta AI zone build.
"""

from __future__ import annotations

import time

import numpy as np

from sim.fabric.routing import route
from sim.fabric.solver import max_min_rates
from sim.fabric.topology_kinds import build_topology


def best_of(repeats: int, action) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    seconds, topology = best_of(3, lambda: build_topology("meta_ai_zone"))
    print(f"meta_ai_zone build+compile ({topology.n_hosts} GPUs): {seconds * 1e3:.1f} ms")
    print("k  hosts  route_ecmp_ms  solve_ms  route_adaptive_ms  throughput_ecmp  throughput_ar")
    for k in (8, 12, 16, 24, 32):
        print(fat_tree_row(k))


def fat_tree_row(k: int) -> str:
    """Timings and throughput for one random permutation on a k-ary fat tree."""
    topo = build_topology("fat_tree", k=k, link_gbps=100.0)
    perm = np.random.default_rng(k).permutation(topo.n_hosts)
    moving = perm != np.arange(topo.n_hosts)  # a host never sends to itself
    src, dst = np.arange(topo.n_hosts)[moving], perm[moving]
    t_route, routes = best_of(3, lambda: route(topo, src, dst, mode="ecmp"))
    t_solve, rates = best_of(3, lambda: max_min_rates(routes.incidence, topo.capacity_gbps))
    t_ar, ar = best_of(3, lambda: route(topo, src, dst, mode="adaptive"))
    ar_rates = max_min_rates(ar.incidence, topo.capacity_gbps)
    ecmp_tp = routes.flow_rates_gbps(rates).sum() / (100.0 * len(src))
    ar_tp = ar.flow_rates_gbps(ar_rates).sum() / (100.0 * len(src))
    return (
        f"{k:<2} {topo.n_hosts:>6} {t_route * 1e3:14.1f} {t_solve * 1e3:9.1f} "
        f"{t_ar * 1e3:18.1f} {ecmp_tp:16.3f} {ar_tp:14.3f}"
    )


if __name__ == "__main__":
    main()

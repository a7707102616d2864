"""Benchmark: the marketplace engine (run by hand).

    python benchmarks/marketplace.py

Times the quickstart scenario (target: under 10 s on 2 cores) and the
engine's throughput in jobs per second on an M/M/c queue of 64 servers.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sim.runner import simulate
from sim.scenario import load_scenario, scenario_from_text

ROOT = Path(__file__).resolve().parent.parent

MMC = """
name: mmc
horizon: {hours}h
provider: {{sites: [{{name: s, clusters: [{{name: c, nodes: 64, gpus_per_node: 1}}]}}]}}
tenants:
  - name: t
    contract: {{kind: on_demand}}
    workload:
      arrivals: {{kind: poisson, rate_per_hour: 57.6}}
      gpus: 1
      duration: {{kind: exponential, mean: 1h}}
"""


def main() -> None:
    spec = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    start = time.perf_counter()
    result = simulate(spec)
    print(
        f"quickstart simulate: {time.perf_counter() - start:.2f} s "
        f"({result.summary['jobs_submitted']} jobs, {result.summary['fabric_epochs']} epochs)"
    )
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sim",
            "run",
            str(ROOT / "scenarios" / "quickstart.yaml"),
            "--out",
            "/tmp/surplus-bench-quickstart",
            "-q",
        ],
        check=True,
        capture_output=True,
    )
    print(f"quickstart `surplus run` end to end: {time.perf_counter() - start:.2f} s")
    for hours in (250, 500, 1000):
        spec = scenario_from_text(MMC.format(hours=hours))
        start = time.perf_counter()
        jobs = simulate(spec).summary["jobs_submitted"]
        seconds = time.perf_counter() - start
        print(
            f"M/M/64 at load 0.9, {hours} h: {jobs} jobs in {seconds:.2f} s "
            f"= {jobs / seconds:,.0f} jobs/s"
        )


if __name__ == "__main__":
    main()

"""Benchmark: the whole ``surplus fabric`` command on a k = 16 permutation (run by hand).

    python benchmarks/fabric_command.py [--runs 7]

Writes a fat tree k = 16 (1,024 hosts, 100 Gb/s) RoCE fabric file and a random
permutation of 2 MB flows to a temporary directory, then times the command as a
user runs it, interpreter start and imports included: the minimum and median
wall time over several runs. It then times the stages in one fresh process, so
the import cost can be told from the simulation.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FABRIC = "topology: {kind: fat_tree, k: 16, link_gbps: 100}\ntransport: {kind: roce}\n"

STAGES = """
import time
t0 = time.perf_counter()
import sim.cli
t1 = time.perf_counter()
from sim.scenario.fabric_loader import load_fabric
from sim.fabric.flows import simulate_flows
from sim.fabric.traffic import read_flow_arrays
t2 = time.perf_counter()
config = load_fabric("fab.yaml")
flows = read_flow_arrays("perm.csv", config.build_topology().n_hosts)
t3 = time.perf_counter()
result = simulate_flows(config, flows)
t4 = time.perf_counter()
print(f"cli import {t1 - t0:.2f} s, fabric imports {t2 - t1:.2f} s, "
      f"load {t3 - t2:.2f} s, simulation {t4 - t3:.2f} s "
      f"({result.summary['epochs']} epochs, {result.summary['latency_samples']:,} messages)")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "fab.yaml").write_text(FABRIC)
        surplus = [sys.executable, "-m", "sim"]
        subprocess.run(
            [*surplus, "traffic", "permutation", "--fabric", "fab.yaml", "--size", "2MB",
             "--out", "perm.csv"],
            cwd=work, check=True, capture_output=True,
        )  # fmt: skip
        command = [*surplus, "fabric", "fab.yaml", "--traffic", "perm.csv", "--out", "out", "-q"]
        seconds = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(command, cwd=work, check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
        print(
            f"surplus fabric, k = 16 permutation: min {min(seconds):.2f} s, "
            f"median {statistics.median(seconds):.2f} s over {args.runs} runs"
        )
        stages = subprocess.run(
            [sys.executable, "-c", STAGES], cwd=work, check=True, capture_output=True, text=True
        )
        print(stages.stdout.strip())


if __name__ == "__main__":
    main()

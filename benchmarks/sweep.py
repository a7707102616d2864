"""Benchmark: a 64-point sweep of the quickstart on 1 and 2 local workers (run by hand).

    python benchmarks/sweep.py

The sweep: ``scenarios/quickstart.yaml`` with four placement policies times 16 seeds.
Times the whole ``sim.sweep.sweep`` call (worker start-up, every point, writing every run
directory and the gathered tables) with 1 worker, then 2, each into a fresh directory,
and prints the parallel efficiency ``T1 / (2 T2)`` (target: at least 85 %).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sim.sweep import sweep

ROOT = Path(__file__).resolve().parent.parent
BLOCK = """
sweep:
  grid:
    policies.placement.kind: [first_fit, pack, spread, topology_aware]
  seeds: 16
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel run")
    args = parser.parse_args()
    text = (ROOT / "scenarios" / "quickstart.yaml").read_text(encoding="utf-8")
    text = text.split("\ncompare:")[0] + BLOCK
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "quickstart-sweep.yaml"
        scenario.write_text(text, encoding="utf-8")
        times = {}
        for workers in (1, args.workers):
            started = time.perf_counter()
            outcome = sweep(scenario, Path(tmp) / f"out-{workers}", workers=workers)
            times[workers] = time.perf_counter() - started
            assert outcome.ran == 64 and not outcome.failed
            print(f"{workers} worker(s): 64 points in {times[workers]:.1f} s", flush=True)
    efficiency = times[1] / (args.workers * times[args.workers])
    print(f"parallel efficiency on {args.workers} workers: {efficiency:.1%}")


if __name__ == "__main__":
    main()

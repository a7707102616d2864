"""Write the synthetic sample of Alibaba's 2026 spot-GPU trace for scenarios/alibaba-spot.yaml.

The sample is synthetic: no row comes from the real trace. It keeps the trace's
layout (``node_info_df.csv``, ``job_info_df.csv``, the columns of
alibaba/clusterdata ``cluster-trace-v2026-spot-gpu/README.md``) and its published
shape, scaled down about 30 times:

* Nodes: the real 4,278 nodes of six types (A100-SXM4-80GB 1,424 nodes / 8,544
  GPUs; A10 1,427 / 1,427; GPU-series-1 1,423 / 1,706; A100-PCIE-40GB 2 / 16;
  GPU-series-2 1 / 8; A30 1 / 1: a third-party count of ``node_info_df.csv``,
  github.com/sultanul-ovi/GPU-Cluster-Spot-Resource-Dataset-Analysis), divided
  by 30 with at least one node per type. How a type's nodes split between 8, 4
  and 1 GPU is not published: A100-80GB nodes are split evenly between 8 and 4
  GPUs (which gives its 6.0 GPUs per node), GPU-series-1 nodes 14 of 1 GPU per
  one of 4 (its 1.2).
* Jobs: HP and Spot in the ratio of the month both ran (August 2024: 41,538 HP
  and 12,844 Spot jobs on about 10,400 GPUs; a third-party audit of
  ``job_info_df.csv``, SchedNav's GFS baseline notes), at that month's jobs per
  GPU-day on the sample's GPUs, for three days. HP jobs are mostly one GPU
  (as the README's HP rows), Spot jobs many one-GPU workers submitted together
  by one organization (as its Spot rows: 16 and 94 workers at one second).
* Durations: heavy-tailed log-normals (HP median 11.25 h, sigma 1.8, at most 30
  days; Spot median 17.5 h, sigma 1.2), ours, not fitted to the trace: their
  medians are set so that the jobs ask for about 63 % of the sample's GPU-hours
  within its three days, near the 65 % GPU pressure the same audit measured for
  the real trace (Spot's median lies between the README's two Spot rows, 11.4 h
  and 19.9 h; its HP rows run for weeks, as this tail does). Arrivals follow the
  day (peak at 15:00, ±50 %), with Spot jobs in bursts.

Run ``python scenarios/traces/alibaba-spot-2026/make_sample.py`` to rewrite the
files (the same files every time: one seeded generator).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DAYS = 3
SEED = 2026

NODES = [  # (gpu_model, gpus per node, nodes in the sample)
    ("A100-SXM4-80GB", 8, 24),
    ("A100-SXM4-80GB", 4, 24),
    ("A10", 1, 48),
    ("GPU-series-1", 1, 44),
    ("GPU-series-1", 4, 3),
    ("A100-PCIE-40GB", 8, 1),
    ("GPU-series-2", 8, 1),
    ("A30", 1, 1),
]

AUGUST_GPUS = 10_412
AUGUST_HP, AUGUST_SPOT = 41_538, 12_844


def nodes() -> list[list[object]]:
    rows, name = [], 0
    for model, gpus, count in NODES:
        for _ in range(count):
            rows.append([name, model, gpus, 128 if gpus == 1 else 96 * gpus // 4])
            name += 1
    return rows


def diurnal_times(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` submit times over DAYS days, denser in the afternoon (thinning)."""
    out: list[float] = []
    while len(out) < count:
        t = rng.uniform(0, DAYS * 86_400)
        shape = 1 + 0.5 * math.cos(2 * math.pi * ((t / 3600) % 24 - 15) / 24)
        if rng.uniform(0, 1.5) < shape:
            out.append(t)
    return np.sort(np.asarray(out))


def jobs(rng: np.random.Generator) -> list[list[object]]:
    gpus = sum(g * n for _, g, n in NODES)
    hp_count = round(AUGUST_HP / 31 / AUGUST_GPUS * gpus * DAYS)
    spot_count = round(AUGUST_SPOT / 31 / AUGUST_GPUS * gpus * DAYS)
    rows = []
    models = ["A100-SXM4-80GB", "A10", "GPU-series-1"]
    for t in diurnal_times(rng, hp_count):
        model = str(rng.choice(models, p=[0.5, 0.25, 0.25]))
        per_worker = int(rng.choice([1, 2, 4, 8], p=[0.7, 0.1, 0.12, 0.08]))
        if model != "A100-SXM4-80GB":
            per_worker = 1
        workers = int(rng.choice([1, 2, 4], p=[0.85, 0.1, 0.05]))
        duration = min(30 * 86_400, 40_500 * math.exp(1.8 * rng.standard_normal()))
        org = int(rng.integers(1, 60))
        rows.append([org, model, 8 * per_worker, per_worker, workers, t, duration, "HP"])
    bursts = diurnal_times(rng, max(1, spot_count // 4))
    left = spot_count
    while left > 0:
        t = float(rng.choice(bursts))
        org = int(rng.integers(60, 120))
        size = min(left, int(rng.integers(1, 8)))
        for _ in range(size):
            workers = int(rng.choice([4, 8, 16, 32], p=[0.35, 0.3, 0.25, 0.1]))
            duration = 63_000 * math.exp(1.2 * rng.standard_normal())
            rows.append([org, "A100-SXM4-80GB", 15, 1, workers, t, duration, "Spot"])
        left -= size
    rows.sort(key=lambda r: r[5])
    first = rows[0][5]
    return [
        [400_000 + i, org, model, cpu, gpu, workers, round(t - first), max(1, round(d)), kind]
        for i, (org, model, cpu, gpu, workers, t, d, kind) in enumerate(rows)
    ]


def write(name: str, header: list[str], rows: list[list[object]]) -> None:
    with (HERE / name).open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(header)
        out.writerows(rows)


def main() -> None:
    rng = np.random.default_rng(SEED)
    write("node_info_df.csv", ["node_name", "gpu_model", "gpu_capacity_num", "cpu_num"], nodes())
    header = "job_name,organization,gpu_model,cpu_request,gpu_request,worker_num,submit_time"
    write("job_info_df.csv", [*header.split(","), "duration", "job_type"], jobs(rng))


if __name__ == "__main__":
    main()

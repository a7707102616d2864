"""Make the README's tour images by running the tour's own commands.

    python docs/make_tour.py

Runs each command of the README's five-minute tour (``surplus run``, ``surplus compare``,
``surplus plot``) in a scratch directory and copies the images it draws to
``docs/images/``. Nothing in the images is drawn by hand.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"

TOUR = [
    ["run", "scenarios/quickstart.yaml", "--out", "{tmp}/qs", "-q"],
    ["plot", "{tmp}/qs", "--kind", "allocation", "-o", "{images}/quickstart-allocation.png"],
    ["plot", "{tmp}/qs", "--kind", "latency", "-o", "{images}/quickstart-latency.png"],
    ["run", "scenarios/noisy-neighbor.yaml", "--out", "{tmp}/nn", "-q"],
    ["plot", "{tmp}/nn", "--kind", "pfc", "-o", "{images}/noisy-neighbor-pfc.png"],
    ["plot", "{tmp}/nn", "--kind", "heatmap", "-o", "{images}/noisy-neighbor-heatmap.png"],
    ["plot", "{tmp}/nn", "--kind", "timeline", "-o", "{images}/noisy-neighbor-timeline.png"],
    ["compare", "scenarios/tenancy-policies.yaml", "--out", "{tmp}/tp", "-q"],
    [
        "plot", "{tmp}/tp", "--kind", "bars", "-o", "{images}/tenancy-policies-bars.png",
        "-m", "tenants.atlas.iteration_slowdown_p99", "-m", "sold_gpu_hours", "-m", "revenue_usd",
    ],
]  # fmt: skip


def main() -> None:
    """Run the tour and write its images."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for command in TOUR:
            args = [part.format(tmp=tmp, images=IMAGES) for part in command]
            print("surplus", " ".join(args).replace(tmp, "runs"), flush=True)
            subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()

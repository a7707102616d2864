"""Exact, time-weighted accounting of who holds the provider's GPUs.

Holdings change only at marketplace events, so between two events every
count is constant and GPU-hours are integrated exactly as count × interval.
Every GPU is always in exactly one class, so the classes add up to the
capacity at every instant and GPU-hours are conserved.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

CLASSES = ("internal", "reserved", "on_demand", "spot", "idle", "spare", "down", "parked")
"""How the provider's GPUs are classified at every instant."""


class Accounting:
    """Counts GPUs by class and by tenant, and integrates them over time.

    Args:
        gpus_total: Every GPU the provider owns.
        start_hours: When accounting starts.
        prices: Per tenant, its price per GPU-hour held ("allocated") as a
            function of the GPUs by class at the time (a price that moves with
            the market); integrated into ``tenant_usd`` exactly, step by step.
    """

    def __init__(
        self,
        gpus_total: int,
        start_hours: float = 0.0,
        prices: Mapping[str, Callable[[Mapping[str, int]], float]] | None = None,
    ):
        self.gpus_total = gpus_total
        self.prices = dict(prices or {})
        self.tenant_usd: dict[str, float] = dict.fromkeys(self.prices, 0.0)
        self.now = start_hours
        self.gpus = dict.fromkeys(CLASSES, 0)
        self.gpus["idle"] = gpus_total
        self.gpu_hours = dict.fromkeys(CLASSES, 0.0)
        self.tenant_gpus: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.tenant_gpu_hours: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._times: list[float] = [start_hours]
        self._rows: list[tuple[int, ...]] = [tuple(self.gpus[c] for c in CLASSES)]

    def advance(self, now: float) -> None:
        """Integrate the current holdings up to ``now``."""
        dt = now - self.now
        if dt < 0:
            raise RuntimeError(f"accounting asked to go back in time: {now} < {self.now}")
        if dt > 0:
            for cls in CLASSES:
                self.gpu_hours[cls] += self.gpus[cls] * dt
            for tenant, counts in self.tenant_gpus.items():
                hours = self.tenant_gpu_hours[tenant]
                for key, count in counts.items():
                    if count:
                        hours[key] += count * dt
            for tenant, price in self.prices.items():
                held = self.tenant_gpus[tenant]["allocated"]
                if held:
                    self.tenant_usd[tenant] += held * price(self.gpus) * dt
            self.now = now

    def move(self, now: float, gpus: int, src: str, dst: str) -> None:
        """Move ``gpus`` GPUs from class ``src`` to class ``dst`` at ``now``."""
        self.advance(now)
        if self.gpus[src] < gpus:
            raise RuntimeError(f"cannot move {gpus} GPUs out of {src!r}: it holds {self.gpus[src]}")
        self.gpus[src] -= gpus
        self.gpus[dst] += gpus
        self._record()

    def hold(self, now: float, tenant: str, key: str, gpus: int) -> None:
        """Change a tenant's count ``key`` (e.g. "allocated") by ``gpus`` at ``now``."""
        self.advance(now)
        self.tenant_gpus[tenant][key] += gpus
        if self.tenant_gpus[tenant][key] < 0:
            raise RuntimeError(f"tenant {tenant!r} would hold a negative {key!r}")

    def _record(self) -> None:
        row = tuple(self.gpus[c] for c in CLASSES)
        if self._times[-1] == self.now:
            self._rows[-1] = row
        elif row != self._rows[-1]:
            self._times.append(self.now)
            self._rows.append(row)

    def timeseries(self) -> pd.DataFrame:
        """GPUs by class from each change on (a step function), one row per change."""
        frame = pd.DataFrame(np.array(self._rows, dtype=np.int64), columns=list(CLASSES))
        frame.insert(0, "time_hours", np.array(self._times, dtype=float))
        return frame

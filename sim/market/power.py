"""Site power: what the GPUs draw, the cap that limits it, and the energy bill.

A site's facility draw is ``PUE × (accelerators + hosts)``. A powered GPU draws
its idle watts, plus, while a job or the inference fleet holds it, its dynamic
watts (TDP minus idle) times the clock ``speed`` of its site; every powered
GPU adds ``host_watts_per_gpu`` for the rest of its server. A node out of
service (failed, or parked) draws nothing.

Under the ``throttle`` policy, when busy GPUs at full clocks would take the
site past its cap, the site lowers every busy GPU's clock to the speed at which
the draw meets the cap exactly. Dynamic power is taken as proportional to the
clock (voltage held), and compute as proportional to the clock, so a site at
speed 0.8 delivers 80 % of the compute of its busy GPUs. Under ``park`` the
site powers off, for the whole run, the nodes beyond those that can all run
at full power within the cap (see :func:`nodes_to_park`); it never throttles.

The ledger integrates each site's draw exactly between changes (the draw is
constant between marketplace events) against its electricity price curve
(:mod:`sim.market.energy`), and attributes the energy of busy GPUs to whoever
holds them; the draw of idle powered GPUs is the site's own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from sim.market.energy import PriceCurve, carbon_kg

IDLE = "idle"
"""Owner of the energy that idle powered GPUs (and their hosts) draw."""


@dataclass
class ClusterPower:
    """The draw of one cluster's GPUs of one accelerator type."""

    index: int
    accelerator: str
    idle_watts: float
    dynamic_watts: float
    powered_gpus: int
    busy: dict[str, int] = field(default_factory=dict)
    """Busy GPUs by owner (a tenant, or "internal")."""

    @property
    def busy_gpus(self) -> int:
        return sum(self.busy.values())


@dataclass
class SiteLedger:
    """A site's cap, its clusters, its price, and what it has drawn so far."""

    name: str
    cap_mw: float | None
    pue: float
    host_watts_per_gpu: float
    throttles: bool
    prices: PriceCurve | None
    carbon: object = None
    clusters: list[ClusterPower] = field(default_factory=list)
    speed: float = 1.0
    mw: float = 0.0
    since: float = 0.0
    energy_mwh: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    energy_usd: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    speed_hours: float = 0.0
    """Integral of the speed over time (its mean is this over the horizon)."""
    log: list[tuple[float, float, float]] = field(default_factory=list)
    """(hours, MW, speed) after each change."""


class PowerLedger:
    """Every site's draw, throttle and energy, kept up to date as GPUs change hands.

    Args:
        sites: The sites with a power block, each with its clusters added;
            clusters of other sites are ignored.
    """

    def __init__(self, sites: list[SiteLedger]):
        self.sites = sites
        self._site_of: dict[int, SiteLedger] = {}
        for site in sites:
            for cluster in site.clusters:
                self._site_of[cluster.index] = site
            self._settle(site, 0.0)

    def site_of(self, cluster: int) -> SiteLedger:
        """The site (with a power block) a cluster is in."""
        return self._site_of[cluster]

    def hold(self, now: float, cluster: int, accelerator: str, owner: str, gpus: int) -> bool:
        """``owner`` starts (``gpus`` > 0) or stops holding GPUs of ``cluster`` at ``now``.

        Returns:
            Whether the site's speed changed (its running jobs' rates must follow).
        """
        site = self._site_of.get(cluster)
        if site is None:
            return False
        self._advance(site, now)
        power = self._cluster(site, cluster, accelerator)
        power.busy[owner] = power.busy.get(owner, 0) + gpus
        if power.busy[owner] < 0:
            raise RuntimeError(f"{owner!r} would hold a negative number of GPUs in {site.name!r}")
        return self._settle(site, now)

    def power(self, now: float, cluster: int, accelerator: str, gpus: int) -> bool:
        """Power GPUs of ``cluster`` on (``gpus`` > 0: a repaired node) or off (a failed one)."""
        site = self._site_of.get(cluster)
        if site is None:
            return False
        self._advance(site, now)
        self._cluster(site, cluster, accelerator).powered_gpus += gpus
        return self._settle(site, now)

    def close(self, now: float) -> None:
        """Integrate every site up to ``now`` (the horizon)."""
        for site in self.sites:
            self._advance(site, now)

    @staticmethod
    def _cluster(site: SiteLedger, cluster: int, accelerator: str) -> ClusterPower:
        return next(c for c in site.clusters if (c.index, c.accelerator) == (cluster, accelerator))

    def _settle(self, site: SiteLedger, now: float) -> bool:
        """Set the site's speed (throttling to its cap) and draw; whether the speed changed."""
        base_w = sum(
            c.powered_gpus * (c.idle_watts + site.host_watts_per_gpu) for c in site.clusters
        )
        dynamic_w = sum(c.busy_gpus * c.dynamic_watts for c in site.clusters)
        speed = 1.0
        if site.throttles and site.cap_mw is not None and dynamic_w > 0:
            room_w = site.cap_mw * 1e6 / site.pue - base_w
            speed = min(1.0, max(0.0, room_w / dynamic_w))
        changed = speed != site.speed
        site.speed = speed
        site.mw = site.pue * (base_w + speed * dynamic_w) / 1e6
        if site.log and site.log[-1][0] == now:
            site.log[-1] = (now, site.mw, speed)
        else:
            site.log.append((now, site.mw, speed))
        return changed

    def _advance(self, site: SiteLedger, now: float) -> None:
        """Integrate the site's draw, by owner, from its last change to ``now``."""
        dt = now - site.since
        if dt < 0:
            raise RuntimeError(f"power ledger asked to go back in time: {now} < {site.since}")
        if dt == 0:
            return
        usd_per_mw = 0.0
        if site.prices is not None:
            usd_per_mw = site.prices.cost_usd(site.since, now, 1.0)
        attributed_mw = 0.0
        for cluster in site.clusters:
            busy_w = (
                cluster.idle_watts + site.host_watts_per_gpu + site.speed * cluster.dynamic_watts
            )
            for owner, gpus in sorted(cluster.busy.items()):
                if gpus:
                    mw = gpus * site.pue * busy_w / 1e6
                    attributed_mw += mw
                    site.energy_mwh[owner] += mw * dt
                    site.energy_usd[owner] += mw * usd_per_mw
        idle_mw = max(0.0, site.mw - attributed_mw)
        site.energy_mwh[IDLE] += idle_mw * dt
        site.energy_usd[IDLE] += idle_mw * usd_per_mw
        site.speed_hours += site.speed * dt
        site.since = now

    # ------------------------------------------------------------------ totals

    def energy_by_owner(self, unit: str) -> dict[str, float]:
        """Energy (``unit="mwh"``) or its cost (``"usd"``) over all sites, by owner."""
        totals: dict[str, float] = defaultdict(float)
        for site in self.sites:
            for owner, value in (site.energy_mwh if unit == "mwh" else site.energy_usd).items():
                totals[owner] += value
        return dict(sorted(totals.items()))

    def peak_mw(self) -> float:
        """The highest total draw of all sites at any instant."""
        times = sorted({hours for site in self.sites for hours, _, _ in site.log})
        series = [np.array([row[0] for row in site.log]) for site in self.sites]
        peak = 0.0
        for now in times:
            total = 0.0
            for site, hours in zip(self.sites, series, strict=True):
                total += site.log[int(np.searchsorted(hours, now, side="right")) - 1][1]
            peak = max(peak, total)
        return peak

    def carbon_tonnes(self) -> float:
        """Emissions of the energy drawn at sites with a carbon price."""
        return sum(
            carbon_kg(sum(site.energy_mwh.values()), site.carbon) / 1000 for site in self.sites
        )

    def timeseries(self) -> dict[str, np.ndarray]:
        """Every site's draw and speed after each change (a step function)."""
        rows = [
            (hours, site.name, mw, speed) for site in self.sites for hours, mw, speed in site.log
        ]
        rows.sort(key=lambda row: (row[0], row[1]))
        return {
            "time_hours": np.array([r[0] for r in rows], dtype=float),
            "site": np.array([r[1] for r in rows], dtype=object),
            "power_mw": np.array([r[2] for r in rows], dtype=float),
            "speed": np.array([r[3] for r in rows], dtype=float),
        }


def nodes_to_park(
    cap_mw: float,
    pue: float,
    host_watts_per_gpu: float,
    clusters: list[tuple[int, int, float]],
) -> list[int]:
    """How many nodes of each cluster a ``park`` site powers off.

    The site keeps powered as many nodes as can all run at full power (TDP
    plus host) within the cap, taking them from its clusters in proportion to
    their sizes (rounded down, then the remainder to the first clusters).

    Args:
        cap_mw: The site's cap.
        pue: Its PUE.
        host_watts_per_gpu: Host draw per GPU.
        clusters: Per cluster: (nodes, GPUs per node, TDP watts per GPU).

    Returns:
        Nodes to park, per cluster.
    """
    node_w = [gpn * (tdp + host_watts_per_gpu) * pue for _, gpn, tdp in clusters]
    full_w = sum(n * w for (n, _, _), w in zip(clusters, node_w, strict=True))
    budget_w = cap_mw * 1e6
    if full_w <= budget_w:
        return [0] * len(clusters)
    share = budget_w / full_w
    keep = [math.floor(n * share) for n, _, _ in clusters]
    left = budget_w - sum(k * w for k, w in zip(keep, node_w, strict=True))
    for i, ((n, _, _), w) in enumerate(zip(clusters, node_w, strict=True)):
        while keep[i] < n and left >= w:
            keep[i] += 1
            left -= w
    return [n - k for (n, _, _), k in zip(clusters, keep, strict=True)]

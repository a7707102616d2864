"""Weighted max-min fair rates by progressive filling, vectorised over all flows.

Picture pouring water into every flow at once: each unfrozen flow ``f`` rises
at speed ``w_f`` (its weight), so at "water level" ``t`` it carries
``w_f * t`` Gb/s. A link fills up when the frozen flows on it plus the rising
ones reach its capacity; at that moment every flow crossing it stops rising
(freezes). A flow whose own demand is reached freezes at its demand. Pouring
goes on until every flow is frozen (Bertsekas & Gallager, *Data Networks*,
the max-min fairness section of the flow-control chapter).

Each round computes, for every link at once, the level at which it would
fill (residual capacity over the summed weight of its unfrozen flows). A
link's level only rises as flows elsewhere freeze, so a link whose level is
the lowest constraint (link level or demand) of *every* unfrozen flow on it
is already final: it is a local bottleneck. Each round saturates all local
bottlenecks at once (the globally lowest level is always one of them) and
freezes their flows, and flows whose demand comes first freeze at their
demand. Levels equal within a relative tolerance are treated as one. So the
number of rounds is at most the number of distinct bottleneck levels, and
usually far fewer (the length of the longest chain of bottlenecks that wait
on each other), not the number of flows. A round is a few passes over the
nonzeros (``bincount`` and ``minimum.at``); frozen flows are dropped from the
working arrays as they accumulate, so later rounds get cheaper.

The incidence matrix may hold fractions: entry ``(f, l)`` is the share of
flow ``f``'s rate that crosses link ``l`` (1 for a single path, less when a
flow is sprayed over several paths).

A flow that crosses no link of finite capacity and has no demand is not
limited by anything: its rate is ``+inf``. Inter-host flows always cross
their NIC links, so this only happens for flows that stay inside a server.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sim.fabric.trunks import Trunked

DEFAULT_RTOL = 1e-9
"""Relative tolerance within which bottleneck levels count as equal."""


def _validate(
    incidence: sp.spmatrix | sp.sparray,
    capacity_gbps: np.ndarray,
    weights: np.ndarray | None,
    demand_gbps: np.ndarray | None,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    if not sp.issparse(incidence):
        raise ValueError("incidence must be a scipy.sparse matrix (flows x links)")
    matrix = sp.csr_matrix(incidence, dtype=np.float64, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    n_flows, n_links = matrix.shape
    if matrix.nnz and (np.any(matrix.data < 0) or not np.all(np.isfinite(matrix.data))):
        raise ValueError("incidence entries must be finite and non-negative")
    capacity = np.asarray(capacity_gbps, dtype=np.float64)
    if capacity.shape != (n_links,):
        raise ValueError(
            f"capacity_gbps must have one entry per link ({n_links}), got shape {capacity.shape}"
        )
    if np.any(np.isnan(capacity)) or np.any(capacity < 0):
        raise ValueError("capacity_gbps must be non-negative (inf allowed)")
    if weights is None:
        weight = np.ones(n_flows)
    else:
        weight = np.asarray(weights, dtype=np.float64)
        if weight.shape != (n_flows,):
            raise ValueError(
                f"weights must have one entry per flow ({n_flows}), got shape {weight.shape}"
            )
        if not np.all(np.isfinite(weight)) or np.any(weight <= 0):
            raise ValueError("weights must be finite and > 0")
    if demand_gbps is None:
        demand = np.full(n_flows, np.inf)
    else:
        demand = np.asarray(demand_gbps, dtype=np.float64)
        if demand.shape != (n_flows,):
            raise ValueError(
                f"demand_gbps must have one entry per flow ({n_flows}), got shape {demand.shape}"
            )
        if np.any(np.isnan(demand)) or np.any(demand < 0):
            raise ValueError("demand_gbps must be non-negative (inf for no cap)")
    return matrix, capacity, weight, demand


def max_min_rates(
    incidence: sp.spmatrix | sp.sparray,
    capacity_gbps: np.ndarray,
    weights: np.ndarray | None = None,
    demand_gbps: np.ndarray | None = None,
    *,
    rtol: float = DEFAULT_RTOL,
) -> np.ndarray:
    """Weighted max-min fair rates by progressive filling.

    Args:
        incidence: ``(n_flows, n_links)`` sparse matrix; entry = fraction of
            the flow's rate crossing the link (non-negative).
        capacity_gbps: Capacity per link in Gb/s (``inf`` for unlimited).
        weights: Positive weight per flow (default 1): on a shared
            bottleneck, rates are proportional to weights.
        demand_gbps: Rate cap per flow (default none, i.e. ``inf``); a flow
            reaching its demand freezes there and leaves its share to others.
        rtol: Relative tolerance for treating bottleneck levels as equal.

    Returns:
        Rate per flow in Gb/s. Flows crossing no finite-capacity link get
        their demand, or ``inf`` without one.

    Raises:
        ValueError: On inconsistent shapes or negative / NaN inputs.
    """
    matrix, capacity, weight, demand = _validate(incidence, capacity_gbps, weights, demand_gbps)
    return MaxMinProblem(matrix, validated=True).solve(capacity, weight, demand, rtol=rtol)


class MaxMinProblem:
    """One routing, solved for many capacities and demands (the structure is built once).

    Back-pressure and other fixed-point loops solve the same flows again and
    again with new capacities or rate caps; this keeps the nonzeros in flow
    order and in link order.

    A link that its flows together cannot fill, even all at their demand,
    never constrains any of them, so each solve starts from the nonzeros of
    the other links only (taken link by link when they are few), and flows
    left with none get their demand at once. Under back-pressure most flows
    are capped by pauses and most links drop out this way.

    The routing may be factored into own links and shared trunks
    (:class:`sim.fabric.trunks.Trunked`): a trunk's links then count the
    summed weight of its unfrozen members, and a member's level is the least
    of its own links' and its trunk's.

    Args:
        incidence: ``(n_flows, n_links)`` sparse matrix, entries non-negative,
            or a :class:`~sim.fabric.trunks.Trunked` factoring of one.
        validated: The matrix is already a checked, canonical CSR (internal use).
    """

    def __init__(self, incidence: sp.spmatrix | sp.sparray | Trunked, *, validated: bool = False):
        if isinstance(incidence, Trunked):
            paths = incidence
        elif validated:
            paths = Trunked.of(incidence)
        else:
            n_links = incidence.shape[1]
            matrix, _, _, _ = _validate(incidence, np.zeros(n_links), None, None)
            paths = Trunked.of(matrix)
        self.paths = paths
        """The routing as own links and trunks (no trunks for a plain matrix)."""
        self.shape = paths.shape
        self._unit = bool(np.all(paths.own.data == 1.0))
        # The links some flow crosses, and each nonzero's link among them.
        crossed = paths.crossed
        self._used = np.flatnonzero(crossed)
        number = np.cumsum(crossed) - 1
        self._link = number[paths.own.indices]
        # A trunk no flow is a member of carries nothing: its nonzeros are left out
        # (its links need not be crossed, and have no number).
        members = np.bincount(paths.trunk_of[paths.trunk_of >= 0], minlength=paths.n_trunks)
        self._trunk_kept = members[paths.trunk_row] > 0
        self._trunk_link = number[paths.trunks.indices[self._trunk_kept]]
        self._all_cross = not bool(np.any(paths.crosses_nothing()))
        self._nnz = paths.own.nnz + paths.trunks.nnz
        self._count = np.bincount(paths.own.indices, minlength=self.shape[1]) + np.bincount(
            paths.trunks.indices, minlength=self.shape[1]
        )

    def solve(
        self,
        capacity_gbps: np.ndarray,
        weights: np.ndarray | None = None,
        demand_gbps: np.ndarray | None = None,
        *,
        rtol: float = DEFAULT_RTOL,
    ) -> np.ndarray:
        """Weighted max-min fair rates for these capacities and rate caps.

        Args:
            capacity_gbps: Capacity per link in Gb/s (``inf`` for unlimited).
            weights: Positive weight per flow (default 1).
            demand_gbps: Rate cap per flow (default none).
            rtol: Relative tolerance for treating bottleneck levels as equal.

        Returns:
            Rate per flow in Gb/s, as :func:`max_min_rates`.
        """
        n_flows = self.shape[0]
        capacity = np.asarray(capacity_gbps, dtype=np.float64)
        weight = np.ones(n_flows) if weights is None else np.asarray(weights, dtype=np.float64)
        demand = (
            np.full(n_flows, np.inf)
            if demand_gbps is None
            else np.asarray(demand_gbps, dtype=np.float64)
        )
        # Flows that cross no link able to fill reach their demand (inf without one).
        rates = demand.copy()
        work = self._working(capacity, weight, demand)
        while work.active.any():
            if np.count_nonzero(work.active) < 0.7 * work.active.size:
                work.compact()
            work.round(rates, rtol)
        return rates

    def _working(self, capacity: np.ndarray, weight: np.ndarray, demand: np.ndarray) -> _Working:
        """The working set: the nonzeros of links that can fill, and their flows."""
        paths = self.paths
        with np.errstate(invalid="ignore"):
            most = paths.link_sum(demand)
        binding = most > capacity
        binding_nnz = int(self._count[binding].sum())
        own, trunks = paths.own, paths.trunks
        if binding_nnz >= 0.9 * self._nnz:
            # Nearly all links can fill: keep every nonzero (the others never fill).
            links = self._used
            flow, link, coef = paths.own_row, self._link, own.data
            kept = self._trunk_kept
            trunk, trunk_link, trunk_coef = (
                paths.trunk_row[kept],
                self._trunk_link,
                trunks.data[kept],
            )
            if self._all_cross:
                ids = np.arange(self.shape[0])
                return _Working(
                    (flow, link, coef),
                    (trunk, trunk_link, trunk_coef),
                    paths.slot,
                    paths.n_trunks,
                    self._unit,
                    capacity[links],
                    weight,
                    demand,
                    ids,
                )
        else:
            # Gather the nonzeros of the links that can fill, link by link.
            links = np.flatnonzero(binding)
            flow, link, coef, trunk, trunk_link, trunk_coef = paths.link_entries(links)
        crossing = np.zeros(self.shape[0], dtype=bool)
        crossing[flow] = True
        hit = np.zeros(paths.n_trunks + 1, dtype=bool)
        hit[trunk] = True
        crossing |= hit[paths.slot]
        ids = np.flatnonzero(crossing)
        flow = (np.cumsum(crossing) - 1)[flow]
        # Trunks renumbered among those hit; a flow whose trunk was not hit has none.
        trunk_number = _renumber(hit)
        return _Working(
            (flow, link, coef),
            (trunk_number[trunk], trunk_link, trunk_coef),
            trunk_number[paths.slot[ids]],
            int(trunk_number[-1]),
            self._unit,
            capacity[links],
            weight[ids],
            demand[ids],
            ids,
        )


def _renumber(kept: np.ndarray) -> np.ndarray:
    """New trunk numbers: those ``kept[:-1]`` marks from 0, in order; the others and the
    last entry (the no-trunk slot) the new no-trunk slot, the count of those kept."""
    n_kept = int(np.count_nonzero(kept[:-1]))
    return np.append(np.where(kept[:-1], np.cumsum(kept[:-1]) - 1, n_kept), n_kept)


class _Working:
    """The still-unfrozen part of a progressive-filling problem, as flat arrays.

    The nonzeros are three parallel arrays (``e_flow``, ``e_link``,
    ``e_coef``), in any order, with flows and links renumbered from 0; per-link
    and per-flow sums and minima are unbuffered ufunc reductions over them
    (``bincount`` and ``minimum.at``), so nothing needs sorting. Trunk nonzeros
    are three more (``t_trunk``, ``t_link``, ``t_coef``), and ``slot`` gives
    each flow's trunk (``n_trunks`` for none, a trunk with no nonzeros).
    Compaction drops the nonzeros of frozen flows and of trunks left with no
    unfrozen member, and renumbers the rest; ``ids`` maps working flow numbers
    back to the caller's. ``residual`` is each link's capacity minus the load
    of frozen flows.
    """

    def __init__(
        self,
        entries: tuple[np.ndarray, np.ndarray, np.ndarray],
        trunk_entries: tuple[np.ndarray, np.ndarray, np.ndarray],
        slot: np.ndarray,
        n_trunks: int,
        unit: bool,
        capacity: np.ndarray,
        weight: np.ndarray,
        demand: np.ndarray,
        ids: np.ndarray,
    ) -> None:
        self.e_flow, self.e_link, self.e_coef = entries
        self.t_trunk, self.t_link, self.t_coef = trunk_entries
        self.slot = slot
        self.n_trunks = n_trunks
        self.unit = unit
        self.n_links = capacity.size
        self.residual = capacity.copy()
        self.finite = np.isfinite(capacity)
        self.weight = weight
        self.demand = demand
        self.ids = ids
        self.active = np.ones(ids.size, dtype=bool)
        self.all_active = True
        self.unit_weight = bool(np.all(weight == 1.0))

    def compact(self) -> None:
        """Drop frozen flows and their nonzeros, and trunks with no unfrozen member."""
        keep = self.active
        new_number = np.cumsum(keep) - 1
        kept_entry = keep[self.e_flow]
        self.e_flow = new_number[self.e_flow[kept_entry]]
        self.e_link = self.e_link[kept_entry]
        if not self.unit:
            self.e_coef = self.e_coef[kept_entry]
        if self.t_trunk.size:
            alive = np.zeros(self.n_trunks + 1, dtype=bool)
            alive[self.slot[keep]] = True
            trunk_number = _renumber(alive)
            n_alive = int(trunk_number[-1])
            kept_trunk = alive[self.t_trunk]
            self.t_trunk = trunk_number[self.t_trunk[kept_trunk]]
            self.t_link = self.t_link[kept_trunk]
            self.t_coef = self.t_coef[kept_trunk]
            self.slot = trunk_number[self.slot[keep]]
            self.n_trunks = n_alive
        else:
            self.slot = self.slot[keep]
        self.ids = self.ids[keep]
        self.weight = self.weight[keep]
        self.demand = self.demand[keep]
        self.active = np.ones(self.ids.size, dtype=bool)
        self.all_active = True

    def _per_entry(self, per_flow: np.ndarray) -> np.ndarray:
        """A per-flow value on each of the flow's nonzeros, times the nonzero's share."""
        spread = per_flow[self.e_flow]
        return spread if self.unit else spread * self.e_coef

    def _link_sum(self, per_flow: np.ndarray | None) -> np.ndarray:
        """Per link, the sum of share times ``per_flow`` (1 for every flow if None)."""
        if per_flow is None:
            total = np.bincount(self.e_link, minlength=self.n_links).astype(np.float64)
            per_flow = np.ones(self.slot.size)
        else:
            total = np.bincount(
                self.e_link, weights=self._per_entry(per_flow), minlength=self.n_links
            )
        if self.t_trunk.size:
            per_trunk = np.bincount(self.slot, weights=per_flow, minlength=self.n_trunks + 1)
            total = total + np.bincount(
                self.t_link, weights=per_trunk[self.t_trunk] * self.t_coef, minlength=self.n_links
            )
        return total

    def _flow_min(self, per_link: np.ndarray) -> np.ndarray:
        """Per flow, the least of ``per_link`` over its links."""
        least = np.full(self.slot.size, np.inf)
        np.minimum.at(least, self.e_flow, per_link[self.e_link])
        if self.t_trunk.size:
            per_trunk = np.full(self.n_trunks + 1, np.inf)
            np.minimum.at(per_trunk, self.t_trunk, per_link[self.t_link])
            np.minimum(least, per_trunk[self.slot], out=least)
        return least

    def _link_min(self, per_flow: np.ndarray) -> np.ndarray:
        """Per link, the least of ``per_flow`` over the flows crossing it."""
        least = np.full(self.n_links, np.inf)
        np.minimum.at(least, self.e_link, per_flow[self.e_flow])
        if self.t_trunk.size:
            per_trunk = np.full(self.n_trunks + 1, np.inf)
            np.minimum.at(per_trunk, self.slot, per_flow)
            np.minimum.at(least, self.t_link, per_trunk[self.t_trunk])
        return least

    def round(self, rates: np.ndarray, rtol: float) -> None:
        """Freeze every flow whose bottleneck level is already final.

        A link's fill level only rises as other flows freeze, so a link is
        final once it is the tightest constraint of every active flow on it
        (no flow on it has a lower link level or demand). All final links
        saturate now; flows reaching their demand first freeze there.
        """
        active, e_flow, e_link = self.active, self.e_flow, self.e_link
        n_flows = active.size
        if self.all_active and self.unit and self.unit_weight:
            weight_sum = self._link_sum(None)
        else:
            weight_sum = self._link_sum(np.where(active, self.weight, 0.0))
        live = (weight_sum > 0) & self.finite
        level = np.full(self.n_links, np.inf)
        link_level = np.divide(np.maximum(self.residual, 0.0), weight_sum, out=level, where=live)
        flow_level = self._flow_min(link_level)
        demand_level = self.demand / self.weight
        bound = np.where(active, np.minimum(flow_level, demand_level), np.inf)
        link_bound = self._link_min(bound)
        final = live & (link_level <= link_bound * (1.0 + rtol))
        at_link = np.zeros(n_flows, dtype=bool)
        at_link[e_flow[final[e_link]]] = True
        if self.t_trunk.size:
            trunk_final = np.zeros(self.n_trunks + 1, dtype=bool)
            trunk_final[self.t_trunk[final[self.t_link]]] = True
            at_link |= trunk_final[self.slot]
        at_link &= active
        at_demand = active & (demand_level <= flow_level * (1.0 + rtol))
        unlimited = active & np.isinf(bound)
        newly = (at_link | at_demand) & ~unlimited
        newly_rates = np.where(newly, np.minimum(self.weight * flow_level, self.demand), 0.0)
        rates[self.ids[newly]] = newly_rates[newly]
        rates[self.ids[unlimited]] = np.inf
        self.residual -= self._link_sum(newly_rates)
        self.active = active & ~(newly | unlimited)
        self.all_active = False


def link_load_gbps(incidence: sp.spmatrix | sp.sparray, rates_gbps: np.ndarray) -> np.ndarray:
    """Offered load per link: ``incidence.T @ rates``.

    Args:
        incidence: ``(n_flows, n_links)`` sparse matrix.
        rates_gbps: Rate per flow in Gb/s.

    Returns:
        Load per link in Gb/s.
    """
    matrix = sp.csr_matrix(incidence, dtype=np.float64)
    return matrix.T @ np.asarray(rates_gbps, dtype=np.float64)


@dataclass(frozen=True)
class MaxMinCertificate:
    """The outcome of :func:`max_min_certificate`.

    Attributes:
        ok: True if the allocation is feasible and max-min fair.
        negative_flows: Flows with a negative (or NaN) rate.
        overloaded_links: Links loaded above capacity.
        unbottlenecked_flows: Flows below their demand with no bottleneck
            link (a saturated link on which no flow has a larger
            weight-normalised rate).
    """

    ok: bool
    negative_flows: np.ndarray
    overloaded_links: np.ndarray
    unbottlenecked_flows: np.ndarray


def max_min_certificate(
    incidence: sp.spmatrix | sp.sparray,
    capacity_gbps: np.ndarray,
    rates_gbps: np.ndarray,
    weights: np.ndarray | None = None,
    demand_gbps: np.ndarray | None = None,
    *,
    rtol: float = 1e-7,
    atol: float = 1e-9,
) -> MaxMinCertificate:
    """Check that rates are a weighted max-min fair allocation.

    The bottleneck characterisation: an allocation is weighted max-min fair
    iff it is feasible and every flow either meets its demand or crosses a
    saturated link on which its ``rate / weight`` is the largest.

    Args:
        incidence: ``(n_flows, n_links)`` sparse matrix.
        capacity_gbps: Capacity per link.
        rates_gbps: Rates to check.
        weights: Weight per flow (default 1).
        demand_gbps: Demand per flow (default none).
        rtol: Relative tolerance of all comparisons.
        atol: Absolute tolerance of all comparisons.

    Returns:
        The certificate, listing any offending flows and links.
    """
    matrix, capacity, weight, demand = _validate(incidence, capacity_gbps, weights, demand_gbps)
    rates = np.asarray(rates_gbps, dtype=np.float64)
    if rates.shape != (matrix.shape[0],):
        raise ValueError(f"rates_gbps must have shape ({matrix.shape[0]},), got {rates.shape}")
    negative = np.flatnonzero(~(rates >= 0))
    finite_rates = np.where(np.isfinite(rates), rates, 0.0)
    load = matrix.T @ finite_rates
    # A flow with infinite rate on a finite link overloads it.
    inf_on = matrix.T @ (~np.isfinite(rates)).astype(np.float64)
    overloaded = np.flatnonzero(
        (load > capacity * (1 + rtol) + atol) | ((inf_on > 0) & np.isfinite(capacity))
    )
    saturated = np.isfinite(capacity) & (load >= capacity * (1 - rtol) - atol)

    normalised = finite_rates / weight
    coo = matrix.tocoo()
    mask = coo.data > 0
    flow_idx, link_idx = coo.row[mask], coo.col[mask]
    link_max = np.zeros(capacity.size)
    np.maximum.at(link_max, link_idx, normalised[flow_idx])
    is_top = normalised[flow_idx] >= link_max[link_idx] * (1 - rtol) - atol
    has_bottleneck = np.zeros(matrix.shape[0], dtype=bool)
    has_bottleneck[flow_idx[is_top & saturated[link_idx]]] = True
    at_demand = rates >= demand * (1 - rtol) - atol
    unlimited = np.isinf(rates) & np.isinf(demand)
    unbottlenecked = np.flatnonzero(~(has_bottleneck | at_demand | unlimited))
    return MaxMinCertificate(
        ok=bool(negative.size == 0 and overloaded.size == 0 and unbottlenecked.size == 0),
        negative_flows=negative,
        overloaded_links=overloaded,
        unbottlenecked_flows=unbottlenecked,
    )


def max_min_certificate_ok(
    incidence: sp.spmatrix | sp.sparray,
    capacity_gbps: np.ndarray,
    rates_gbps: np.ndarray,
    weights: np.ndarray | None = None,
    demand_gbps: np.ndarray | None = None,
    *,
    rtol: float = 1e-7,
    atol: float = 1e-9,
) -> bool:
    """True if :func:`max_min_certificate` finds the allocation max-min fair."""
    return max_min_certificate(
        incidence, capacity_gbps, rates_gbps, weights, demand_gbps, rtol=rtol, atol=atol
    ).ok

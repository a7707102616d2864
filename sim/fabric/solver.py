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


def link_entries(
    by_link: sp.csc_matrix, links: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzeros of some columns (links) of a CSC matrix, column after column.

    Costs in proportion to what is gathered, not to the whole matrix.

    Args:
        by_link: ``(n_flows, n_links)`` matrix in CSC form.
        links: Column indices.

    Returns:
        ``(row, column, value)`` per gathered nonzero; ``column`` indexes ``links``.
    """
    counts = np.diff(by_link.indptr)[links]
    firsts = np.repeat(by_link.indptr[links] - (np.cumsum(counts) - counts), counts)
    entries = firsts + np.arange(firsts.size)
    column = np.repeat(np.arange(links.size), counts)
    return by_link.indices[entries].astype(np.int64), column, by_link.data[entries]


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

    Args:
        incidence: ``(n_flows, n_links)`` sparse matrix, entries non-negative.
        validated: The matrix is already a checked, canonical CSR (internal use).
    """

    def __init__(self, incidence: sp.spmatrix | sp.sparray, *, validated: bool = False):
        if validated:
            matrix = incidence
        else:
            n_links = incidence.shape[1]
            matrix, _, _, _ = _validate(incidence, np.zeros(n_links), None, None)
        self.shape = matrix.shape
        self._matrix = matrix
        self._row = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        self._unit = bool(np.all(matrix.data == 1.0))
        self.by_link = matrix.tocsc()
        """The incidence in CSC form (nonzeros link by link)."""
        # The links some flow crosses, and each nonzero's link among them.
        crossed = np.zeros(matrix.shape[1], dtype=bool)
        crossed[matrix.indices] = True
        self._used = np.flatnonzero(crossed)
        self._link = (np.cumsum(crossed) - 1)[matrix.indices]
        self._all_cross = bool(np.all(np.diff(matrix.indptr) > 0))

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
        matrix = self._matrix
        with np.errstate(invalid="ignore"):
            most = np.asarray(matrix.T @ demand).ravel()
        binding = most > capacity
        count = np.diff(self.by_link.indptr)
        binding_nnz = int(count[binding].sum())
        if binding_nnz >= 0.9 * matrix.nnz:
            # Nearly all links can fill: keep every nonzero (the others never fill).
            links, flow, link, coef = self._used, self._row, self._link, matrix.data
            if self._all_cross:
                ids = np.arange(self.shape[0])
                return _Working(flow, link, coef, self._unit, capacity[links], weight, demand, ids)
        else:
            # Gather the nonzeros of the links that can fill, link by link.
            links = np.flatnonzero(binding)
            flow, link, coef = link_entries(self.by_link, links)
        crossing = np.zeros(self.shape[0], dtype=bool)
        crossing[flow] = True
        ids = np.flatnonzero(crossing)
        flow = (np.cumsum(crossing) - 1)[flow]
        return _Working(
            flow, link, coef, self._unit, capacity[links], weight[ids], demand[ids], ids
        )


class _Working:
    """The still-unfrozen part of a progressive-filling problem, as flat arrays.

    The nonzeros are three parallel arrays (``e_flow``, ``e_link``,
    ``e_coef``), in any order, with flows and links renumbered from 0; per-link
    and per-flow sums and minima are unbuffered ufunc reductions over them
    (``bincount`` and ``minimum.at``), so nothing needs sorting. Compaction
    drops the nonzeros of frozen flows and renumbers the rest; ``ids`` maps
    working flow numbers back to the caller's. ``residual`` is each link's
    capacity minus the load of frozen flows.
    """

    def __init__(
        self,
        e_flow: np.ndarray,
        e_link: np.ndarray,
        e_coef: np.ndarray,
        unit: bool,
        capacity: np.ndarray,
        weight: np.ndarray,
        demand: np.ndarray,
        ids: np.ndarray,
    ) -> None:
        self.e_flow, self.e_link, self.e_coef, self.unit = e_flow, e_link, e_coef, unit
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
        """Drop frozen flows and their nonzeros."""
        keep = self.active
        new_number = np.cumsum(keep) - 1
        kept_entry = keep[self.e_flow]
        self.e_flow = new_number[self.e_flow[kept_entry]]
        self.e_link = self.e_link[kept_entry]
        if not self.unit:
            self.e_coef = self.e_coef[kept_entry]
        self.ids = self.ids[keep]
        self.weight = self.weight[keep]
        self.demand = self.demand[keep]
        self.active = np.ones(self.ids.size, dtype=bool)
        self.all_active = True

    def _per_entry(self, per_flow: np.ndarray) -> np.ndarray:
        """A per-flow value on each of the flow's nonzeros, times the nonzero's share."""
        spread = per_flow[self.e_flow]
        return spread if self.unit else spread * self.e_coef

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
            weight_sum = np.bincount(e_link, minlength=self.n_links).astype(np.float64)
        else:
            weight_sum = np.bincount(
                e_link,
                weights=self._per_entry(np.where(active, self.weight, 0.0)),
                minlength=self.n_links,
            )
        live = (weight_sum > 0) & self.finite
        level = np.full(self.n_links, np.inf)
        link_level = np.divide(np.maximum(self.residual, 0.0), weight_sum, out=level, where=live)
        flow_level = np.full(n_flows, np.inf)
        np.minimum.at(flow_level, e_flow, link_level[e_link])
        demand_level = self.demand / self.weight
        bound = np.where(active, np.minimum(flow_level, demand_level), np.inf)
        link_bound = np.full(self.n_links, np.inf)
        np.minimum.at(link_bound, e_link, bound[e_flow])
        final = live & (link_level <= link_bound * (1.0 + rtol))
        at_link = np.zeros(n_flows, dtype=bool)
        at_link[e_flow[final[e_link]]] = True
        at_link &= active
        at_demand = active & (demand_level <= flow_level * (1.0 + rtol))
        unlimited = active & np.isinf(bound)
        newly = (at_link | at_demand) & ~unlimited
        newly_rates = np.where(newly, np.minimum(self.weight * flow_level, self.demand), 0.0)
        rates[self.ids[newly]] = newly_rates[newly]
        rates[self.ids[unlimited]] = np.inf
        self.residual -= np.bincount(
            e_link, weights=self._per_entry(newly_rates), minlength=self.n_links
        )
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

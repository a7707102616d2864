"""Compiled passes of the lossless back-pressure solver (numba), for large problems.

The forward and backward passes of :class:`sim.fabric.backpressure._Network`
written as loops over link-, pair- and crossing-ordered arrays, compiled once
and cached on disk. Each pass computes exactly what the numpy pass computes,
in the same order of summation wherever the order is the numpy pass's, so the
two agree to rounding (the tests compare them on random problems); the numpy
pass stays the reference and serves small problems, which never import this
module or numba.

The compile cache lives beside this file when that directory is writable,
otherwise under the user's cache directory (:mod:`sim.fabric.numba_setup`).
"""

from __future__ import annotations

import numpy as np

from sim.fabric.numba_setup import numba

__all__ = ["backward", "forward"]

_TOLERANCE = 1e-9
"""Must equal :data:`sim.fabric.backpressure.TOLERANCE` (a test checks it; importing it
from there would make the two modules import each other)."""


@numba.njit(cache=True, nogil=True)
def _level(values: np.ndarray, capacity: float) -> float:
    """The max-min level at which ``values`` fill ``capacity`` (``inf`` if they do not overfill it).

    ``values`` is scratch: it is sorted in place.
    """
    n = values.size
    if n == 0:
        return np.inf
    total = 0.0
    for i in range(n):
        total += values[i]
    if not total > capacity * (1.0 + _TOLERANCE) + _TOLERANCE:
        return np.inf
    if n <= 32:  # insertion sort: small groups are the common case
        for i in range(1, n):
            x = values[i]
            j = i - 1
            while j >= 0 and values[j] > x:
                values[j + 1] = values[j]
                j -= 1
            values[j + 1] = x
    else:
        values.sort()
    slack = _TOLERANCE * max(capacity, 1.0)
    before = 0.0
    for i in range(n):
        candidate = (capacity - before) / (n - i)
        if values[i] >= candidate - slack:
            return max(candidate, 0.0)
        before += values[i]
    return np.inf


@numba.njit(cache=True, nogil=True)
def forward(
    effective: np.ndarray,
    demand: np.ndarray,
    stage_ptr: np.ndarray,
    stage_links: np.ndarray,
    nic_ptr: np.ndarray,
    nic_flow: np.ndarray,
    nic_share: np.ndarray,
    into_ptr: np.ndarray,
    into_pairs: np.ndarray,
    own_ptr: np.ndarray,
    own_flow: np.ndarray,
    own_pair: np.ndarray,
    own_weight: np.ndarray,
    own_relay: np.ndarray,
    trunk_ptr: np.ndarray,
    trunk_trunk: np.ndarray,
    trunk_pair: np.ndarray,
    trunk_weight: np.ndarray,
    slot: np.ndarray,
    n_trunks: int,
    n_pairs: int,
    n_relays: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass along the paths (see ``_Network.forward``).

    Links are listed stage by stage (``stage_links[stage_ptr[k]:stage_ptr[k + 1]]``);
    a NIC link's entries are ``nic_*[nic_ptr[l]:nic_ptr[l + 1]]`` and a link's
    input pairs ``into_pairs[into_ptr[l]:into_ptr[l + 1]]``; crossings into the
    pairs of stage ``k`` are ``own_*[own_ptr[k]:own_ptr[k + 1]]`` and
    ``trunk_*[trunk_ptr[k]:trunk_ptr[k + 1]]``, the own ones sub-flow by sub-flow;
    ``own_relay`` is each own crossing's relay (``-1``: none).
    """
    n_flows = demand.size
    n_stages = stage_ptr.size - 1
    rates = demand.astype(np.float64)
    offered = np.zeros(n_pairs)
    relayed = np.zeros(n_relays)
    if n_stages == 0:  # no sub-flow crosses a link
        return rates, offered, relayed
    scratch = np.empty(max(n_flows, n_pairs, 1))
    # NIC links: the host's sub-flows in turn.
    numerator = np.zeros(n_flows)
    denominator = np.zeros(n_flows)
    for i in range(stage_ptr[0], stage_ptr[1]):
        link = stage_links[i]
        start, end = nic_ptr[link], nic_ptr[link + 1]
        if end == start:
            continue
        asked = scratch[: end - start]
        for e in range(start, end):
            asked[e - start] = rates[nic_flow[e]] * nic_share[e]
        level = _level(asked, effective[link])
        for e in range(start, end):
            a = rates[nic_flow[e]] * nic_share[e]
            kept = level / a if a > level else 1.0
            numerator[nic_flow[e]] += nic_share[e] * kept
            denominator[nic_flow[e]] += nic_share[e]
    for f in range(n_flows):
        if denominator[f] > 0:
            rates[f] *= numerator[f] / denominator[f]
    pair_sum = np.zeros(n_pairs)
    share = np.ones(n_pairs)
    per_trunk = np.zeros(n_trunks + 1)
    trunk_numerator = np.zeros(n_trunks + 1)
    trunk_denominator = np.zeros(n_trunks + 1)
    for k in range(1, n_stages):
        o0, o1 = own_ptr[k], own_ptr[k + 1]
        t0, t1 = trunk_ptr[k], trunk_ptr[k + 1]
        if o1 == o0 and t1 == t0:
            continue
        for c in range(o0, o1):
            brought = own_weight[c] * rates[own_flow[c]]
            pair_sum[own_pair[c]] += brought
            if own_relay[c] >= 0:
                relayed[own_relay[c]] += brought
        if t1 > t0:
            per_trunk[:] = 0.0
            for f in range(n_flows):
                per_trunk[slot[f]] += rates[f]
            for c in range(t0, t1):
                pair_sum[trunk_pair[c]] += trunk_weight[c] * per_trunk[trunk_trunk[c]]
        for i in range(stage_ptr[k], stage_ptr[k + 1]):
            link = stage_links[i]
            p0, p1 = into_ptr[link], into_ptr[link + 1]
            if p1 == p0:
                continue
            brought = scratch[: p1 - p0]
            for j in range(p0, p1):
                brought[j - p0] = pair_sum[into_pairs[j]]
                offered[into_pairs[j]] = pair_sum[into_pairs[j]]
            level = _level(brought, effective[link])
            for j in range(p0, p1):
                b = pair_sum[into_pairs[j]]
                share[into_pairs[j]] = level / b if b > level else 1.0
        if t1 > t0:
            trunk_numerator[:] = 0.0
            trunk_denominator[:] = 0.0
            for c in range(t0, t1):
                trunk_numerator[trunk_trunk[c]] += trunk_weight[c] * share[trunk_pair[c]]
                trunk_denominator[trunk_trunk[c]] += trunk_weight[c]
        # Own crossings come flow by flow: each run is one sub-flow's weighted mean.
        c = o0
        while c < o1:
            f = own_flow[c]
            top, bottom = 0.0, 0.0
            while c < o1 and own_flow[c] == f:
                top += own_weight[c] * share[own_pair[c]]
                bottom += own_weight[c]
                c += 1
            if bottom > 0 and not (t1 > t0 and trunk_denominator[slot[f]] > 0):
                rates[f] *= top / bottom
        if t1 > t0:
            for f in range(n_flows):
                s = slot[f]
                if trunk_denominator[s] > 0:
                    rates[f] *= trunk_numerator[s] / trunk_denominator[s]
        # Back to the untouched state for the next stage.
        for c in range(o0, o1):
            pair_sum[own_pair[c]] = 0.0
            share[own_pair[c]] = 1.0
        for c in range(t0, t1):
            pair_sum[trunk_pair[c]] = 0.0
            share[trunk_pair[c]] = 1.0
    return rates, offered, relayed


@numba.njit(cache=True, nogil=True)
def _inverted_cap(
    value: np.ndarray, carried: np.ndarray, target: float, feeders: np.ndarray
) -> float:
    """One pair's cap on its upstream link ``u`` (see ``backpressure._inverted_caps``).

    ``value`` and ``carried`` are the pair's feeders (scratch: sorted here by
    ``value``); ``feeders`` what every feeder of ``u`` brings.
    """
    n = value.size
    if n <= 32:  # insertion sort, stable like numpy's lexsort
        for i in range(1, n):
            v, c = value[i], carried[i]
            j = i - 1
            while j >= 0 and value[j] > v:
                value[j + 1] = value[j]
                carried[j + 1] = carried[j]
                j -= 1
            value[j + 1] = v
            carried[j + 1] = c
    else:
        order = np.argsort(value, kind="mergesort")
        value[:] = value[order]
        carried[:] = carried[order]
    unpaused = 0.0
    units = 0.0
    for i in range(n):
        unpaused += carried[i]
        units += carried[i] / value[i] if value[i] > 0 else 0.0
    level = np.inf
    if target < unpaused * (1.0 - _TOLERANCE):
        before = 0.0
        passed = 0.0
        for i in range(n):
            unit = carried[i] / value[i] if value[i] > 0 else 0.0
            slope = units - passed
            if target < before + slope * value[i]:
                level = max((target - before) / slope, 0.0)
                break
            before += carried[i]
            passed += unit
    carries = 0.0
    for e in range(feeders.size):
        carries += min(feeders[e], level)
    if np.isfinite(level):
        return carries
    if unpaused > 0:
        more = carries * (target / unpaused)
        if np.isfinite(more):
            return more
    return np.inf


@numba.njit(cache=True, nogil=True)
def backward(
    offered: np.ndarray,
    held: np.ndarray,
    capacity: np.ndarray,
    floor: np.ndarray,
    use_floor: bool,
    pausable: np.ndarray,
    stage_ptr: np.ndarray,
    stage_links: np.ndarray,
    into_ptr: np.ndarray,
    into_pairs: np.ndarray,
    out_ptr: np.ndarray,
    out_pairs: np.ndarray,
    stage_has_out: np.ndarray,
    pair_u: np.ndarray,
    pair_l: np.ndarray,
    head_pair: np.ndarray,
    head_start: np.ndarray,
    head_asked: np.ndarray,
    head_brought: np.ndarray,
    entry_asked: np.ndarray,
    entry_ptr: np.ndarray,
    relayed: np.ndarray,
    relay_ptr: np.ndarray,
    relay_input: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What each link may carry, from the last stage back (see ``_Network.backward``).

    A link's output pairs (it is their upstream link) are
    ``out_pairs[out_ptr[l]:out_ptr[l + 1]]``; ``stage_has_out[k]`` says whether
    any link of stage ``k`` has one. The ``head_*`` and ``entry_*`` arrays are
    those of ``_NicHeads`` (empty where its rule does not apply); a pair's
    relays (``_Relays``) are ``relay_ptr[p]:relay_ptr[p + 1]``, each with its
    input pair ``relay_input`` and what it ``relayed``.
    """
    n_links = capacity.size
    n_pairs = offered.size
    n_stages = stage_ptr.size - 1
    through = np.zeros(n_links)
    for p in range(n_pairs):
        through[pair_u[p]] += offered[p]
    effective = capacity.copy()
    level = np.full(n_links, np.inf)
    bound = np.full(n_links, np.inf)
    per_pair = np.full(n_pairs, np.inf)
    scratch = np.empty(max(n_pairs, 1))
    room = max(relay_input.size, head_asked.size, 1)
    feed_value, feed_carried = np.empty(room), np.empty(room)
    for k in range(n_stages - 1, -1, -1):
        s0, s1 = stage_ptr[k], stage_ptr[k + 1]
        if stage_has_out[k]:
            for i in range(s0, s1):
                link = stage_links[i]
                for j in range(out_ptr[link], out_ptr[link + 1]):
                    p = out_pairs[j]
                    cap = level[pair_l[p]]
                    if np.isfinite(cap) and offered[p] > 0:
                        per_pair[p] = cap * through[link] / offered[p]
            if k == 0:
                for r in range(head_pair.size):
                    if not np.isfinite(level[pair_l[head_pair[r]]]):
                        per_pair[head_pair[r]] = np.inf
                        continue
                    n = head_start[r + 1] - head_start[r]
                    feed_value[:n] = head_asked[head_start[r] : head_start[r + 1]]
                    feed_carried[:n] = head_brought[head_start[r] : head_start[r + 1]]
                    p = head_pair[r]
                    per_pair[p] = _inverted_cap(
                        feed_value[:n],
                        feed_carried[:n],
                        level[pair_l[p]],
                        entry_asked[entry_ptr[r] : entry_ptr[r + 1]],
                    )
            else:
                for i in range(s0, s1):
                    link = stage_links[i]
                    m = into_ptr[link + 1] - into_ptr[link]
                    for j in range(out_ptr[link], out_ptr[link + 1]):
                        p = out_pairs[j]
                        r0, r1 = relay_ptr[p], relay_ptr[p + 1]
                        if r1 == r0:
                            continue
                        if not np.isfinite(level[pair_l[p]]):  # l takes all: no cap
                            per_pair[p] = np.inf
                            continue
                        for r in range(r0, r1):
                            feed_value[r - r0] = offered[relay_input[r]]
                            feed_carried[r - r0] = relayed[r]
                        for e in range(m):
                            scratch[e] = offered[into_pairs[into_ptr[link] + e]]
                        per_pair[p] = _inverted_cap(
                            feed_value[: r1 - r0],
                            feed_carried[: r1 - r0],
                            level[pair_l[p]],
                            scratch[:m],
                        )
            for i in range(s0, s1):
                link = stage_links[i]
                for j in range(out_ptr[link], out_ptr[link + 1]):
                    if not pausable[link]:
                        per_pair[out_pairs[j]] = np.inf
                    elif per_pair[out_pairs[j]] < bound[link]:
                        bound[link] = per_pair[out_pairs[j]]
                value = min(capacity[link], bound[link])
                if use_floor:
                    value = min(value, floor[link])
                effective[link] = value
        for i in range(s0, s1):
            link = stage_links[i]
            p0, p1 = into_ptr[link], into_ptr[link + 1]
            if p1 == p0:
                continue
            asked = scratch[: p1 - p0]
            for j in range(p0, p1):
                p = into_pairs[j]
                asked[j - p0] = 2.0 * effective[link] + 1.0 if held[p] else offered[p]
            level[link] = _level(asked, effective[link])
    return effective, bound, per_pair, through

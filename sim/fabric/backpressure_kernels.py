"""Compiled passes of the lossless back-pressure solver (numba), for large problems.

The forward and backward passes of :class:`sim.fabric.backpressure_passes._Network`
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
"""Must equal :data:`sim.fabric.backpressure_passes.TOLERANCE` (a test checks it; importing it
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
    """One pair's cap on its upstream link ``u`` (see ``backpressure_passes._inverted_caps``).

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


# --------------------------------------------------------------------------- building


@numba.njit(cache=True, nogil=True)
def _grouped(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """``backpressure_passes.grouped``: indices stably sorted by ``key`` (a counting sort),
    and where each key's run starts."""
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    for i in range(key.size):
        ptr[key[i] + 1] += 1
    for k in range(n_keys):
        ptr[k + 1] += ptr[k]
    at = ptr[:-1].copy()
    order = np.empty(key.size, dtype=np.int64)
    for i in range(key.size):
        order[at[key[i]]] = i
        at[key[i]] += 1
    return order, ptr


@numba.njit(cache=True, nogil=True)
def _sorted_within(order: np.ndarray, ptr: np.ndarray, value: np.ndarray) -> None:
    """Sort each run ``order[ptr[g]:ptr[g + 1]]`` by ``value``, stably, in place."""
    for g in range(ptr.size - 1):
        start, end = ptr[g], ptr[g + 1]
        if end - start <= 32:
            for i in range(start + 1, end):
                x = order[i]
                v = value[x]
                j = i - 1
                while j >= start and value[order[j]] > v:
                    order[j + 1] = order[j]
                    j -= 1
                order[j + 1] = x
        elif end - start > 1:
            run = order[start:end].copy()
            order[start:end] = run[np.argsort(value[run], kind="mergesort")]


@numba.njit(cache=True, nogil=True)
def _relays(
    stage: np.ndarray,
    pair: np.ndarray,
    feeder: np.ndarray,
    weight: np.ndarray,
    pair_u: np.ndarray,
    trunk_pair: np.ndarray,
    into_pairs: np.ndarray,
    into_ptr: np.ndarray,
    n_pairs: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``backpressure_passes._Relays.of``: per own crossing its relay, and per relay its output and
    input pair, relays sorted by (output pair, the input's place among the pairs into ``u``)."""
    n = pair.size
    spoiled = np.zeros(n_pairs, dtype=np.bool_)
    for p in trunk_pair:
        spoiled[p] = True
    exact = np.zeros(n, dtype=np.bool_)
    for c in range(n):
        if stage[pair_u[pair[c]]] < 1:
            continue
        f = feeder[c]
        if f >= 0 and weight[c] == 1.0 and weight[f] == 1.0:
            exact[c] = True
        else:
            spoiled[pair[c]] = True
    # Each pair's place among the pairs into its downstream link, and the most there are.
    place = np.empty(n_pairs, dtype=np.int64)
    radix = 1
    for link in range(into_ptr.size - 1):
        radix = max(radix, into_ptr[link + 1] - into_ptr[link])
        for j in range(into_ptr[link], into_ptr[link + 1]):
            place[into_pairs[j]] = j - into_ptr[link]
    # The exact crossings of unspoiled output pairs, by (output pair, input's place).
    m = 0
    for c in range(n):
        if exact[c] and not spoiled[pair[c]]:
            m += 1
    out = np.empty(m, dtype=np.int64)
    out_place = np.empty(m, dtype=np.int64)
    m = 0
    for c in range(n):
        if exact[c] and not spoiled[pair[c]]:
            out[m] = c
            out_place[m] = place[pair[feeder[c]]]
            m += 1
    by_place, _ = _grouped(out_place, radix)
    out = out[by_place]
    out_pair = np.empty(m, dtype=np.int64)
    for i in range(m):
        out_pair[i] = pair[out[i]]
    by_pair, _ = _grouped(out_pair, n_pairs)
    of_crossing = np.full(n, -1, dtype=np.int64)
    output = np.empty(m, dtype=np.int64)
    input_pair = np.empty(m, dtype=np.int64)
    n_relays = 0
    last_pair, last_place = -1, -1
    for i in range(m):
        c = out[by_pair[i]]
        c_in = feeder[c]
        p, q = pair[c], place[pair[c_in]]
        if p != last_pair or q != last_place:
            output[n_relays] = p
            input_pair[n_relays] = pair[c_in]
            n_relays += 1
            last_pair, last_place = p, q
        of_crossing[c_in] = n_relays - 1
    return of_crossing, output[:n_relays], input_pair[:n_relays]


@numba.njit(cache=True, nogil=True)
def build(
    stage: np.ndarray,
    own_indptr: np.ndarray,
    own_indices: np.ndarray,
    own_data: np.ndarray,
    flow: np.ndarray,
    pair: np.ndarray,
    pair_u: np.ndarray,
    pair_l: np.ndarray,
    weight: np.ndarray,
    feeder: np.ndarray,
    trunk: np.ndarray,
    trunk_pair: np.ndarray,
    trunk_weight: np.ndarray,
    demand: np.ndarray,
):
    """The arrays of ``backpressure_passes._CompiledNetwork`` from a problem's links and crossings.

    Equal, array for array, to what the numpy construction (``_Network``, its
    ``_Relays`` and ``_NicHeads``) gives, with counting sorts in place of its
    sorts (a test checks). ``stage`` is per local link; the own incidence is
    given as CSR; the crossings are those of ``link_pairs.Chains``.
    """
    n_links = stage.size
    n_pairs = pair_u.size
    n_flows = own_indptr.size - 1
    n_stages = 0
    for k in stage:
        n_stages = max(n_stages, k + 1)
    stage_links, stage_ptr = _grouped(stage, n_stages)
    # NIC links' entries, link by link and sub-flow by sub-flow (the order of CSC).
    nic_ptr = np.zeros(n_links + 1, dtype=np.int64)
    for f in range(n_flows):
        for e in range(own_indptr[f], own_indptr[f + 1]):
            if stage[own_indices[e]] == 0:
                nic_ptr[own_indices[e] + 1] += 1
    for link in range(n_links):
        nic_ptr[link + 1] += nic_ptr[link]
    at = nic_ptr[:-1].copy()
    nic_flow = np.empty(nic_ptr[n_links], dtype=np.int64)
    nic_share = np.empty(nic_ptr[n_links])
    for f in range(n_flows):
        for e in range(own_indptr[f], own_indptr[f + 1]):
            link = own_indices[e]
            if stage[link] == 0:
                nic_flow[at[link]] = f
                nic_share[at[link]] = own_data[e]
                at[link] += 1
    into_pairs, into_ptr = _grouped(pair_l, n_links)
    inputs = np.diff(into_ptr)
    out_pairs, out_ptr = _grouped(pair_u, n_links)
    pair_stage = np.empty(n_pairs, dtype=np.int64)
    for p in range(n_pairs):
        pair_stage[p] = stage[pair_l[p]]
    stage_has_out = np.zeros(n_stages, dtype=np.bool_)
    for p in range(n_pairs):
        stage_has_out[stage[pair_u[p]]] = True
    own_stage = np.empty(pair.size, dtype=np.int64)
    for c in range(pair.size):
        own_stage[c] = pair_stage[pair[c]]
    # Crossings stage by stage, sub-flow by sub-flow (numpy's lexsort), by two counting sorts.
    in_flow_order = True
    for c in range(1, flow.size):
        if flow[c] < flow[c - 1]:
            in_flow_order = False
            break
    if in_flow_order:
        order, own_ptr = _grouped(own_stage, n_stages)
    else:
        by_flow, _ = _grouped(flow, n_flows)
        by_stage, own_ptr = _grouped(own_stage[by_flow], n_stages)
        order = by_flow[by_stage]
    of_crossing, relay_output, relay_input = _relays(
        stage, pair, feeder, weight, pair_u, trunk_pair, into_pairs, into_ptr, n_pairs
    )
    relay_ptr = np.zeros(n_pairs + 1, dtype=np.int64)
    for r in range(relay_output.size):
        relay_ptr[relay_output[r] + 1] += 1
    for p in range(n_pairs):
        relay_ptr[p + 1] += relay_ptr[p]
    trunk_stage = np.empty(trunk_pair.size, dtype=np.int64)
    for c in range(trunk_pair.size):
        trunk_stage[c] = pair_stage[trunk_pair[c]]
    trunk_order, trunk_ptr = _grouped(trunk_stage, n_stages)
    heads = _heads(
        n_stages,
        n_flows,
        nic_ptr,
        nic_flow,
        nic_share,
        own_stage,
        flow,
        pair,
        weight,
        pair_u,
        demand,
    )
    return (
        stage_links,
        stage_ptr,
        nic_ptr,
        nic_flow,
        nic_share,
        into_pairs,
        into_ptr,
        inputs,
        out_pairs,
        out_ptr,
        stage_has_out,
        own_ptr,
        (flow[order], pair[order], weight[order], of_crossing[order]),
        relay_output,
        relay_input,
        relay_ptr,
        trunk_ptr,
        (trunk[trunk_order], trunk_pair[trunk_order], trunk_weight[trunk_order]),
        heads,
    )


@numba.njit(cache=True, nogil=True)
def _heads(
    n_stages: int,
    n_flows: int,
    nic_ptr: np.ndarray,
    nic_flow: np.ndarray,
    nic_share: np.ndarray,
    own_stage: np.ndarray,
    flow: np.ndarray,
    pair: np.ndarray,
    weight: np.ndarray,
    pair_u: np.ndarray,
    demand: np.ndarray,
):
    """``backpressure_passes._NicHeads.of`` as the compiled backward pass takes it: ``(pair, start,
    asked, brought, entry_asked, entry_ptr)``, all empty where its rule does not apply."""
    empty_i, empty_f = np.zeros(1, dtype=np.int64), np.zeros(0)
    none = (empty_i[:0], empty_i, empty_f, empty_f, empty_f, empty_i)
    if n_stages < 2 or nic_flow.size == 0:
        return none
    entries = np.zeros(n_flows, dtype=np.int64)
    for f in nic_flow:
        entries[f] += 1
    for f in range(n_flows):
        if entries[f] > 1:
            return none
    n_first = 0
    for c in range(own_stage.size):
        if own_stage[c] == 1:
            if entries[flow[c]] == 0:
                return none
            n_first += 1
    if n_first == 0:
        return none
    entry_of_flow = np.full(n_flows, -1, dtype=np.int64)
    for e in range(nic_flow.size):
        entry_of_flow[nic_flow[e]] = e
    nic_asked = np.empty(nic_flow.size)
    for e in range(nic_flow.size):
        nic_asked[e] = demand[nic_flow[e]] * nic_share[e]
    crossings = np.empty(n_first, dtype=np.int64)
    i = 0
    for c in range(own_stage.size):
        if own_stage[c] == 1:
            crossings[i] = c
            i += 1
    asked_of = np.empty(n_first)
    pair_of = np.empty(n_first, dtype=np.int64)
    for i in range(n_first):
        asked_of[i] = nic_asked[entry_of_flow[flow[crossings[i]]]]
        pair_of[i] = pair[crossings[i]]
    n_pairs = pair_u.size
    order, ptr = _grouped(pair_of, n_pairs)
    _sorted_within(order, ptr, asked_of)
    n_heads = 0
    for p in range(n_pairs):
        if ptr[p + 1] > ptr[p]:
            n_heads += 1
    head_pair = np.empty(n_heads, dtype=np.int64)
    start = np.empty(n_heads + 1, dtype=np.int64)
    entry_ptr = np.zeros(n_heads + 1, dtype=np.int64)
    h = 0
    for p in range(n_pairs):
        if ptr[p + 1] > ptr[p]:
            head_pair[h] = p
            start[h] = ptr[p]
            u = pair_u[p]
            entry_ptr[h + 1] = entry_ptr[h] + nic_ptr[u + 1] - nic_ptr[u]
            h += 1
    start[n_heads] = n_first
    asked = np.empty(n_first)
    brought = np.empty(n_first)
    for i in range(n_first):
        j = order[i]
        c = crossings[j]
        e = entry_of_flow[flow[c]]
        asked[i] = asked_of[j]
        brought[i] = asked_of[j] * weight[c] / nic_share[e]
    entry_asked = np.empty(entry_ptr[n_heads])
    for h in range(n_heads):
        u = pair_u[head_pair[h]]
        for k in range(nic_ptr[u + 1] - nic_ptr[u]):
            entry_asked[entry_ptr[h] + k] = nic_asked[nic_ptr[u] + k]
    return head_pair, start, asked, brought, entry_asked, entry_ptr

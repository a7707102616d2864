"""Routes factored into each sub-flow's own links and trunks that many sub-flows share.

InfiniBand's adaptive routing, in its steady state, spreads a flow evenly over
every equal-cost path between its two leaf switches (``spray``). All flows
between the same two leaves then cross the same switch-to-switch links with
the same shares; only their NIC links differ. A cross-pod flow of Meta's 24K
layout crosses 2 NIC links and 160 fabric links, so storing the fabric part
once per leaf pair (a *trunk*) cuts the incidence matrix roughly tenfold.

The incidence matrix ``A`` (sub-flows x links, entry = share of the sub-flow's
rate on the link) is held as ``A = own + member @ trunks``: ``own`` holds each
sub-flow's links outside any trunk, ``member`` maps each sub-flow to at most
one trunk, and ``trunks`` holds each trunk's links and shares. Everything the
solvers need passes through the factors: loads per link
(``A.T @ rates``), sums along each sub-flow's path (``A @ values``) and
per-sub-flow minima over its links. Results equal those of ``A`` itself up to
floating-point rounding (sums taken in another order).

Pure numpy and scipy.sparse.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp

from sim.fabric.hashing import mix64
from sim.fabric.topology import readonly

__all__ = ["Trunked", "factor", "link_entries"]

_WORTHWHILE = 0.6
"""Factor only if the factors hold at most this share of the matrix's nonzeros."""


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


class Trunked:
    """An incidence matrix as own links plus shared trunks: ``A = own + member @ trunks``.

    Args:
        own: ``(n_subflows, n_links)`` CSR: each sub-flow's links outside its trunk.
        trunk_of: Per sub-flow, its trunk (row of ``trunks``), or -1 for none.
        trunks: ``(n_trunks, n_links)`` CSR: each trunk's links and shares.
    """

    def __init__(self, own: sp.csr_matrix, trunk_of: np.ndarray, trunks: sp.csr_matrix):
        if own.shape[1] != trunks.shape[1] or trunk_of.shape != (own.shape[0],):
            raise ValueError("own, trunk_of and trunks do not fit together")
        self.own = own
        self.trunks = trunks
        self.trunk_of = trunk_of.astype(np.int64, copy=False)
        self.n_trunks = int(trunks.shape[0])
        self.slot = np.where(self.trunk_of >= 0, self.trunk_of, self.n_trunks)
        """Per sub-flow, its trunk, or ``n_trunks`` (a trunk with no links) for none."""

    @staticmethod
    def of(matrix: sp.csr_matrix | Trunked) -> Trunked:
        """A CSR incidence as a :class:`Trunked` with no trunks (shares the arrays)."""
        if isinstance(matrix, Trunked):
            return matrix
        matrix = sp.csr_matrix(matrix)
        return Trunked(
            matrix,
            np.full(matrix.shape[0], -1, dtype=np.int64),
            sp.csr_matrix((0, matrix.shape[1])),
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_subflows, n_links)``."""
        return self.own.shape

    @property
    def nnz(self) -> int:
        """Nonzeros stored: own entries, trunk entries and one per trunk member."""
        return int(self.own.nnz + self.trunks.nnz + np.count_nonzero(self.trunk_of >= 0))

    @cached_property
    def own_by_link(self) -> sp.csc_matrix:
        """``own`` in CSC form (its nonzeros link by link)."""
        return self.own.tocsc()

    @cached_property
    def trunks_by_link(self) -> sp.csc_matrix:
        """``trunks`` in CSC form."""
        return self.trunks.tocsc()

    @cached_property
    def own_row(self) -> np.ndarray:
        """The sub-flow of each nonzero of ``own`` (read-only)."""
        return readonly(np.repeat(np.arange(self.own.shape[0]), np.diff(self.own.indptr)))

    @cached_property
    def trunk_row(self) -> np.ndarray:
        """The trunk of each nonzero of ``trunks`` (read-only)."""
        return readonly(np.repeat(np.arange(self.n_trunks), np.diff(self.trunks.indptr)))

    def trunk_sum(self, per_flow: np.ndarray) -> np.ndarray:
        """Per trunk, the sum of ``per_flow`` over its members (plus a last entry: no trunk)."""
        return np.bincount(self.slot, weights=per_flow, minlength=self.n_trunks + 1)

    def link_sum(self, per_flow: np.ndarray) -> np.ndarray:
        """``A.T @ per_flow``: per link, the sum of share times ``per_flow``."""
        out = np.asarray(self.own.T @ per_flow).ravel()
        if self.n_trunks:
            out = out + self.trunks.T @ self.trunk_sum(per_flow)[:-1]
        return out

    def path_sum(self, per_link: np.ndarray) -> np.ndarray:
        """``A @ per_link``: per sub-flow, the sum of share times ``per_link`` on its links."""
        out = np.asarray(self.own @ per_link).ravel()
        if self.n_trunks:
            out = out + np.append(self.trunks @ per_link, 0.0)[self.slot]
        return out

    @cached_property
    def crossed(self) -> np.ndarray:
        """Per link, whether some sub-flow crosses it (read-only)."""
        crossed = np.zeros(self.shape[1], dtype=bool)
        crossed[self.own.indices] = True
        if self.n_trunks:
            used = np.bincount(self.trunk_of[self.trunk_of >= 0], minlength=self.n_trunks) > 0
            crossed[self.trunks.indices[used[self.trunk_row]]] = True
        return readonly(crossed)

    def crosses_nothing(self) -> np.ndarray:
        """Per sub-flow, whether it crosses no link (it stays inside a server)."""
        trunk_links = np.append(np.diff(self.trunks.indptr), 0)[self.slot]
        return (np.diff(self.own.indptr) == 0) & (trunk_links == 0)

    def link_entries(self, links: np.ndarray) -> tuple[np.ndarray, ...]:
        """The nonzeros on some links, of both factors.

        Returns:
            ``(row, column, value, trunk, trunk_column, trunk_value)``: own
            nonzeros (sub-flow, index into ``links``, share) and trunk
            nonzeros (trunk, index into ``links``, share).
        """
        row, column, value = link_entries(self.own_by_link, links)
        trunk, trunk_column, trunk_value = link_entries(self.trunks_by_link, links)
        return row, column, value, trunk, trunk_column, trunk_value

    def row_min(
        self,
        row: np.ndarray,
        value: np.ndarray,
        trunk: np.ndarray,
        trunk_value: np.ndarray,
        initial: float = np.inf,
    ) -> np.ndarray:
        """Per sub-flow, the least of its own entries' and its trunk entries' values."""
        least = np.full(self.shape[0], initial)
        np.minimum.at(least, row, value)
        if trunk.size:
            trunk_least = np.full(self.n_trunks + 1, initial)
            np.minimum.at(trunk_least, trunk, trunk_value)
            np.minimum(least, trunk_least[self.slot], out=least)
        return least

    def with_columns(self, number: np.ndarray, n_links: int) -> Trunked:
        """The same routes on links renumbered ``number[link]`` (``n_links`` of them)."""
        own, trunks = self.own, self.trunks
        return Trunked(
            sp.csr_matrix(
                (own.data, number[own.indices], own.indptr), shape=(own.shape[0], n_links)
            ),
            self.trunk_of,
            sp.csr_matrix(
                (trunks.data, number[trunks.indices], trunks.indptr),
                shape=(trunks.shape[0], n_links),
            ),
        )

    def tocsr(self) -> sp.csr_matrix:
        """The whole incidence matrix ``own + member @ trunks``."""
        if not self.n_trunks:
            return self.own
        rows = np.flatnonzero(self.trunk_of >= 0)
        member = sp.csr_matrix(
            (np.ones(rows.size), (rows, self.trunk_of[rows])),
            shape=(self.shape[0], self.n_trunks),
        )
        whole = (self.own + member @ self.trunks).tocsr()
        whole.sort_indices()
        return whole

    @staticmethod
    def stack(parts: list[Trunked]) -> Trunked:
        """The parts' sub-flows one after another (trunks renumbered, never merged)."""
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0, *(p.n_trunks for p in parts[:-1])])
        return Trunked(
            sp.vstack([p.own for p in parts], format="csr"),
            np.concatenate(
                [
                    np.where(p.trunk_of >= 0, p.trunk_of + o, -1)
                    for p, o in zip(parts, offsets, strict=True)
                ]
            ),
            sp.vstack([p.trunks for p in parts], format="csr"),
        )


def factor(incidence: sp.csr_matrix, shareable: np.ndarray) -> Trunked:
    """Factor an incidence matrix into own links and trunks, where that saves much.

    Sub-flows whose entries on ``shareable`` links are identical (same links,
    same shares) share one trunk holding them; their other entries stay their
    own. Rows are grouped by a 64-bit hash of those entries and every group is
    checked entry by entry, so the factors are exact.

    Args:
        incidence: Sub-flows x links, CSR.
        shareable: Per link, whether it may belong to a trunk (for instance the
            switch-to-switch links, leaving each sub-flow its NIC links).

    Returns:
        The factored matrix, or the matrix itself with no trunks when
        factoring would keep more than :data:`_WORTHWHILE` of its nonzeros.
    """
    matrix = sp.csr_matrix(incidence)
    matrix.sort_indices()
    n_rows = matrix.shape[0]
    cols = matrix.indices.astype(np.int64)
    data = matrix.data.astype(np.float64)
    on = shareable[cols]
    # A row's key: the wrapping sum of its shareable entries' hashes, and their count.
    entry_hash = mix64(cols.astype(np.uint64) ^ mix64(data.view(np.uint64)))
    entry_hash[~on] = 0
    summed = np.zeros(cols.size + 1, dtype=np.uint64)
    np.cumsum(entry_hash, out=summed[1:])
    row_hash = summed[matrix.indptr[1:]] - summed[matrix.indptr[:-1]]
    counted = np.concatenate([[0], np.cumsum(on)])
    row_count = counted[matrix.indptr[1:]] - counted[matrix.indptr[:-1]]
    has = row_count > 0
    if not has.any():
        return Trunked.of(matrix)
    rows = np.flatnonzero(has)
    keys = row_hash[rows] ^ mix64(row_count[rows].astype(np.uint64))
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    representative = rows[first]
    trunk_of = np.full(n_rows, -1, dtype=np.int64)
    trunk_of[rows] = inverse.ravel()
    # Each row's shareable entries, in column order, must equal its representative's.
    shared = np.flatnonzero(on)
    start = counted[matrix.indptr[:-1]]  # per row, where its entries begin in ``shared``
    shared_row = np.repeat(np.arange(n_rows), row_count)
    rank = np.arange(shared.size) - start[shared_row]
    twin = shared[start[representative[trunk_of[shared_row]]] + rank]
    if not (np.array_equal(cols[twin], cols[shared]) and np.array_equal(data[twin], data[shared])):
        return Trunked.of(matrix)  # a hash collision: keep the matrix whole (exact either way)
    is_representative = np.zeros(n_rows, dtype=bool)
    is_representative[representative] = True
    taken = is_representative[shared_row]
    trunks = sp.csr_matrix(
        (data[shared[taken]], (trunk_of[shared_row[taken]], cols[shared[taken]])),
        shape=(representative.size, matrix.shape[1]),
    )
    own = sp.csr_matrix(
        (
            data[~on],
            cols[~on],
            np.concatenate([[0], np.cumsum(np.diff(matrix.indptr) - row_count)]),
        ),
        shape=matrix.shape,
    )
    factored = Trunked(own, trunk_of, trunks)
    if factored.nnz > _WORTHWHILE * matrix.nnz:
        return Trunked.of(matrix)
    return factored

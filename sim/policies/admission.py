"""Admission: whether a tenant's job may start now, whatever room the cluster has.

An admission policy is a class registered in :data:`ADMISSIONS` under the scenario's
``policies.admission.kind``. Before a job of the shared pool (on-demand or spot) is
placed, the marketplace asks it; a job it refuses stays queued, as one that does not fit.

- ``accept_all``: every job that fits may start (the default).
- ``fabric_aware``: a job waits while the fabric predicts its placement would push a
  tenant past its iteration-slowdown SLO (see :class:`FabricAware`).
- ``quotas``: Kueue-style quotas. A tenant with a quota may hold up to its ``gpus`` of the
  shared pool. Tenants in the same ``cohort`` lend each other what they leave unused: a
  tenant may go past its quota by what the cohort's other members leave unused (each
  lends at most its ``lending_limit``), and by at most its own ``borrowing_limit``. So a
  tenant never holds more than its quota plus its borrowing limit, and a cohort never more
  than its quotas together (tested). Tenants without a quota are not limited. Borrowed
  GPUs are not reclaimed when the lender comes back (Kueue preempts borrowers; here the
  lender waits for them to finish).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class AdmissionPolicy(Protocol):
    """What the marketplace asks an admission policy."""

    slowdown_slo: Mapping[str, float]
    """Per tenant, the iteration slowdown no admitted placement may push it past (empty:
    the fabric is not asked)."""

    def admits(self, tenant: str, gpus: int, usage: Mapping[str, int]) -> bool:
        """Whether a job of ``tenant`` asking ``gpus`` may start, given the GPUs of the
        shared pool each tenant's running jobs hold now (``usage``)."""
        ...


class AcceptAll:
    """Every job that fits may start."""

    slowdown_slo: Mapping[str, float] = {}
    """Per tenant, the iteration slowdown no admitted placement may push it past."""

    def __init__(self, config: object = None):
        self.config = config

    def admits(self, tenant: str, gpus: int, usage: Mapping[str, int]) -> bool:
        """Whether a job of ``tenant`` asking ``gpus`` may start.

        Args:
            tenant: The job's tenant.
            gpus: GPUs it asks for.
            usage: GPUs of the shared pool each tenant's running jobs hold now.
        """
        return True


class Quotas(AcceptAll):
    """Quotas with cohorts, borrowing and lending limits (see the module docstring)."""

    def __init__(self, config: object):
        super().__init__(config)
        self.quotas = dict(config.quotas)

    def headroom(self, tenant: str, usage: Mapping[str, int]) -> float:
        """GPUs ``tenant`` may still take now (infinite without a quota).

        Within a cohort: at most its quota plus its borrowing limit, and at most
        what the cohort's quotas leave free, less what other members keep back
        (their unused quota beyond their lending limit).
        """
        quota = self.quotas.get(tenant)
        if quota is None:
            return float("inf")
        own = usage.get(tenant, 0)
        if quota.cohort is None:
            return quota.gpus - own
        limit = float("inf")
        if quota.borrowing_limit is not None:
            limit = quota.gpus + quota.borrowing_limit - own
        members = sorted(n for n, q in self.quotas.items() if q.cohort == quota.cohort)
        free = sum(self.quotas[n].gpus - usage.get(n, 0) for n in members)
        kept = 0
        for name in members:
            other = self.quotas[name]
            if name != tenant and other.lending_limit is not None:
                unused = max(0, other.gpus - usage.get(name, 0))
                kept += max(0, unused - other.lending_limit)
        return min(limit, free - kept)

    def admits(self, tenant: str, gpus: int, usage: Mapping[str, int]) -> bool:
        return gpus <= self.headroom(tenant, usage)


class FabricAware(AcceptAll):
    """Defer a placement the fabric predicts would push a tenant past its slowdown SLO.

    Before a job with modelled traffic starts, the marketplace solves its
    cluster's fabric with the job placed where the placement policy proposes
    (a what-if epoch; its solution is kept for when the job starts). If a job
    of a tenant with an SLO (``slowdown_slo: {atlas: 1.2}``), the new one
    included, would then run slower than its SLO and slower than it runs now,
    the job waits and holds no one else back; it is tried again whenever the
    marketplace schedules. Jobs already running are never stopped.
    """

    def __init__(self, config: object):
        super().__init__(config)
        self.slowdown_slo = dict(config.slowdown_slo)


ADMISSIONS: dict[str, type[AdmissionPolicy]] = {
    "accept_all": AcceptAll,
    "fabric_aware": FabricAware,
    "quotas": Quotas,
}
"""Admission policies by ``kind``."""


def make_admission(config: object) -> AdmissionPolicy:
    """Build the admission policy a scenario names."""
    return ADMISSIONS[config.kind](config)

"""Run a scenario: build the provider, start the SimPy processes, collect results.

The processes are thin: each tenant's arrival stream, the provider's training
bursts, and the inference fleet's diurnal resizing only call into the
:class:`~sim.market.marketplace.Marketplace`, which makes every decision.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import simpy

from sim.catalog import accelerator
from sim.fabric.fabrics import FABRICS
from sim.market.energy import price_curve
from sim.market.failures import FailureModel
from sim.market.inventory import PARKED, SHARED, ClusterInfo, Inventory
from sim.market.marketplace import Marketplace
from sim.market.power import ClusterPower, PowerLedger, SiteLedger, nodes_to_park
from sim.metrics.accounting import CLASSES, Accounting
from sim.metrics.economics import HOURS_PER_YEAR, Costs, add_costs
from sim.metrics.sla import add_sla, tenant_records
from sim.metrics.summary import summarize
from sim.policies.admission import make_admission
from sim.policies.isolation import make_isolation
from sim.policies.placement import make_placement
from sim.policies.preemption import make_preemption
from sim.policies.pricing import make_pricing
from sim.results import (
    RunResult,
    inference_latency_frame,
    jobs_frame,
    network_frame,
    pfc_frame,
)
from sim.rng import Streams
from sim.scenario.models import Scenario
from sim.scenario.tenants import InternalTraining, ReservedContract
from sim.scenario.trace_source import replay_jobs
from sim.scenario.workloads import BatchWorkload, InferenceWorkload
from sim.workloads.jobs import Job
from sim.workloads.sampling import draw_duration_hours, draw_gap_hours, draw_gpus


class Simulation:
    """One scenario, wired up and ready to run.

    Args:
        scenario: A validated scenario.
    """

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.streams = Streams(scenario.seed)
        self.env = simpy.Environment()
        infos: list[ClusterInfo] = []
        for site in scenario.provider.sites:
            for cluster in site.clusters:
                first = sum(c.nodes for c in infos)
                infos.append(
                    ClusterInfo(
                        len(infos),
                        cluster.name,
                        site.name,
                        first,
                        cluster.nodes,
                        cluster.gpus_per_node,
                        cluster.types()[0],
                        tuple(cluster.node_types()) if len(cluster.types()) > 1 else (),
                    )
                )
        self.clusters = infos
        self.cluster_index = {c.name: c.index for c in infos}
        self.inventory = Inventory(infos)
        self.pricing = make_pricing(scenario.policies.pricing)
        self.accounting = Accounting(self.inventory.gpus_total, prices=self._spot_prices())
        isolation = scenario.policies.isolation
        fabrics = [
            FABRICS[c.fabric.kind](
                c.fabric,
                gpus_per_node=c.gpus_per_node,
                accelerator=tuple(self.inventory.node_type[i.node_slice]),
                first_node=i.first_node,
                rate_limits_gbps=isolation.rate_limits_gbps(),
                high_priority=isolation.high_priority_tenants(),
                low_min_share=isolation.low_priority_share(),
            )
            for c, i in zip(scenario.provider.clusters(), infos, strict=True)
        ]
        for info, fabric in zip(infos, fabrics, strict=True):
            domains = fabric.node_domains(info.nodes)
            if domains is not None:
                self.inventory.set_domains(info, *domains)
        self.market = Marketplace(
            self.env,
            self.inventory,
            make_placement(scenario.policies.placement),
            fabrics,
            self.accounting,
            backfill=scenario.policies.scheduling.backfill,
            backfill_depth=scenario.policies.scheduling.backfill_depth,
            isolation=make_isolation(scenario.policies.isolation),
            admission=make_admission(scenario.policies.admission),
            preemption=make_preemption(
                scenario.policies.preemption, {t.name: t.priority for t in scenario.tenants}
            ),
            power=self._power_ledger(),
        )
        self._next_job_id = 0
        self.serving_logs: dict[str, list[Any]] = {}
        self._closers: dict[str, Any] = {}
        self._wire()

    def _power_ledger(self) -> PowerLedger | None:
        """The power ledger of the sites with a power block, or None if none has one."""
        sites = []
        for site in self.scenario.provider.sites:
            power = site.power
            if power is None:
                continue
            ledger = SiteLedger(
                name=site.name,
                cap_mw=power.cap_mw,
                pue=power.pue,
                host_watts_per_gpu=power.host_watts_per_gpu,
                throttles=power.policy == "throttle",
                prices=price_curve(
                    power.price,
                    self.scenario.horizon,
                    self.streams.get(f"power/{site.name}"),
                    power.carbon,
                ),
                carbon=power.carbon,
            )
            for info in self.clusters:
                if info.site != site.name:
                    continue
                for name, nodes in info.type_blocks:
                    part = accelerator(name)
                    ledger.clusters.append(
                        ClusterPower(
                            index=info.index,
                            accelerator=name,
                            idle_watts=part.idle_watts,
                            dynamic_watts=part.tdp_watts - part.idle_watts,
                            powered_gpus=nodes * info.gpus_per_node,
                        )
                    )
            sites.append(ledger)
        return PowerLedger(sites) if sites else None

    def _park(self) -> None:
        """Power off, for the run, the nodes a ``park`` site's cap cannot run at full power."""
        for site in self.scenario.provider.sites:
            if site.power is None or site.power.policy != "park":
                continue
            blocks = [
                (info, name, nodes)
                for info in self.clusters
                if info.site == site.name
                for name, nodes in info.type_blocks
            ]
            parked = nodes_to_park(
                site.power.cap_mw,
                site.power.pue,
                site.power.host_watts_per_gpu,
                [(n, i.gpus_per_node, accelerator(name).tdp_watts) for i, name, n in blocks],
            )
            for (info, name, _), nodes in zip(blocks, parked, strict=True):
                if nodes:
                    self.market.set_aside(info, nodes, PARKED, "parked", accelerator=name)

    def _spot_prices(self) -> dict[str, Any]:
        """Per spot tenant with a price, its price per GPU-hour as GPUs change hands."""
        prices = {}
        for tenant in self.scenario.tenants:
            if tenant.contract.kind != "spot":
                continue
            own = tenant.contract.price_per_gpu_hour
            if self.pricing.spot_price(own, dict.fromkeys(CLASSES, 0)) is None:
                continue  # fixed pricing and no price on the contract: no revenue figure
            prices[tenant.name] = functools.partial(self.pricing.spot_price, own)
        return prices

    def _eligible(self, cluster: str | None, types: list[str] | None = None) -> tuple[int, ...]:
        """Clusters a workload may use: the one it names (or any) with a type it accepts."""
        scope = self.clusters if cluster is None else [self.clusters[self.cluster_index[cluster]]]
        return tuple(c.index for c in scope if types is None or set(c.types) & set(types))

    def _speeds(self, clusters: tuple[int, ...], types: list[str] | None) -> dict[str, float]:
        """Per accelerator type a job accepts (in order), its speed relative to the first.

        Work is measured on the first accepted type (or the first cluster's
        first type if it names none); a job runs as fast as the dense TFLOP/s.
        """
        present = [t for i in clusters for t in self.clusters[i].types]
        accepted = [t for t in dict.fromkeys(types or present) if t in present]
        reference = types[0] if types else accepted[0]
        base = accelerator(reference).tflops_bf16_dense
        return {t: accelerator(t).tflops_bf16_dense / base for t in accepted}

    def _wire(self) -> None:
        """Set spares and parked nodes aside; create reservations, the inference fleet,
        failures and every arrival process."""
        scenario = self.scenario
        failures = scenario.provider.failures
        if failures is not None:
            model = FailureModel(rate_scale=failures.rate_scale, repair_hours=failures.repair)
            for cluster in self.clusters:
                if failures.spares:
                    self.market.keep_spares(cluster, failures.spares)
                self.env.process(self._failures(cluster, model))
        self._park()  # spares first, then what the power caps leave unpowered
        for tenant in scenario.tenants:
            contract = tenant.contract
            pool, clusters = SHARED, self._eligible(tenant.cluster, tenant.accelerators)
            speeds = self._speeds(clusters, tenant.accelerators)
            if isinstance(contract, ReservedContract):
                home = next(
                    self.clusters[i]
                    for i in clusters
                    if contract.gpus % self.clusters[i].gpus_per_node == 0
                    and contract.gpus <= self.clusters[i].gpus
                )
                end = contract.start + contract.term if contract.term is not None else math.inf
                reservation = self.market.add_reservation(
                    tenant.name, home, contract.gpus, contract.start, end, next(iter(speeds))
                )
                pool, clusters = reservation.pool, (home.index,)
            if isinstance(tenant.workload, InferenceWorkload):
                # A served model's replicas run on one type: the one its service times are of.
                reference = next(iter(speeds))
                self.env.process(
                    self._deploy(tenant.name, contract, tenant.workload, pool, clusters, reference)
                )
                continue
            self.env.process(
                self._arrivals(
                    tenant.name,
                    contract.kind,
                    tenant.workload,
                    pool,
                    clusters,
                    contract,
                    speeds,
                    tenant.accelerators,
                )
            )
        internal = scenario.internal
        if internal.inference is not None:
            fleet = self.market.add_inference(
                [self.clusters[i] for i in self._eligible(internal.inference.cluster)]
            )
            self.env.process(self._inference(internal.inference, fleet))
            if internal.inference.serving is not None:
                cluster = self.clusters[self._eligible(internal.inference.cluster)[0]]
                self.env.process(
                    self._serve(
                        "internal",
                        internal.inference.serving,
                        cluster.accelerator,
                        cluster.gpus_per_node,
                        self._fleet_state,
                    )
                )
        if internal.training is not None:
            training = internal.training
            clusters = self._eligible(training.cluster, training.accelerators)
            self.env.process(
                self._arrivals(
                    "internal",
                    "internal",
                    training,
                    SHARED,
                    clusters,
                    None,
                    self._speeds(clusters, training.accelerators),
                    training.accelerators,
                )
            )

    def _arrivals(
        self,
        tenant: str,
        contract_kind: str,
        workload: BatchWorkload | InternalTraining,
        pool: int,
        clusters: tuple[int, ...],
        contract: Any,
        speeds: dict[str, float],
        types: list[str] | None = None,
    ) -> Iterator[simpy.Event]:
        """Submit a tenant's jobs as they arrive. Each draw has its own named stream.

        A trace workload's jobs come from its trace instead (:meth:`_replay`; ``types``:
        the accelerator types it accepts, None for any).
        """
        if workload.trace is not None:
            yield from self._replay(
                tenant, contract_kind, workload, pool, clusters, contract, types
            )
            return
        gaps = self.streams.get(f"{tenant}/arrivals")
        sizes = self.streams.get(f"{tenant}/gpus")
        durations = self.streams.get(f"{tenant}/durations")
        max_jobs = getattr(workload, "max_jobs", None)
        traffic = workload.training.spec() if workload.training is not None else None
        submitted = 0
        while max_jobs is None or submitted < max_jobs:
            yield self.env.timeout(draw_gap_hours(workload.arrivals, gaps))
            gpus = draw_gpus(workload.gpus, sizes)
            work_hours = draw_duration_hours(workload.duration, durations)
            self._submit_batch(
                tenant,
                contract_kind,
                contract,
                workload,
                traffic,
                gpus,
                work_hours,
                clusters,
                pool,
                speeds,
            )
            submitted += 1

    def _replay(
        self,
        tenant: str,
        contract_kind: str,
        workload: BatchWorkload | InternalTraining,
        pool: int,
        clusters: tuple[int, ...],
        contract: Any,
        types: list[str] | None,
    ) -> Iterator[simpy.Event]:
        """Submit a trace workload's jobs at their trace times (no random draw).

        Each job's work is measured on its own type: with ``accelerator: trace``
        it may run only on nodes of that type; with ``any`` on every type it may
        use, faster or slower by dense TFLOP/s (its own type tried first).
        """
        source = workload.trace
        replay = replay_jobs(source, f"{tenant}.trace")  # read when the scenario loaded
        where: dict[str, tuple[tuple[int, ...], dict[str, float]]] = {}
        for kind in sorted(set(replay.accelerator.tolist())):
            if source.accelerator == "trace":
                where[kind] = (
                    tuple(i for i in clusters if kind in self.clusters[i].types),
                    {kind: 1.0},
                )
                continue
            present = [
                t for i in clusters for t in self.clusters[i].types if types is None or t in types
            ]
            order = [kind] if kind in present else []
            base = accelerator(kind).tflops_bf16_dense
            speeds = {t: accelerator(t).tflops_bf16_dense / base for t in [*order, *present]}
            where[kind] = (clusters, speeds)
        max_jobs = getattr(workload, "max_jobs", None)
        traffic = workload.training.spec() if workload.training is not None else None
        count = len(replay) if max_jobs is None else min(len(replay), max_jobs)
        for k in range(count):
            at = float(replay.submit_hours[k])
            if at >= self.scenario.horizon:
                return
            yield self.env.timeout(max(0.0, at - self.env.now))
            scope, speeds = where[replay.accelerator[k]]
            self._submit_batch(
                tenant,
                contract_kind,
                contract,
                workload,
                traffic,
                int(replay.gpus[k]),
                float(replay.work_hours[k]),
                scope,
                pool,
                speeds,
            )

    def _submit_batch(
        self,
        tenant: str,
        contract_kind: str,
        contract: Any,
        workload: BatchWorkload | InternalTraining,
        traffic: Any,
        gpus: int,
        work_hours: float,
        clusters: tuple[int, ...],
        pool: int,
        speeds: dict[str, float],
    ) -> None:
        """Submit one job of a batch workload now (drawn or replayed from a trace)."""
        job = Job(
            job_id=self._next_job_id,
            tenant=tenant,
            contract=contract_kind,
            gpus=gpus,
            work_hours=work_hours,
            submit_hours=self.env.now,
            clusters=clusters,
            pool=pool,
            checkpoint_hours=workload.checkpoint_interval,
            checkpoint_write_hours=workload.checkpoint_write,
            restart_overhead_hours=workload.restart_overhead,
            speeds=speeds,
            max_wait_hours=getattr(contract, "max_wait", None),
            spot_notice_hours=getattr(contract, "notice", 0.0),
            traffic=traffic,
        )
        self._next_job_id += 1
        self.market.submit(job)

    def _failures(self, cluster: ClusterInfo, model: FailureModel) -> Iterator[simpy.Event]:
        """Strike the cluster's GPUs with failures as they come (one named stream per cluster)."""
        rng = self.streams.get(f"failures/{cluster.name}")
        while True:
            gap = model.next_gap_hours(cluster.gpus, rng)
            if not math.isfinite(gap):
                return
            yield self.env.timeout(gap)
            node, slot, cause = model.draw(cluster.nodes, cluster.gpus_per_node, rng)
            scope = model.causes[cause].scope
            self.market.fail(cluster.first_node + node, slot, scope, model.repair_hours)

    def _deploy(
        self,
        tenant: str,
        contract: Any,
        workload: InferenceWorkload,
        pool: int,
        clusters: tuple[int, ...],
        accelerator_name: str,
    ) -> Iterator[simpy.Event]:
        """Submit a served model's replicas when its contract starts; they hold to the horizon.

        The replicas run on nodes of ``accelerator_name``, whose speed the service times use.
        """
        yield self.env.timeout(getattr(contract, "start", 0.0))
        serving = workload.serving
        spec = serving.spec()
        replicas: list[Job] = []
        for _ in range(workload.replicas):
            job = Job(
                job_id=self._next_job_id,
                tenant=tenant,
                contract=contract.kind,
                gpus=serving.tp,
                work_hours=math.inf,
                submit_hours=self.env.now,
                clusters=clusters,
                pool=pool,
                max_wait_hours=getattr(contract, "max_wait", None),
                spot_notice_hours=getattr(contract, "notice", 0.0),
                traffic=spec,
                serving=True,
                speeds={accelerator_name: 1.0},
            )
            self._next_job_id += 1
            replicas.append(job)
            self.market.submit(job)

        def state() -> tuple[list[Any], float]:
            up = [job for job in replicas if job.state == "running"]
            held = sum(job.gpus * job.run_time_at(self.env.now) for job in replicas)
            return [job.network.serving if job.network else None for job in up], held

        gpn = self.clusters[clusters[0]].gpus_per_node
        yield from self._serve(tenant, serving, accelerator_name, gpn, state)

    def _fleet_state(self) -> tuple[list[Any], float]:
        """The internal fleet's replicas now, and the GPU-hours it has held so far."""
        fleet = self.market.inference
        serving = self.scenario.internal.inference.serving
        gpn = fleet.clusters[0].gpus_per_node
        self.accounting.advance(self.env.now)
        held = self.accounting.tenant_gpu_hours["internal"]["inference"]
        return [None] * (len(fleet.nodes) * (gpn // serving.tp)), held

    def _serve(
        self, tenant: str, serving: Any, accelerator_name: str, gpus_per_node: int, state: Any
    ) -> Iterator[simpy.Event]:
        """Look at a served model every ``serving.step``: its replicas meet the step's requests.

        ``state()`` gives the replicas up now (their fabric all-reduce
        times) and the GPU-hours they have held since the run began.
        """
        from sim.catalog import accelerator
        from sim.fabric.transport import NVLINK_GBPS
        from sim.workloads.serving import ServingLog

        log = ServingLog(
            serving,
            accelerator(accelerator_name),
            gpus_per_node,
            NVLINK_GBPS,
            self.streams.get(f"{tenant}/requests"),
        )
        self.serving_logs.setdefault(tenant, []).append(log)
        horizon = self.scenario.horizon
        start = self.env.now
        networks, held_before = state()

        def close() -> None:  # the last step, which ends at the horizon
            _, held = state()
            log.record(start, horizon, networks, held - held_before)

        self._closers[tenant] = close
        while start + serving.step < horizon:
            end = start + serving.step
            yield self.env.timeout(serving.step)
            upcoming, held = state()
            log.record(start, end, networks, held - held_before)
            start, networks, held_before = end, upcoming, held

    def _inference(self, spec: Any, fleet: Any) -> Iterator[simpy.Event]:
        """Resize the internal inference fleet along its diurnal curve."""
        while True:
            hour_of_day = self.env.now % 24.0
            shape = 1.0 + spec.amplitude * math.cos(
                2 * math.pi * (hour_of_day - spec.peak_hour) / 24
            )
            self.market.set_inference_target(math.ceil(spec.gpus * shape))
            yield self.env.timeout(spec.step)

    def run(self, progress: Callable[[float, float], None] | None = None) -> RunResult:
        """Run to the horizon and gather the results.

        Args:
            progress: Called with ``(simulated hours, horizon hours)`` 200 times
                along the way (it only watches: the run is the same without it).
        """
        started = time.perf_counter()
        horizon = self.scenario.horizon
        if progress is not None:
            self.env.process(self._watch(progress, horizon))
        self.env.run(until=horizon)
        self.market.close(horizon)
        for tenant in sorted(self._closers):
            self._closers[tenant]()
        names = [c.name for c in self.clusters]
        jobs = jobs_frame(self.market.jobs, names)
        summary = summarize(
            scenario_name=self.scenario.name,
            seed=self.scenario.seed,
            horizon_hours=horizon,
            wall_seconds=time.perf_counter() - started,
            gpus_total=self.inventory.gpus_total,
            class_gpu_hours=dict(self.accounting.gpu_hours),
            tenant_gpu_hours={k: dict(v) for k, v in self.accounting.tenant_gpu_hours.items()},
            tenant_contracts={t.name: t.contract.kind for t in self.scenario.tenants},
            tenant_prices={t.name: t.contract.price_per_gpu_hour for t in self.scenario.tenants},
            spot_usd=dict(self.accounting.tenant_usd),
            jobs=jobs,
            fabric_epochs=self.market.epochs.count,
            failure_events=self.market.failures,
            network=network_frame(self.market.jobs),
            fabric_log=self.market.epochs.log,
            serving=self.serving_logs,
        )
        fleet = self.scenario.internal.inference
        served_sla = fleet.serving.sla if fleet is not None and fleet.serving else None
        add_sla(summary, self.scenario.tenants, tenant_records(self.market.jobs), served_sla)
        add_costs(summary, self._costs())
        power = self.market.power
        pauses, stalls = self.market.epochs.log.pauses, self.market.epochs.log.stalls
        fabrics = self.market.epochs.fabrics
        return RunResult(
            self.scenario,
            summary,
            jobs,
            self.accounting.timeseries(),
            inference_latency_frame(self.serving_logs) if self.serving_logs else None,
            pd.DataFrame(power.timeseries()) if power is not None else None,
            pfc_frame(pauses, fabrics, names) if pauses else None,
            pfc_frame(stalls, fabrics, names) if stalls else None,
        )

    def _watch(
        self, progress: Callable[[float, float], None], horizon: float
    ) -> Iterator[simpy.Event]:
        """Report how far the run has got, 200 times to the horizon."""
        step = horizon / 200
        while True:
            progress(self.env.now, horizon)
            yield self.env.timeout(step)

    def _costs(self) -> Costs:
        """Capex written off per hour, and the power ledger's energy (see add_costs)."""
        depreciation = network = 0.0
        capex_known = False
        for cluster, info in zip(self.scenario.provider.clusters(), self.clusters, strict=True):
            if cluster.capex is not None:
                capex_known = True
                hours = cluster.capex.service_life_years * HOURS_PER_YEAR
                depreciation += info.gpus * cluster.capex.usd_per_gpu / hours
                network += info.gpus * cluster.capex.network_usd_per_gpu / hours
        ledger = self.market.power
        if ledger is None:
            return Costs(depreciation, network, capex_known)
        weights = [sum(c.powered_gpus for c in site.clusters) or 1 for site in ledger.sites]
        horizon = self.scenario.horizon
        speeds = [site.speed_hours / horizon for site in ledger.sites]
        return Costs(
            depreciation,
            network,
            capex_known,
            energy_mwh=ledger.energy_by_owner("mwh"),
            energy_usd=ledger.energy_by_owner("usd"),
            energy_known=True,
            carbon_tonnes=ledger.carbon_tonnes(),
            cap_mw=sum(site.cap_mw for site in ledger.sites),
            power_mw_peak=ledger.peak_mw(),
            compute_speed_mean=sum(w * v for w, v in zip(weights, speeds, strict=True))
            / sum(weights),
        )


def simulate(
    scenario: Scenario, progress: Callable[[float, float], None] | None = None
) -> RunResult:
    """Run a scenario to its horizon (see :meth:`Simulation.run` for ``progress``)."""
    return Simulation(scenario).run(progress)

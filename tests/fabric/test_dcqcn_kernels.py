"""The compiled DCQCN time loop (numba) computes what the Python loop computes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.fabric.flows as flows_module
import sim.fabric.transport as transport_module
from sim.fabric import dcqcn_dynamics
from sim.fabric.dcqcn import DcqcnParams
from sim.fabric.flows import simulate_flows
from sim.scenario.fabric import FabricConfig


@settings(max_examples=30, deadline=None)
@given(
    groups=st.integers(1, 5),
    delay_us=st.sampled_from([0.0, 4.0, 85.0]),
    sized=st.booleans(),
    queue_kb=st.floats(0.0, 400.0),
    alpha=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_the_compiled_loop_equals_the_python_loop(groups, delay_us, sized, queue_kb, alpha, seed):
    rng = np.random.default_rng(seed)
    params = DcqcnParams(feedback_delay_us=delay_us)
    cap = params.capacity_kb_per_us
    sizes = np.where(rng.random(groups) < 0.3, np.inf, rng.random(groups) * 800 + 1)
    start = dcqcn_dynamics._Start(
        rc=rng.random(groups) * cap + 1e-3,
        rt=rng.random(groups) * cap + 1e-3,
        alpha=alpha,
        queue_kb=queue_kb,
        weights=rng.integers(1, 20, groups).astype(float),
        sizes_kb=sizes if sized else None,
    )
    steps = int(rng.integers(1, 3000))
    every = int(rng.integers(1, 7))
    reference = dcqcn_dynamics._integrate(params, start, steps, 1.0, round(delay_us), every)
    compiled = dcqcn_dynamics._integrate_compiled(params, start, steps, 1.0, round(delay_us), every)
    for want, got in zip(reference, compiled, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_long_dcqcn_flow_run_traces_bursts_compiled_and_agrees(monkeypatch):
    # Flows arriving one by one at random ports: each burst a port traces anew is work,
    # and after COMPILED_AFTER_MS of it the run's traces come from the compiled loop.
    rng = np.random.default_rng(5)
    n = 40
    src = rng.integers(0, 16, n)
    traffic = pd.DataFrame(
        {
            "src": src,
            "dst": (src + rng.integers(1, 16, n)) % 16,
            "start_us": np.arange(n) * 40.0,
            "size_bytes": rng.integers(50_000, 2_000_000, n),
        }
    )
    config = FabricConfig.model_validate(
        {"topology": {"kind": "fat_tree", "k": 4}, "transport": {"kind": "roce"}}
    )
    monkeypatch.setattr(flows_module, "COMPILED_AFTER_MS", 100.0)
    flags = []
    real = transport_module.burst_transient

    def spy(*key, compiled=False):
        flags.append(compiled)
        return real(*key, compiled=compiled)

    monkeypatch.setattr(transport_module, "burst_transient", spy)
    switched = simulate_flows(config, traffic)
    assert flags[0] is False and flags[-1] is True
    first = flags.index(True)
    assert set(flags[first:]) == {True}
    flags.clear()
    monkeypatch.setattr(flows_module, "COMPILED_AFTER_MS", 10**9)
    reference = simulate_flows(config, traffic)
    assert set(flags) == {False}
    np.testing.assert_allclose(switched.flows["fct_us"], reference.flows["fct_us"], rtol=1e-9)
    assert switched.summary["ecn_mark_fraction"] == reference.summary["ecn_mark_fraction"]


def test_a_short_fabric_run_never_imports_numba():
    code = (
        "import sys, numpy as np\n"
        "from sim.scenario.fabric import FabricConfig\n"
        "from sim.fabric.flows import simulate_flows\n"
        "for transport in ({'kind': 'roce'}, {'kind': 'roce', 'cc': 'none'}):\n"
        "    c = FabricConfig.model_validate({'topology': {'kind': 'fat_tree', 'k': 4},"
        " 'transport': transport})\n"
        "    f = {'src': np.arange(1, 16), 'dst': np.zeros(15, dtype=int),"
        " 'start_us': np.zeros(15), 'size_bytes': np.full(15, 2_000_000)}\n"
        "    r = simulate_flows(c, f)\n"
        "print(r.summary['pfc_pause_fraction'] > 0, 'numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]

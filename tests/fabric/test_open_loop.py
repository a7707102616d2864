"""Open-loop traffic: Poisson arrivals at a load, flow sizes from DCTCP's web-search CDF."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.fabric.open_loop import WEB_SEARCH, SizeDistribution, open_loop, read_sizes
from sim.fabric.traffic import read_flows


def test_web_search_sizes_follow_the_published_cdf():
    # DCTCP's web-search points (Alizadeh et al. 2010, as the pFabric and HPCC generators
    # use them): 15 % of flows up to 10 KB, 53 % up to 80 KB, 90 % up to 5 MB, all by 30 MB.
    n = 200_000
    sizes = WEB_SEARCH.sample(n, np.random.default_rng(7))
    for size_bytes, cdf in zip(WEB_SEARCH.size_bytes, WEB_SEARCH.cdf, strict=True):
        stderr = np.sqrt(cdf * (1 - cdf) / n) + 1e-9
        assert np.mean(sizes <= size_bytes) == pytest.approx(cdf, abs=4 * stderr + 1e-5)
    # The mean of the piecewise-linear CDF: each segment's probability times its midpoint.
    assert WEB_SEARCH.mean_bytes == pytest.approx(1_711_250.0)
    assert sizes.mean() == pytest.approx(WEB_SEARCH.mean_bytes, rel=0.02)
    assert sizes.min() >= 1 and sizes.max() <= 30_000_000


def test_arrivals_offer_the_load_as_poisson_processes_to_uniform_destinations():
    hosts, n, load, link_gbps = 32, 100_000, 0.5, 100.0
    flows = open_loop(hosts, n, load, WEB_SEARCH, link_gbps, rng=np.random.default_rng(3))
    span_us = flows["start_us"].iloc[-1]
    # Each host offers its link the load: the arrival rate is load x link / mean size.
    rate_per_host_per_us = n / span_us / hosts
    want = load * link_gbps * 1e3 / (8 * WEB_SEARCH.mean_bytes)
    assert rate_per_host_per_us == pytest.approx(want, rel=4 / np.sqrt(n))
    # Poisson: a host's gaps are exponential (coefficient of variation 1).
    gaps = np.diff(flows.loc[flows["src"] == 5, "start_us"].to_numpy())
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)
    assert np.all(np.diff(flows["start_us"]) >= 0)
    # Sources and destinations uniform, never the same host.
    assert np.all(flows["src"] != flows["dst"])
    for column in ("src", "dst"):
        counts = np.bincount(flows[column], minlength=hosts)
        assert counts.std() < 4 * np.sqrt(n / hosts)


def test_the_same_seed_gives_the_same_flows():
    def make(seed):
        return open_loop(16, 500, 0.3, WEB_SEARCH, 100.0, rng=np.random.default_rng(seed))

    assert make(1).equals(make(1))
    assert not make(1).equals(make(2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_hosts": 1}, "n_hosts"),
        ({"n_flows": 0}, "flows"),
        ({"load": 0.0}, "load"),
        ({"load": 1.5}, "load"),
        ({"link_gbps": float("nan")}, "link_gbps"),
        ({"n_flows": 10, "load": 1e-12}, "past one day"),
    ],
)
def test_bad_arguments_name_what_is_wrong(kwargs, message):
    args = {"n_hosts": 16, "n_flows": 10, "load": 0.5, "sizes": WEB_SEARCH, "link_gbps": 100.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        open_loop(**args, rng=np.random.default_rng(0))


def test_a_size_file_gives_its_distribution_and_bad_ones_name_the_line(tmp_path):
    path = tmp_path / "sizes.csv"
    path.write_text("size_bytes,cdf\n100,0\n\n1000,0.5\n2000,1\n")
    sizes = read_sizes(path)
    assert sizes.mean_bytes == pytest.approx(0.5 * 550 + 0.5 * 1500)
    cases = {
        "size,cdf\n1,0\n2,1\n": ":1: expected the header size_bytes,cdf",
        "size_bytes,cdf\n1,0\n2,x\n": ":3: expected two numbers",
        "size_bytes,cdf\n1,0\n2,0.5,7\n": ":3: expected two numbers",
        "size_bytes,cdf\n1,0\n2,0.9\n": "must start at 0 and end at 1",
        "size_bytes,cdf\n5,0\n2,1\n": "must not decrease",
        "size_bytes,cdf\n": "no points",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_sizes(path)
    with pytest.raises(ValueError, match="needs two or more"):
        SizeDistribution("one", np.array([1.0]), np.array([1.0]))


runner = CliRunner()


def test_the_command_writes_a_workload_and_refuses_bad_options(tmp_path):
    out = tmp_path / "w.csv"
    args = ["traffic", "workload", "--hosts", "16", "--flows", "300", "--load", "0.3"]
    result = runner.invoke(app, [*args, "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    flows = read_flows(out, 16)
    assert len(flows) == 300
    again = tmp_path / "again.csv"
    runner.invoke(app, [*args, "--seed", "4", "--out", str(again)])
    assert again.read_text() == out.read_text()
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("size_bytes,cdf\n4096,0\n4096,1\n")
    result = runner.invoke(app, [*args, "--sizes", str(sizes), "--out", str(out)])
    assert result.exit_code == 0 and set(read_flows(out, 16)["size_bytes"]) == {4096}
    bad = {
        ("--load", "2"): "load must be a fraction",
        ("--sizes", "pareto"): "--sizes: pareto: cannot read",
        ("--size", "2MB"): "--size: a workload's sizes come from --sizes",
    }
    for extra, message in bad.items():
        result = runner.invoke(app, [*args, *extra, "--out", str(tmp_path / "bad.csv")])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "bad.csv").exists()
    result = runner.invoke(
        app, ["traffic", "permutation", "--hosts", "16", "--out", str(tmp_path / "p.csv")]
    )
    assert result.exit_code == 2 and "--size: permutation needs the bytes per flow" in result.output

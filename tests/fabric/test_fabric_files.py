"""FABRIC.yaml: every topology kind builds, defaults match the builders, bad files are named."""

from __future__ import annotations

import inspect

import pytest

import sim.scenario.fabric as fabric_module
from sim.fabric.dcqcn import DcqcnParams
from sim.fabric.topology_kinds import TOPOLOGIES, build_topology
from sim.scenario.fabric import (
    TOPOLOGY_KINDS,
    TRANSPORT_KINDS,
    DcqcnSettings,
    FabricConfig,
    IdealTransport,
    InfinibandTransport,
    RoceTransport,
)
from sim.scenario.fabric_loader import fabric_from_text, load_fabric
from sim.scenario.yaml_input import ScenarioError

SMALL = {
    "leaf_spine": "{kind: leaf_spine, hosts_per_leaf: 4, leaves: 3, oversubscription: 2}",
    "fat_tree": "{kind: fat_tree, k: 4, link_gbps: 100}",
    "rail_optimized": "{kind: rail_optimized, gpus_per_node: 4, nodes_per_group: 2, groups: 2}",
    "meta_ai_zone": "{kind: meta_ai_zone, racks_per_pod: 2, pods: 2, ctsw_per_pod: 4}",
}


def problems_of(text: str, source: str = "fab.yaml") -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        fabric_from_text(text, source)
    return caught.value.problems


def test_registries_cover_every_builder() -> None:
    assert sorted(TOPOLOGY_KINDS) == sorted(TOPOLOGIES)
    assert sorted(TRANSPORT_KINDS) == ["ideal", "infiniband", "roce"]


@pytest.mark.parametrize("kind", sorted(TOPOLOGIES))
def test_every_topology_kind_loads_from_yaml_and_builds(tmp_path, kind: str) -> None:
    path = tmp_path / "fab.yaml"
    path.write_text(f"topology: {SMALL[kind]}\ntransport: {{kind: ideal}}\nseed: 3\n")
    config = load_fabric(path)
    assert config.topology.kind == kind and config.seed == 3
    topology = config.build_topology()
    expected = build_topology(kind, **config.topology.builder_params())
    assert topology.kind == kind
    assert topology.params == expected.params
    assert topology.n_hosts == expected.n_hosts > 0


@pytest.mark.parametrize("kind", sorted(TOPOLOGIES))
def test_topology_fields_and_defaults_mirror_the_builder(kind: str) -> None:
    model = TOPOLOGY_KINDS[kind]
    signature = inspect.signature(TOPOLOGIES[kind]).parameters
    fields = {name: f for name, f in model.model_fields.items() if name != "kind"}
    assert list(fields) == list(signature)
    for name, parameter in signature.items():
        assert fields[name].default == parameter.default, name
        assert type(fields[name].default) is type(parameter.default), name
    # A bare kind resolves to exactly what the builder does with no arguments.
    config = FabricConfig.model_validate(
        {"topology": {"kind": kind}, "transport": {"kind": "ideal"}}
    )
    assert config.topology.builder_params() == build_topology(kind, check=False).params


def test_transport_defaults() -> None:
    roce = RoceTransport(kind="roce")
    assert roce.pfc is True and roce.cc == "dcqcn"
    assert (roce.qps_per_connection, roce.hash_seed) == (1, 0)
    assert (roce.pfc_xoff_kb, roce.ecn_kmin_kb, roce.ecn_kmax_kb, roce.ecn_pmax) == (
        512.0,
        5.0,
        200.0,
        0.01,
    )
    assert roce.dcqcn == DcqcnSettings(
        g=1 / 256,
        rate_ai_mbps=40.0,
        tau_us=50.0,
        tau_prime_us=55.0,
        timer_us=55.0,
        byte_counter_mb=10.0,
        fast_recovery_steps=5,
        feedback_delay_us=4.0,
    )
    ib = InfinibandTransport(kind="infiniband")
    assert (ib.adaptive_routing, ib.adaptive_chunks, ib.hash_seed, ib.credit_buffer_kb) == (
        True,
        8,
        0,
        256.0,
    )
    assert IdealTransport(kind="ideal").kind == "ideal"
    config = fabric_from_text("topology: {kind: fat_tree, k: 4}\ntransport: {kind: roce}\n")
    assert config.transport == roce and config.seed == 0


def test_dcqcn_params_map_the_settings() -> None:
    # The defaults are those of the fluid model (Zhu et al.), at its 40 Gb/s.
    assert RoceTransport(kind="roce").dcqcn_params(40.0) == DcqcnParams()
    roce = RoceTransport(
        kind="roce",
        ecn_kmin_kb=10,
        ecn_kmax_kb=400,
        ecn_pmax=0.2,
        dcqcn={"g": 0.5, "tau_us": 20, "byte_counter_mb": 1, "feedback_delay_us": 0},
    )
    params = roce.dcqcn_params(400.0)
    assert (params.capacity_gbps, params.kmin_kb, params.kmax_kb, params.pmax) == (
        400.0,
        10.0,
        400.0,
        0.2,
    )
    assert (params.g, params.tau_us, params.byte_counter_mb, params.feedback_delay_us) == (
        0.5,
        20.0,
        1.0,
        0.0,
    )
    assert (params.tau_prime_us, params.timer_us, params.fast_recovery_steps) == (55.0, 55.0, 5)


def test_models_are_frozen() -> None:
    config = fabric_from_text("topology: {kind: fat_tree, k: 4}\ntransport: {kind: ideal}\n")
    with pytest.raises(ValueError):
        config.seed = 4  # type: ignore[misc]


BAD = {
    "unknown topology kind": (
        "topology:\n  kind: fat_tre\n  k: 4\ntransport: {kind: ideal}\n",
        ["fab.yaml:2: topology: unknown kind 'fat_tre'", "'fat_tree'"],
    ),
    "unknown transport kind": (
        "topology: {kind: fat_tree, k: 4}\ntransport: {kind: rocev2}\n",
        ["fab.yaml:2: transport: unknown kind 'rocev2'; expected one of 'roce'"],
    ),
    "missing kind": (
        "topology: {k: 4}\ntransport: {kind: ideal}\n",
        ["fab.yaml:1: topology: missing field 'kind'"],
    ),
    "typo'd field": (
        "topology:\n  kind: fat_tree\n  k: 4\n  link_gpbs: 100\ntransport: {kind: ideal}\n",
        [
            "fab.yaml:4: topology.link_gpbs: unknown field; did you mean link_gbps? "
            "valid fields: k, link_gbps, "
            "prop_delay_us, buffer_bytes, mtu_bytes"
        ],
    ),
    "typo'd dcqcn field": (
        "topology: {kind: fat_tree, k: 4}\ntransport:\n  kind: roce\n  dcqcn:\n    gain: 0.1\n",
        ["fab.yaml:5: transport.dcqcn.gain: unknown field; valid fields: g, rate_ai_mbps, tau_us"],
    ),
    "another kind's field, listed short": (
        "topology: {kind: meta_ai_zone, hosts_per_leaf: 4}\ntransport: {kind: ideal}\n",
        [
            "fab.yaml:1: topology.hosts_per_leaf: unknown field; valid fields: gpus_per_node, "
            "nodes_per_rack, racks_per_pod, pods, ctsw_per_pod, atsw_per_plane and 5 more"
        ],
    ),
    "field of another kind": (
        "topology: {kind: fat_tree, k: 4}\ntransport: {kind: ideal, pfc: false}\n",
        ["fab.yaml:2: transport.pfc: unknown field; valid fields: header_bytes, whole_packets"],
    ),
    "odd k": (
        "topology:\n  kind: fat_tree\n  k: 5\ntransport: {kind: ideal}\n",
        ["fab.yaml:3: topology.k: must be even, got 5"],
    ),
    "negative link_gbps": (
        "topology:\n  kind: leaf_spine\n  link_gbps: -100\ntransport: {kind: ideal}\n",
        ["fab.yaml:3: topology.link_gbps: Input should be greater than or equal to 1"],
    ),
    "infinite link_gbps": (
        "topology: {kind: fat_tree, link_gbps: .inf}\ntransport: {kind: ideal}\n",
        ["fab.yaml:1: topology.link_gbps: Input should be a finite number"],
    ),
    "boolean count": (
        "topology: {kind: leaf_spine, spines: true}\ntransport: {kind: ideal}\n",
        ["fab.yaml:1: topology.spines: Input should be a valid integer"],
    ),
    "tiny mtu": (
        "topology: {kind: fat_tree, mtu_bytes: 32}\ntransport: {kind: ideal}\n",
        ["fab.yaml:1: topology.mtu_bytes: Input should be greater than or equal to 64"],
    ),
    "kmax not above kmin": (
        "topology: {kind: fat_tree, k: 4}\n\ntransport:\n  kind: roce\n  ecn_kmin_kb: 300\n",
        ["fab.yaml:4: transport: ecn_kmax_kb must be greater than ecn_kmin_kb (300), got 200"],
    ),
    "pmax above one": (
        "topology: {kind: fat_tree}\ntransport: {kind: roce, ecn_pmax: 2, cc: timely}\n",
        [
            "fab.yaml:2: transport.cc: Input should be 'dcqcn' or 'none'",
            "fab.yaml:2: transport.ecn_pmax: Input should be less than or equal to 1",
        ],
    ),
    "missing transport": (
        "topology: {kind: fat_tree}\n",
        ["fab.yaml:1: transport: missing required field"],
    ),
    "negative seed": (
        "topology: {kind: fat_tree}\ntransport: {kind: ideal}\nseed: -1\n",
        ["fab.yaml:3: seed: Input should be greater than or equal to 0"],
    ),
    "invalid YAML": (
        "topology: {kind: fat_tree\ntransport: {kind: ideal}\n",
        ["fab.yaml:2: not valid YAML"],
    ),
    "empty file": ("", ["fab.yaml: a fabric file must be a mapping", "an empty file"]),
    "a list": ("- fat_tree\n- roce\n", ["fab.yaml: a fabric file must be a mapping", "list"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_fabric_files_name_file_line_and_field(case: str) -> None:
    text, expected = BAD[case]
    problems = problems_of(text)
    for fragment in expected:
        assert any(fragment in problem for problem in problems), (fragment, problems)
    assert all(problem.startswith("fab.yaml") for problem in problems)


def test_every_problem_is_reported_at_once() -> None:
    text = (
        "topology:\n  kind: fat_tree\n  k: 3\n  link_gbps: 0\n"
        "transport: {kind: roce, hash_seed: -2}\n"
    )
    problems = problems_of(text)
    assert [p.split(": ")[1] for p in problems] == [
        "topology.k",
        "topology.link_gbps",
        "transport.hash_seed",
    ]


def test_a_builder_error_is_named_by_its_parameter(monkeypatch) -> None:
    def refuse(kind, **params):
        raise ValueError(f"{kind}: parameter 'link_gbps' must be finite and > 0, got 7")

    monkeypatch.setattr(fabric_module, "build_topology", refuse)
    text = "topology:\n  kind: fat_tree\n  link_gbps: 7\ntransport: {kind: ideal}\n"
    assert problems_of(text) == ["fab.yaml:3: topology.link_gbps: must be finite and > 0, got 7"]

    def refuse_whole(kind, **params):
        raise ValueError(f"{kind}: topology is not connected")

    monkeypatch.setattr(fabric_module, "build_topology", refuse_whole)
    assert problems_of(text) == ["fab.yaml:2: topology: fat_tree: topology is not connected"]


def test_missing_and_unreadable_files(tmp_path) -> None:
    with pytest.raises(ScenarioError, match=r"nope\.yaml: no such file"):
        load_fabric(tmp_path / "nope.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00topology")
    with pytest.raises(ScenarioError, match=r"binary\.yaml: cannot read"):
        load_fabric(binary)

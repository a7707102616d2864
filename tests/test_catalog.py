"""The accelerator catalog: published figures, packaging and validation of the data file."""

from __future__ import annotations

import copy
from importlib.resources import files
from typing import Any

import pytest
import yaml

from sim.catalog import (
    KINDS,
    Accelerator,
    UnknownModel,
    accelerator,
    accelerators,
    catalog_name,
    parse_catalog,
)
from sim.runner import simulate
from sim.scenario import scenario_from_text

EXPECTED_NAMES = [
    "H100",
    "H200",
    "B200",
    "MI300X",
    "MI450",
    "MTIA",
    "A100",
    "A100-40GB",
    "A10",
    "V100",
    "V100-16GB",
    "P100",
    "T4",
    "H800",
]

TRACE_GPU_TYPES = ["A100", "A100-40GB", "A10", "V100", "V100-16GB", "P100", "T4", "H800"]
"""The GPU types the public cluster traces ran on (added for trace replay)."""


def good_entry(**overrides: Any) -> dict[str, Any]:
    """A valid catalog entry, with some fields replaced."""
    entry: dict[str, Any] = {
        "tflops_bf16_dense": 100,
        "hbm_gb": 64,
        "hbm_tbps": 2.0,
        "tdp_watts": 300,
        "idle_watts": 30,
        "nic_gbps": 200,
        "kind": "training",
        "source": "Vendor X datasheet (2024).",
    }
    entry.update(overrides)
    return entry


def test_catalog_holds_the_expected_accelerators_in_file_order() -> None:
    assert list(accelerators()) == EXPECTED_NAMES


def test_h100_dense_bf16_is_half_the_sparse_datasheet_figure() -> None:
    h100 = accelerator("H100")
    assert h100.tflops_bf16_dense == 989
    assert h100.tflops_bf16_dense == pytest.approx(1979 / 2, abs=0.5)
    assert (h100.hbm_gb, h100.tdp_watts, h100.nic_gbps) == (80, 700, 400)
    assert h100.kind == "training"


def test_published_dense_bf16_figures() -> None:
    assert accelerator("H200").tflops_bf16_dense == 989
    assert accelerator("MI300X").tflops_bf16_dense == 1307.4
    assert accelerator("B200").tflops_bf16_dense == 2250
    assert accelerator("MTIA").tflops_bf16_dense == 177


def test_published_memory_and_power_figures() -> None:
    assert (accelerator("H200").hbm_gb, accelerator("H200").tdp_watts) == (141, 700)
    assert (accelerator("B200").hbm_gb, accelerator("B200").tdp_watts) == (180, 1000)
    assert (accelerator("MI300X").hbm_gb, accelerator("MI300X").tdp_watts) == (192, 750)
    assert accelerator("MI450").hbm_gb == 432
    assert (accelerator("MTIA").hbm_gb, accelerator("MTIA").tdp_watts) == (128, 90)


def test_published_memory_bandwidth_figures() -> None:
    bandwidth = {name: acc.hbm_tbps for name, acc in accelerators().items()}
    assert bandwidth == {
        "H100": 3.35,
        "H200": 4.8,
        "B200": 8.0,
        "MI300X": 5.3,
        "MI450": 19.6,
        "MTIA": 0.2048,
        "A100": 2.039,
        "A100-40GB": 1.555,
        "A10": 0.6,
        "V100": 0.9,
        "V100-16GB": 0.9,
        "P100": 0.732,
        "T4": 0.32,
        "H800": 3.35,
    }
    # DGX B200: 64 TB/s over its 8 GPUs.
    assert accelerator("B200").hbm_tbps == pytest.approx(64 / 8)


def test_every_source_says_where_the_bandwidth_comes_from() -> None:
    for acc in accelerators().values():
        assert "Bandwidth:" in acc.source, acc.name
    assert "announced" in accelerator("MI450").source
    assert "204.8 GB/s" in accelerator("MTIA").source


def test_mtia_is_inference_and_its_source_says_the_memory_is_lpddr() -> None:
    mtia = accelerator("MTIA")
    assert mtia.kind == "inference"
    assert "LPDDR5" in mtia.source
    assert "NOT HBM" in mtia.source


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_every_entry_is_sound(name: str) -> None:
    acc = accelerator(name)
    assert isinstance(acc, Accelerator)
    assert acc.name == name
    assert acc.source.strip()
    assert "\n" not in acc.source
    assert 0 < acc.idle_watts < acc.tdp_watts
    assert acc.kind in KINDS
    for value in (acc.tflops_bf16_dense, acc.hbm_gb, acc.hbm_tbps, acc.tdp_watts, acc.nic_gbps):
        assert isinstance(value, float)
        assert value > 0


def test_entries_are_frozen() -> None:
    h100 = accelerator("H100")
    with pytest.raises(AttributeError):
        h100.tdp_watts = 1.0  # type: ignore[misc]


def test_accelerators_returns_a_fresh_dict_over_a_cached_load() -> None:
    first = accelerators()
    first.pop("H100")
    second = accelerators()
    assert "H100" in second
    assert second["B200"] is first["B200"]


def test_data_file_ships_inside_the_package() -> None:
    resource = files("sim.catalog") / "accelerators.yaml"
    assert resource.is_file()
    assert set(yaml.safe_load(resource.read_text(encoding="utf-8"))) == set(EXPECTED_NAMES)


def test_unknown_name_lists_known_names_sorted() -> None:
    with pytest.raises(ValueError) as info:
        accelerator("A800")
    assert str(info.value) == (
        "unknown accelerator 'A800'; known: A10, A100, A100-40GB, B200, H100, H200, H800, "
        "MI300X, MI450, MTIA, P100, T4, V100, V100-16GB"
    )
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_parse_catalog_accepts_a_good_entry() -> None:
    catalog = parse_catalog({"X1": good_entry(nic_gbps=16.7, kind="inference")})
    assert catalog == {
        "X1": Accelerator(
            name="X1",
            tflops_bf16_dense=100.0,
            hbm_gb=64.0,
            hbm_tbps=2.0,
            tdp_watts=300.0,
            idle_watts=30.0,
            nic_gbps=16.7,
            kind="inference",
            source="Vendor X datasheet (2024).",
        )
    }


def test_parse_catalog_accepts_the_shipped_file_round_trip() -> None:
    text = (files("sim.catalog") / "accelerators.yaml").read_text(encoding="utf-8")
    assert parse_catalog(yaml.safe_load(text)) == accelerators()


def _without(field: str) -> dict[str, Any]:
    entry = good_entry()
    del entry[field]
    return entry


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (_without("tdp_watts"), "tdp_watts"),
        (_without("source"), "source"),
        (_without("hbm_tbps"), "hbm_tbps"),
        (good_entry(hbm_tbps=0), "hbm_tbps"),
        (good_entry(hbm_tbps=-3.35), "hbm_tbps"),
        (good_entry(hbm_tbps="3.35 TB/s"), "hbm_tbps"),
        (good_entry(hbm_tbps=float("nan")), "hbm_tbps"),
        (good_entry(hbm_gb=0), "hbm_gb"),
        (good_entry(tflops_bf16_dense=-5), "tflops_bf16_dense"),
        (good_entry(nic_gbps="400"), "nic_gbps"),
        (good_entry(nic_gbps=True), "nic_gbps"),
        (good_entry(hbm_gb=float("inf")), "hbm_gb"),
        (good_entry(idle_watts=300), "idle_watts"),
        (good_entry(idle_watts=450), "idle_watts"),
        (good_entry(kind="serving"), "kind"),
        (good_entry(source="   "), "source"),
        (good_entry(source=None), "source"),
        (good_entry(tdp_watt=300), "tdp_watt"),
    ],
)
def test_parse_catalog_rejects_a_malformed_entry_naming_entry_and_field(
    entry: dict[str, Any], field: str
) -> None:
    data = {"GOOD": good_entry(), "BAD1": entry}
    with pytest.raises(ValueError, match=r"'BAD1'") as info:
        parse_catalog(data)
    assert repr(field) in str(info.value)


def test_missing_bandwidth_error_names_the_field_exactly() -> None:
    with pytest.raises(ValueError) as info:
        parse_catalog({"X1": _without("hbm_tbps")})
    assert str(info.value) == "accelerator 'X1': missing field 'hbm_tbps'"


def test_parse_catalog_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="non-empty mapping"):
        parse_catalog({})
    with pytest.raises(ValueError, match="non-empty mapping"):
        parse_catalog([good_entry()])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'X1': entry must be a mapping"):
        parse_catalog({"X1": [1, 2, 3]})
    with pytest.raises(ValueError, match="non-empty strings"):
        parse_catalog({7: good_entry()})  # type: ignore[dict-item]


def test_parse_catalog_does_not_modify_its_input() -> None:
    data = {"X1": good_entry(source="  spread\n  over lines  ")}
    before = copy.deepcopy(data)
    catalog = parse_catalog(data)
    assert data == before
    assert catalog["X1"].source == "spread over lines"


# The GPU types the public traces ran on: each figure as its datasheet (or the derivation its
# source states) gives it.
# name: (tflops_bf16_dense, hbm_gb, hbm_tbps, tdp_watts, idle_watts, nic_gbps, kind)
TRACE_GPU_FIGURES = {
    "A100": (312, 80, 2.039, 400, 60, 200, "training"),
    "A100-40GB": (312, 40, 1.555, 400, 52, 200, "training"),
    "A10": (125, 24, 0.6, 150, 15, 12.5, "inference"),
    "V100": (125, 32, 0.9, 300, 42, 50, "training"),
    "V100-16GB": (125, 16, 0.9, 300, 45, 50, "training"),
    "P100": (18.7, 16, 0.732, 250, 27, 50, "training"),
    "T4": (65, 16, 0.32, 70, 9, 12.5, "inference"),
    "H800": (989, 80, 3.35, 700, 70, 400, "training"),
}


def test_the_trace_gpu_table_covers_every_new_entry() -> None:
    assert sorted(TRACE_GPU_FIGURES) == sorted(TRACE_GPU_TYPES)
    assert EXPECTED_NAMES[-len(TRACE_GPU_TYPES) :] == TRACE_GPU_TYPES


@pytest.mark.parametrize("name", TRACE_GPU_TYPES)
def test_trace_gpu_figures_match_their_datasheets(name: str) -> None:
    acc = accelerator(name)
    figures = (
        acc.tflops_bf16_dense,
        acc.hbm_gb,
        acc.hbm_tbps,
        acc.tdp_watts,
        acc.idle_watts,
        acc.nic_gbps,
        acc.kind,
    )
    assert figures == TRACE_GPU_FIGURES[name]
    assert 0 < acc.idle_watts < acc.tdp_watts


def test_dense_figures_are_half_the_sparse_datasheet_figures() -> None:
    # A100 datasheet: BF16 312 | 624 with sparsity; A10: 125 | 250; H800 as H100: 1,979 sparse.
    assert accelerator("A100").tflops_bf16_dense == 624 / 2
    assert accelerator("A100-40GB").tflops_bf16_dense == 624 / 2
    assert accelerator("A10").tflops_bf16_dense == 250 / 2
    assert accelerator("H800").tflops_bf16_dense == pytest.approx(1979 / 2, abs=0.5)
    for name in ("A100", "A100-40GB", "A10", "H800"):
        assert "sparsity" in accelerator(name).source, name


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("V100", "dense FP16 Tensor Core throughput, 125 TFLOP/s"),
        ("V100-16GB", "dense FP16 Tensor Core throughput, 125 TFLOP/s"),
        ("P100", "FP16 (half-precision, non-tensor) peak, 18.7 TFLOP/s"),
        ("T4", "dense FP16 Tensor Core throughput, 65 TFLOP/s"),
    ],
)
def test_parts_without_bf16_say_which_fp16_figure_they_carry(name: str, what: str) -> None:
    source = accelerator(name).source
    assert "NO BF16" in source
    assert what in source


def test_job_speed_ratios_between_trace_types() -> None:
    # A job's speed scales by tflops_bf16_dense: the ratios a moved job sees.
    speed = {name: acc.tflops_bf16_dense for name, acc in accelerators().items()}
    assert speed["A100"] / speed["V100"] == pytest.approx(2.496)
    assert speed["V100"] / speed["T4"] == pytest.approx(125 / 65)
    assert speed["H800"] == speed["H100"]
    assert speed["A100"] == speed["A100-40GB"]
    assert speed["V100"] == speed["V100-16GB"]


def test_v100_variants_differ_only_in_memory() -> None:
    big, small = accelerator("V100"), accelerator("V100-16GB")
    assert (big.hbm_gb, small.hbm_gb) == (32, 16)
    assert "SXM2 32 GB" in big.source
    assert "V100M32" in big.source
    assert "SXM2 16 GB" in small.source


def test_inference_cards_say_their_memory_is_gddr6() -> None:
    for name in ("A10", "T4"):
        acc = accelerator(name)
        assert acc.kind == "inference"
        assert "GDDR6, NOT HBM" in acc.source


def test_nic_figures_state_their_basis() -> None:
    assert "8x ConnectX-6 HDR" in accelerator("A100").source
    assert "4x 100 Gb/s EDR InfiniBand for 8 GPUs" in accelerator("V100").source
    assert accelerator("V100").nic_gbps == 4 * 100 / 8
    assert accelerator("A10").nic_gbps == 100 / 8
    assert "DeepSeek-V3" in accelerator("H800").source
    assert "no published H800" in accelerator("H800").source


# Every trace spelling catalog_name documents, and the key it must give.
TRACE_NAMES = {
    "A100": "A100",
    "a100": "A100",
    "A100-SXM4-80GB": "A100",
    "NVIDIA A100-SXM4-80GB": "A100",
    "A100-SXM-80GB": "A100",
    "A100-80GB": "A100",
    "A100 80GB PCIe": "A100",
    "A100-PCIE-80GB": "A100",
    "A100-40GB": "A100-40GB",
    "a100 40gb": "A100-40GB",
    "A100-SXM4-40GB": "A100-40GB",
    "A100-SXM-40GB": "A100-40GB",
    "A100-PCIE-40GB": "A100-40GB",
    "NVIDIA A100-PCIE-40GB": "A100-40GB",
    "A10": "A10",
    "NVIDIA A10": "A10",
    "nvidia_a10": "A10",
    "A10-24GB": "A10",
    "A10 PCIe": "A10",
    "V100": "V100",
    "V100M32": "V100",
    "V100-32GB": "V100",
    "Tesla V100-SXM2-32GB": "V100",
    "V100-16GB": "V100-16GB",
    "V100-SXM2-16GB": "V100-16GB",
    "Tesla V100-SXM2-16GB": "V100-16GB",
    "V100M16": "V100-16GB",
    "P100": "P100",
    "P100-PCIE": "P100",
    "Tesla P100-PCIE-16GB": "P100",
    "T4": "T4",
    "Tesla T4": "T4",
    "T4-16GB": "T4",
    "H100": "H100",
    "H100-SXM5-80GB": "H100",
    "H100 80GB HBM3": "H100",
    "NVIDIA H100 80GB HBM3": "H100",
    "H800": "H800",
    "H800-SXM5-80GB": "H800",
    "H800 80GB HBM3": "H800",
    "NVIDIA H800 80GB HBM3": "H800",
    "  h200 ": "H200",
    "MI300X": "MI300X",
}


@pytest.mark.parametrize(("model", "key"), sorted(TRACE_NAMES.items()))
def test_catalog_name_maps_trace_spellings(model: str, key: str) -> None:
    assert catalog_name(model) == key
    assert key in accelerators()


def test_every_spelling_in_the_docstring_table_is_tested() -> None:
    doc = catalog_name.__doc__ or ""
    table = doc[doc.index("Trace names") : doc.index("A bare")]
    spellings = {s for s in table.split("``")[1::2] if s not in accelerators()}
    spellings -= {"NVIDIA", "Tesla"}
    assert spellings <= set(TRACE_NAMES), sorted(spellings - set(TRACE_NAMES))


def test_a10_and_a100_are_never_confused() -> None:
    assert catalog_name("A10") == "A10"
    assert catalog_name("NVIDIA A10") == "A10"
    assert catalog_name("A100") == "A100"
    assert catalog_name("NVIDIA A100-SXM4-80GB") == "A100"
    for model in ("A1", "A1000", "A10-80GB", "A100-24GB", "A10G"):
        with pytest.raises(UnknownModel):
            catalog_name(model)


@pytest.mark.parametrize(
    "model",
    [
        "GPU-series-1",
        "GPU-series-6",
        "MISC",
        "A800-SXM4-80GB",
        "V100-PCIE-16GB",
        "Tesla P100-SXM2-16GB",
        "H100 PCIe",
        "",
    ],
)
def test_unknown_models_name_the_model_and_the_accelerator_map(model: str) -> None:
    with pytest.raises(UnknownModel) as info:
        catalog_name(model)
    message = str(info.value)
    assert repr(model) in message
    assert "accelerator_map" in message
    assert "A100-40GB, B200" in message
    assert isinstance(info.value, ValueError)


def test_unknown_model_message_in_full() -> None:
    with pytest.raises(UnknownModel) as info:
        catalog_name("GPU-series-3")
    assert str(info.value) == (
        "GPU model 'GPU-series-3' is not in the accelerator catalog; map it to one of A10, "
        "A100, A100-40GB, B200, H100, H200, H800, MI300X, MI450, MTIA, P100, T4, V100, "
        "V100-16GB in the scenario's accelerator_map "
        "(e.g. accelerator_map: {'GPU-series-3': H100})"
    )


def test_the_explicit_mapping_wins() -> None:
    mapping = {"GPU-series-1": "H800", "A100-SXM4-80GB": "A100-40GB", "V100": "V100-16GB"}
    assert catalog_name("GPU-series-1", mapping) == "H800"
    assert catalog_name("A100-SXM4-80GB", mapping) == "A100-40GB"
    assert catalog_name("V100", mapping) == "V100-16GB"
    # Names the mapping does not hold still resolve by the catalog and the table.
    assert catalog_name("V100M32", mapping) == "V100"
    assert catalog_name("Tesla T4", {}) == "T4"
    assert catalog_name("Tesla T4", None) == "T4"


TRACE_FLEET = """
name: trace-fleet
seed: 1
horizon: 2d
provider:
  sites:
    - name: old
      clusters:
        - {name: volta, nodes: 2, accelerator: V100}
        - {name: ampere, nodes: 2, accelerator: {A100: 1, A100-40GB: 1}}
        - {name: serving, nodes: 1, accelerator: T4}
tenants:
  - name: t
    contract: {kind: on_demand}
    accelerators: [V100, A100]
    CLUSTER
    workload:
      arrivals: {kind: poisson, rate_per_hour: 100}
      gpus: 8
      duration: 10h
      max_jobs: 1
"""


def test_scenarios_accept_the_trace_gpu_types_and_run_jobs_at_their_speed() -> None:
    def only_job(cluster: str) -> Any:
        text = TRACE_FLEET.replace("CLUSTER", cluster)
        return simulate(scenario_from_text(text, "trace-fleet.yaml")).jobs.iloc[0]

    # Measured on V100 (10 h there); on an A100 it runs 312/125 = 2.5x faster.
    job = only_job("cluster: volta")
    assert job["end_hours"] - job["start_hours"] == pytest.approx(10.0)
    job = only_job("cluster: ampere")
    assert job["end_hours"] - job["start_hours"] == pytest.approx(10.0 * 125 / 312)

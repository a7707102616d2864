"""The accelerator catalog: published figures, packaging and validation of the data file."""

from __future__ import annotations

import copy
from importlib.resources import files
from typing import Any

import pytest
import yaml

from sim.catalog import KINDS, Accelerator, accelerator, accelerators, parse_catalog

EXPECTED_NAMES = ["H100", "H200", "B200", "MI300X", "MI450", "MTIA"]


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
        accelerator("A100")
    assert str(info.value) == (
        "unknown accelerator 'A100'; known: B200, H100, H200, MI300X, MI450, MTIA"
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

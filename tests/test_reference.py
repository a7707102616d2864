"""The generated scenario-file reference: committed copy up to date, complete, correct."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim.scenario.loader import scenario_from_text
from sim.scenario.models import Scenario
from sim.scenario.reference import EXAMPLE_YAML, scenario_reference_markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "scenario-reference.md"
REGENERATE = "python -m sim.scenario.reference > docs/scenario-reference.md"


@pytest.fixture(scope="module")
def markdown() -> str:
    """The reference as the code renders it now."""
    return scenario_reference_markdown()


@pytest.fixture(scope="module")
def sections(markdown: str) -> dict[str, str]:
    """The reference's sections by heading (``## Name``), each without its heading line."""
    parts = re.split(r"^## (\w+)\n", markdown, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def table(section: str) -> dict[str, list[str]]:
    """A section's field table: field name to its cells ``[type, default, description]``."""
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        match = re.match(r"^\| `(\w+)` \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split(" | ")]
    return rows


def test_committed_reference_is_current(markdown: str) -> None:
    committed = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert committed == markdown, f"docs/scenario-reference.md is stale; run: {REGENERATE}"


def test_output_is_deterministic(markdown: str) -> None:
    assert scenario_reference_markdown() == markdown


def test_every_model_and_field_is_documented(sections: dict[str, str]) -> None:
    schema = Scenario.model_json_schema()
    models = {"Scenario": schema, **schema["$defs"]}
    models = {name: spec for name, spec in models.items() if "properties" in spec}
    assert set(sections) == set(models)
    for name, spec in models.items():
        rows = table(sections[name])
        assert list(rows) == list(spec["properties"]), name


def test_sections_run_depth_first_from_scenario(sections: dict[str, str]) -> None:
    names = list(sections)
    assert names[:4] == ["Scenario", "Provider", "Site", "Cluster"]
    assert names.index("Internal") < names.index("Tenant") < names.index("Policies")


def test_every_link_has_a_section(markdown: str, sections: dict[str, str]) -> None:
    anchors = {name.lower() for name in sections}
    links = set(re.findall(r"\]\(#([a-z0-9-]+)\)", markdown))
    assert links
    assert links <= anchors, sorted(links - anchors)


def test_example_layout_is_a_valid_scenario() -> None:
    scenario = scenario_from_text(EXAMPLE_YAML, "reference example")
    assert scenario.tenants[0].name == "acme"
    assert EXAMPLE_YAML.rstrip("\n") in scenario_reference_markdown()


def test_failures_repair_is_a_required_duration(sections: dict[str, str]) -> None:
    kind, default, description = table(sections["Failures"])["repair"]
    assert (kind, default) == ("duration", "required")
    assert "> 0" in description
    assert "out of service" in description


def test_cluster_accelerator_defaults_to_h100(sections: dict[str, str]) -> None:
    rows = table(sections["Cluster"])
    assert rows["accelerator"][:2] == ["str or mapping of str to int", "`H100`"]
    assert rows["gpus_per_node"][1:] == [
        "`8`",
        "576 is the largest NVLink domain announced; > 0, ≤ 576",
    ]
    assert rows["fabric"][1] == "`{kind: ideal}`"


def test_placement_union_lists_every_kind(sections: dict[str, str]) -> None:
    placement = table(sections["Policies"])["placement"]
    assert placement[0].startswith("one of [FirstFitPlacement](#firstfitplacement)")
    assert "[RailAlignedPlacement](#railalignedplacement)" in placement[0]
    assert placement[0].endswith("by kind")
    assert placement[1] == "`{kind: first_fit}`"
    assert table(sections["RailAlignedPlacement"])["kind"] == ["`rail_aligned`", "required", ""]


def test_types_defaults_and_constraints(sections: dict[str, str]) -> None:
    tenant = table(sections["Tenant"])
    assert tenant["workload"][0] == (
        "one of [BatchWorkload](#batchworkload), [InferenceWorkload](#inferenceworkload) by kind"
    )
    assert tenant["accelerators"][0] == "list of str or null"
    assert table(sections["Scenario"])["tenants"][:2] == ["list of [Tenant](#tenant)", "`[]`"]
    batch = table(sections["BatchWorkload"])
    assert batch["checkpoint_interval"] == ["duration or null", "`null`", "> 0"]
    assert batch["gpus"][2].endswith("a bare value means `{kind: fixed, value: VALUE}`")
    assert table(sections["Serving"])["step"][1] == "`15m`"
    assert table(sections["SpotContract"])["notice"][1] == "`2m`"
    assert table(sections["ChoiceGpus"])["values"][2] == (
        "not empty, at most 10000 items, each > 0, each ≤ 1048576"
    )
    quotas = table(sections["QuotaAdmission"])["quotas"]
    assert quotas[0] == "mapping of str to [Quota](#quota)"
    assert table(sections["Preemption"])["kind"][0] == (
        "one of `newest`, `least_progress`, `lowest_priority`"
    )
    assert "≥ 1, ≤ 10000" in table(sections["Compare"])["seeds"][2]


def test_docstrings_and_attribute_sections_are_used(sections: dict[str, str]) -> None:
    assert "Meta's Llama 3 rates (see `sim.market.failures`)" in sections["Failures"]
    roce = sections["RoceTransport"]
    assert "Attributes:" not in roce
    assert table(roce)["pfc_xoff_kb"][2].startswith("Ingress queue at which a port sends PAUSE")


def test_the_readme_index_is_up_to_date():
    """The README's index of sections is generated too; regenerate it when models change."""
    from sim.scenario.reference import README_END, README_START, readme_index_markdown

    text = (DOC.parent.parent / "README.md").read_text(encoding="utf-8")
    start, end = text.index(README_START), text.index(README_END) + len(README_END) + 1
    assert text[start:end] == readme_index_markdown(), (
        "README.md's scenario index is stale: replace the block between its markers with "
        "python -c 'from sim.scenario.reference import readme_index_markdown as r; print(r())'"
    )

"""Each policy registry holds exactly the kinds the scenario schema offers."""

from __future__ import annotations

import types
import typing

import pytest
from pydantic import BaseModel

from sim.policies.admission import ADMISSIONS
from sim.policies.isolation import ISOLATIONS
from sim.policies.placement import PLACEMENTS
from sim.policies.preemption import PREEMPTIONS
from sim.policies.pricing import PRICINGS
from sim.scenario import Scenario

REGISTRIES = {
    "placement": PLACEMENTS,
    "isolation": ISOLATIONS,
    "admission": ADMISSIONS,
    "preemption": PREEMPTIONS,
    "pricing": PRICINGS,
}


POLICIES = Scenario.model_fields["policies"].annotation


def members(family: str) -> tuple[type, ...]:
    """The models the schema accepts for ``policies.<family>`` (the members of its union)."""
    annotation = POLICIES.model_fields[family].annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def schema_kinds(family: str) -> set[str]:
    """The ``kind`` literals of every model the schema accepts for ``policies.<family>``."""
    kinds: set[str] = set()
    for member in members(family):
        kind = member.model_fields["kind"].annotation
        assert typing.get_origin(kind) is typing.Literal, (member, kind)
        kinds.update(typing.get_args(kind))
    return kinds


def test_every_policy_family_of_the_schema_has_a_registry():
    chosen_by_kind = {
        family
        for family in POLICIES.model_fields
        if all(
            issubclass(member, BaseModel) and "kind" in member.model_fields
            for member in members(family)
        )
    }
    assert chosen_by_kind == set(REGISTRIES)


@pytest.mark.parametrize("family", sorted(REGISTRIES))
def test_registry_keys_are_the_schema_kind_literals(family):
    assert set(REGISTRIES[family]) == schema_kinds(family)

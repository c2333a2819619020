"""Keep each role's defaults, its argument specs and the shared hub table in step."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.tamyla.tradehub.plugins.module_utils.catalog import HUBS

ROLES = (
    Path(__file__).resolve().parents[2]
    / "collections/ansible_collections/tamyla/tradehub/roles"
)
ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if (p / "meta").is_dir())


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def documented_options(role: str) -> dict:
    specs = load(ROLES / role / "meta/argument_specs.yml")["argument_specs"]
    options: dict = {}
    for entry_point in specs.values():
        options.update(entry_point.get("options") or {})
    return options


def test_there_are_roles_to_check():
    assert {"common", "postgresql", "event_bus", "hub", "gateway"} <= set(ROLE_NAMES)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_default_is_documented_with_the_same_value(role):
    defaults = load(ROLES / role / "defaults/main.yml")
    options = documented_options(role)
    assert sorted(set(defaults) - set(options)) == [], "undocumented defaults"
    for name, value in defaults.items():
        spec = options[name]
        assert spec.get("description"), f"{name} has no description"
        if "default" in spec:
            assert spec["default"] == value, f"{name}: spec and defaults differ"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_documented_option_has_a_default(role):
    defaults = load(ROLES / role / "defaults/main.yml")
    assert sorted(set(documented_options(role)) - set(defaults)) == []


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_public_variables_carry_the_role_prefix(role):
    prefix = "tradehub_" if role == "common" else role + "_"
    defaults = load(ROLES / role / "defaults/main.yml")
    assert [n for n in defaults if not n.startswith(prefix)] == []


def test_role_catalog_matches_the_module_utils_catalog():
    catalog = load(ROLES / "common/vars/main.yml")["_tradehub_catalog"]
    assert catalog == HUBS
    spec = documented_options("common")["tradehub_hubs"]
    assert spec["choices"] == list(HUBS)
    assert spec["default"] == list(HUBS)

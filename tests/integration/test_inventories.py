"""The shipped inventories as Ansible reads them, and site.yml's checks of bad input.

A consultant's first contact with the collection is an inventory: these tests read the
sandbox and the data-centre example with ``ansible-inventory`` the way a run does, and
prove that ``playbooks/site.yml`` stops in its first play, naming the variable, before
any host is changed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
ALL_HUBS = [
    "sourcing",
    "content",
    "contacts",
    "campaigns",
    "demand",
    "shipping",
    "services",
]
GROUPS = [
    "tradehub_database",
    "tradehub_event_bus",
    "tradehub_hubs",
    "tradehub_gateway",
]
FIRST_PLAY = "Check the inventory on every host before changing anything"


def ansible_env(**extra: str) -> dict[str, str]:
    """The environment of a consultant's run: the repository's ansible.cfg."""
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), **extra)


def inventory(path: Path) -> dict[str, Any]:
    """``ansible-inventory --list`` of an inventory, parsed."""
    completed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        env=ansible_env(),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def group_hosts(listing: dict[str, Any], group: str) -> set[str]:
    """Every host of a group, its child groups' hosts included."""
    entry = listing.get(group, {})
    hosts = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts |= group_hosts(listing, child)
    return hosts


def test_sandbox_puts_every_group_and_hub_on_one_host() -> None:
    listing = inventory(ROOT / "inventories" / "sandbox")
    for group in GROUPS:
        assert group_hosts(listing, group) == {"tradehub-sandbox"}, group

    host = listing["_meta"]["hostvars"]["tradehub-sandbox"]
    # No hub_names: the single hub host runs every hub of tradehub_hubs.
    assert "hub_names" not in host
    assert host["tradehub_hubs"] == ALL_HUBS
    assert host["tradehub_domain"] == "sandbox.test"


def test_onprem_example_spreads_the_groups_over_five_hosts() -> None:
    listing = inventory(ROOT / "inventories" / "onprem_example")
    assert group_hosts(listing, "tradehub_database") == {"db01"}
    assert group_hosts(listing, "tradehub_event_bus") == {"bus01"}
    assert group_hosts(listing, "tradehub_hubs") == {"hub01", "hub02"}
    assert group_hosts(listing, "tradehub_gateway") == {"gw01"}

    hostvars = listing["_meta"]["hostvars"]
    assert hostvars["hub01"]["hub_names"] == [
        "sourcing",
        "content",
        "contacts",
        "campaigns",
    ]
    assert hostvars["hub02"]["hub_names"] == ["demand", "shipping", "services"]
    for name in ["db01", "bus01", "gw01"]:
        assert "hub_names" not in hostvars[name], name

    for name, host in hostvars.items():
        assert host["ansible_host"].startswith("10.20.0."), name
        assert host["ansible_user"], name
        assert host["ansible_become"] is True, name
        assert host["tradehub_hubs"] == ALL_HUBS, name
        assert host["tradehub_customer_id"] == "acme-trading", name

    # Every licensed hub runs on exactly one host.
    placed = hostvars["hub01"]["hub_names"] + hostvars["hub02"]["hub_names"]
    assert sorted(placed) == sorted(ALL_HUBS)


def run_site(tmp_path: Path, **settings: Any) -> subprocess.CompletedProcess[str]:
    """Run site.yml on a throw-away inventory with localhost in every group.

    Only the first play may run: it gathers facts and checks the settings, so a
    failure there leaves this machine as it was.
    """
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(BIN / "python"),
        # A safety net: should the first play ever let bad input through, the next
        # play's first privileged task fails here instead of installing anything.
        "ansible_become_exe": "/bin/false",
    }
    variables = {
        "tradehub_customer_id": "acme-trading",
        "tradehub_customer_name": "ACME Trading GmbH",
        "tradehub_domain": "acme-trading.example",
        "tradehub_hubs": list(ALL_HUBS),
        "hub_wheelhouse": str(
            tmp_path / "tradehub-reference-hub-1.0.0-wheelhouse.tar.gz"
        ),
        "tradehub_secrets_dir": str(tmp_path / "secrets"),
        **settings,
    }
    hosts = {
        "all": {
            "vars": variables,
            "children": {group: {"hosts": {"localhost": host}} for group in GROUPS},
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(tmp_path / "hosts.yml"),
            str(ROOT / "playbooks" / "site.yml"),
        ],
        capture_output=True,
        text=True,
        env=ansible_env(
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1"
        ),
        cwd=ROOT,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    ("settings", "variable", "bad_value"),
    [
        pytest.param(
            {"tradehub_hubs": ["sourcing", "warehouse"]},
            "tradehub_hubs",
            "warehouse",
            id="unknown-hub",
        ),
        pytest.param(
            {"tradehub_domain": "Acme Trading"},
            "tradehub_domain",
            "Acme Trading",
            id="invalid-domain",
        ),
    ],
)
def test_site_stops_in_its_first_play_naming_the_variable(
    tmp_path: Path, settings: dict[str, Any], variable: str, bad_value: str
) -> None:
    completed = run_site(tmp_path, **settings)
    assert completed.returncode != 0, completed.stdout

    output = json.loads(completed.stdout)
    assert [play["play"]["name"] for play in output["plays"]] == [FIRST_PLAY]
    assert "Install PostgreSQL" not in completed.stdout + completed.stderr

    failures = [
        result["msg"]
        for task in output["plays"][0]["tasks"]
        for result in task["hosts"].values()
        if result.get("failed")
    ]
    assert len(failures) == 1, failures
    assert variable in failures[0]
    assert bad_value in failures[0]

    stats = output["stats"]["localhost"]
    assert stats["failures"] == 1
    assert stats["changed"] == 0
    assert not (tmp_path / "secrets").exists()

"""tamyla.tradehub.hub_license and hub_license_info, run by ansible-playbook.

The host is this machine: a configuration directory in a temporary folder laid out as
the hub role lays out /etc/tradehub, and the hubs' real system users (created once,
as the hub role creates them). Reloading systemd units is left to the Molecule
scenario ``license``, which runs real hubs.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.lab import CUSTOMER_ID, LicenseSigner
from tests.support.licenses import BAD_LICENSES, DEPLOYMENT, as_bytes
from tests.support.playbook import run_playbook
from tests.unit.plugins.module_utils.test_license import REASONS

HUBS = ["contacts", "content"]


@pytest.fixture(scope="module")
def hub_users() -> None:
    """The hubs' system users, as the hub role creates them."""
    if os.geteuid() != 0:
        pytest.fail(
            "these tests install files owned by the hubs' users: run them as root"
        )
    for hub in HUBS:
        try:
            pwd.getpwnam(f"tradehub-{hub}")
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    f"tradehub-{hub}",
                ],
                check=True,
            )


@pytest.fixture
def config_dir(tmp_path: Path, signer: LicenseSigner, hub_users: None) -> Path:
    """/etc/tradehub of a host running two hubs, with the vendor's trusted key."""
    root = tmp_path / "etc-tradehub"
    shutil.copytree(signer.keys_dir, root / "trusted-keys")
    for hub in HUBS:
        (root / hub).mkdir(parents=True)
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and directory under *root*: content, owner and mode."""
    entries = {}
    for path in sorted(root.rglob("*")):
        status = path.stat()
        content = path.read_bytes() if path.is_file() else None
        entries[str(path.relative_to(root))] = (content, status.st_uid, status.st_mode)
    return entries


def license_task(config_dir: Path, raw: bytes | None, **args) -> dict:
    params = {
        "hubs": HUBS,
        "customer_id": CUSTOMER_ID,
        "deployment_id": DEPLOYMENT,
        "config_dir": str(config_dir),
        "reload": False,
        **args,
    }
    if raw is not None:
        params["content"] = raw.decode("utf-8", errors="replace")
    return {"tamyla.tradehub.hub_license": params, "ignore_errors": True}


def results(tasks: list[dict]) -> list[dict]:
    return [task["hosts"]["localhost"] for task in tasks]


def test_activate_is_idempotent_and_owned_by_each_hub(
    config_dir: Path, signer: LicenseSigner
):
    raw = as_bytes(signer.document(signer.payload(license_id="lic-first")))

    first, second = results(run_playbook([license_task(config_dir, raw)] * 2))

    assert first.get("failed") is not True, first
    assert first["changed"] is True
    assert first["changed_hubs"] == HUBS
    assert first["license"]["license_id"] == "lic-first"
    assert first["license"]["status"] == "valid"
    assert second["changed"] is False
    assert second["changed_hubs"] == []
    for hub in HUBS:
        installed = config_dir / hub / "license.json"
        assert installed.read_bytes() == raw
        status = installed.stat()
        assert status.st_uid == pwd.getpwnam(f"tradehub-{hub}").pw_uid
        assert status.st_mode & 0o777 == 0o400
    assert "signature" not in json.dumps(first["license"])


def test_check_mode_and_diff_show_the_change_without_writing(
    config_dir: Path, signer: LicenseSigner
):
    old = as_bytes(signer.document(signer.payload(license_id="lic-old")))
    new = as_bytes(signer.document(signer.payload(license_id="lic-new")))
    run_playbook([license_task(config_dir, old)])
    before = snapshot(config_dir)

    (checked,) = results(
        run_playbook([license_task(config_dir, new)], "--check", "--diff")
    )

    assert checked["changed"] is True
    assert snapshot(config_dir) == before
    assert [d["before_header"] for d in checked["diff"]] == [
        str(config_dir / h / "license.json") for h in HUBS
    ]
    assert "license_id: lic-old" in checked["diff"][0]["before"]
    assert "license_id: lic-new" in checked["diff"][0]["after"]
    assert "expires_at: " in checked["diff"][0]["after"]
    assert "signature" not in json.dumps(checked["diff"])


def test_every_bad_license_is_refused_and_the_host_is_left_as_it_was(
    config_dir: Path, signer: LicenseSigner
):
    run_playbook([license_task(config_dir, as_bytes(signer.document()))])
    before = snapshot(config_dir)
    names = sorted(BAD_LICENSES)

    refused = results(
        run_playbook(
            [
                license_task(config_dir, as_bytes(BAD_LICENSES[name](signer)))
                for name in names
            ]
        )
    )

    assert snapshot(config_dir) == before
    for name, result in zip(names, refused, strict=True):
        assert result["failed"] is True, (name, result)
        assert result["changed"] is False
        assert result["msg"].startswith("license refused: "), result["msg"]
        assert REASONS[name] in result["msg"], (name, result["msg"])


def test_a_hub_the_host_does_not_run_is_refused_before_any_change(
    config_dir: Path, signer: LicenseSigner
):
    before = snapshot(config_dir)

    (result,) = results(
        run_playbook(
            [
                license_task(
                    config_dir, as_bytes(signer.document()), hubs=["content", "demand"]
                )
            ]
        )
    )

    assert result["failed"] is True
    assert "hub demand is not installed on this host" in result["msg"]
    assert snapshot(config_dir) == before


def test_absent_removes_the_licenses_once(config_dir: Path, signer: LicenseSigner):
    run_playbook([license_task(config_dir, as_bytes(signer.document()))])

    first, second = results(
        run_playbook([license_task(config_dir, None, state="absent")] * 2)
    )

    assert first["changed"] is True and first["changed_hubs"] == HUBS
    assert second["changed"] is False
    assert not any((config_dir / hub / "license.json").exists() for hub in HUBS)


def test_info_reports_each_hub_license(config_dir: Path, signer: LicenseSigner):
    run_playbook(
        [
            license_task(
                config_dir,
                as_bytes(signer.document(signer.payload(license_id="lic-info"))),
            )
        ]
    )
    (config_dir / "contacts" / "license.json").unlink()
    (config_dir / "campaigns").mkdir()
    (config_dir / "campaigns" / "license.json").write_bytes(
        as_bytes(BAD_LICENSES["another-customer"](signer))
    )

    (info,) = results(
        run_playbook(
            [
                {
                    "tamyla.tradehub.hub_license_info": {
                        "config_dir": str(config_dir),
                        "customer_id": CUSTOMER_ID,
                        "deployment_id": DEPLOYMENT,
                    }
                }
            ],
            "--check",
        )
    )

    licenses = info["licenses"]
    assert sorted(licenses) == ["campaigns", "contacts", "content"]
    assert licenses["content"]["active"] is True
    assert licenses["content"]["status"] == "valid"
    assert licenses["content"]["license_id"] == "lic-info"
    assert licenses["content"]["edition"] == "standard"
    assert licenses["content"]["days_left"] in (364, 365)
    assert licenses["contacts"]["status"] == "missing"
    assert licenses["contacts"]["active"] is False
    assert licenses["campaigns"]["status"] == "refused"
    assert "is for customer 'cust-0099'" in licenses["campaigns"]["reason"]
    assert info["changed"] is False


def test_info_checks_the_deployment_only_when_given(
    config_dir: Path, signer: LicenseSigner
):
    (config_dir / "content" / "license.json").write_bytes(
        as_bytes(BAD_LICENSES["another-deployment"](signer))
    )
    info = {"config_dir": str(config_dir), "hubs": ["content"]}

    unchecked, checked = results(
        run_playbook(
            [
                {"tamyla.tradehub.hub_license_info": info},
                {
                    "tamyla.tradehub.hub_license_info": {
                        **info,
                        "deployment_id": DEPLOYMENT,
                    }
                },
            ]
        )
    )

    assert unchecked["licenses"]["content"]["active"] is True
    assert unchecked["licenses"]["content"]["deployment_id"] == "dep-us-2"
    assert checked["licenses"]["content"]["active"] is False
    assert "bound to deployment 'dep-us-2'" in checked["licenses"]["content"]["reason"]

"""tamyla.tradehub.data_migration and playbooks/migrate.yml, run by ansible-playbook
against the session's real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.bundles import ENTITIES, corrupt_copy, write_bundle
from tests.support.migration import HubsDatabase
from tests.support.playbook import ROOT, run_playbook

ROWS = 40


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("bundle") / "export", rows=ROWS)


def task(database: HubsDatabase, bundle: Path, progress: Path, **extra) -> dict:
    info = database.conninfo
    params = {
        "bundle": str(bundle),
        "login_host": info["host"],
        "login_port": info["port"],
        "login_user": info["user"],
        "login_password": info["password"],
        "login_db": info["dbname"],
        "progress_file": str(progress),
        **extra.pop("params", {}),
    }
    return {"tamyla.tradehub.data_migration": params, "ignore_errors": True, **extra}


def results(tasks: list[dict]) -> list[dict]:
    return [t["hosts"]["localhost"] for t in tasks]


def test_check_then_import_then_nothing_to_do(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    progress = tmp_path / "progress.json"
    checked, imported, again = results(
        run_playbook(
            [
                {**task(database, bundle, progress), "check_mode": True},
                task(database, bundle, progress),
                task(database, bundle, progress),
            ]
        )
    )

    assert checked["changed"] is True
    assert checked["totals"]["new"] == ROWS * len(ENTITIES)
    assert imported.get("failed") is not True, imported
    assert imported["changed"] is True
    assert imported["totals"] == {
        "rows": ROWS * len(ENTITIES),
        "new": ROWS * len(ENTITIES),
        "changed": 0,
        "unchanged": 0,
    }
    assert again["changed"] is False
    assert again["totals"]["unchanged"] == ROWS * len(ENTITIES)
    assert len(database.saas_tables()) == len(ENTITIES)
    assert database.server.password not in json.dumps([checked, imported, again])
    assert database.server.password not in progress.read_text()


def test_a_bad_row_fails_naming_entity_line_and_column(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    broken, _, _ = corrupt_copy(bundle, tmp_path / "broken", "wrong-type")

    (result,) = results(run_playbook([task(database, broken, tmp_path / "p.json")]))

    assert result["failed"] is True
    assert result["changed"] is False
    assert "bundle refused, nothing was merged" in result["msg"]
    assert "entity orders, line 6, column total: invalid input syntax" in result["msg"]
    assert result["problems"] == [
        {
            "entity": "orders",
            "line": 6,
            "column": "total",
            "message": 'invalid input syntax for type numeric: "twelve"',
        }
    ]
    assert database.saas_tables() == []


def test_unknown_hub_and_bad_connection_are_refused(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    broken, _, _ = corrupt_copy(bundle, tmp_path / "broken", "unknown-hub")
    wrong_password = task(database, bundle, tmp_path / "p.json")
    wrong_password["tamyla.tradehub.data_migration"]["login_password"] = "not-it"

    hub, login = results(
        run_playbook([task(database, broken, tmp_path / "p.json"), wrong_password])
    )

    assert hub["failed"] is True
    assert hub["msg"].startswith("bundle refused, nothing was written: entity orders")
    assert "hub 'billing' is unknown" in hub["msg"]
    assert login["failed"] is True
    assert "cannot connect to PostgreSQL at 127.0.0.1" in login["msg"]
    assert "not-it" not in login["msg"]
    assert database.saas_tables() == []


def test_async_run_writes_its_progress(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    progress = tmp_path / "progress.json"

    (result,) = results(
        run_playbook([task(database, bundle, progress, **{"async": 120, "poll": 1})])
    )

    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert result["progress_file"] == str(progress)
    doc = json.loads(progress.read_text())
    assert doc["state"] == "done"
    assert doc["rows_total"] == doc["rows_merged"] == ROWS * len(ENTITIES)
    assert {e["state"] for e in doc["entities"].values()} == {"merged"}


def run_migrate_playbook(inventory: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(inventory),
            str(ROOT / "playbooks" / "migrate.yml"),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def migrate_task(completed: subprocess.CompletedProcess) -> dict:
    tasks = json.loads(completed.stdout)["plays"][0]["tasks"]
    return next(t for t in tasks if t["task"]["name"] == "Import the bundle")["hosts"][
        "localhost"
    ]


def test_migrate_playbook_imports_into_an_external_database(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    info = database.conninfo
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {"localhost": {"ansible_connection": "local"}},
                    # An all-in-one deployment, as the sandbox inventory has it.
                    "children": {
                        group: {"hosts": {"localhost": None}}
                        for group in (
                            "tradehub_database",
                            "tradehub_event_bus",
                            "tradehub_hubs",
                            "tradehub_gateway",
                        )
                    },
                }
            }
        )
    )
    (inventory / "group_vars" / "all.yml").write_text(
        yaml.safe_dump(
            {
                "tradehub_customer_id": "acme-trading",
                "tradehub_domain": "acme-trading.example",
                "tradehub_hubs": sorted({e.hub for e in ENTITIES}),
                "tradehub_private_address": "127.0.0.1",
                "tradehub_database_host": info["host"],
                "tradehub_database_port": info["port"],
                "tradehub_database_name": info["dbname"],
                "postgresql_external": True,
                "postgresql_admin_user": info["user"],
                "postgresql_admin_password": info["password"],
                "postgresql_admin_sslmode": "disable",
            }
        )
    )
    progress = tmp_path / "progress.json"
    args = (
        "-e",
        f"migrate_bundle={bundle}",
        "-e",
        f"migrate_progress_file={progress}",
        "-e",
        "migrate_poll=1",
    )

    checked = run_migrate_playbook(inventory, *args, "--check")
    first = run_migrate_playbook(inventory, *args)
    second = run_migrate_playbook(inventory, *args)
    unset = run_migrate_playbook(inventory)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert migrate_task(checked)["changed"] is True
    assert first.returncode == 0, first.stdout + first.stderr
    assert migrate_task(first)["changed"] is True
    assert migrate_task(first)["totals"]["new"] == ROWS * len(ENTITIES)
    assert second.returncode == 0, second.stdout + second.stderr
    assert migrate_task(second)["changed"] is False
    assert "transactions           demand     already_imported" in second.stdout
    assert len(database.saas_tables()) == len(ENTITIES)
    assert unset.returncode != 0
    assert "Set migrate_bundle to the path of the export bundle" in unset.stdout


def test_a_host_without_psycopg_gets_a_clear_error(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    bare = tmp_path / "bare-python"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True
    )
    missing = task(database, bundle, tmp_path / "p.json")
    missing["vars"] = {"ansible_python_interpreter": str(bare / "bin" / "python")}

    (result,) = results(run_playbook([missing]))

    assert result["failed"] is True
    assert "psycopg (version 3)" in result["msg"]
    assert "python3-psycopg" in result["msg"]
    assert database.saas_tables() == []

"""The data migration importer against a real PostgreSQL: clean import, idempotence,
newer exports, check mode, every corrupt bundle, and a run killed in the middle."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from ansible_collections.tamyla.tradehub.plugins.module_utils.data_migration import (
    run_import,
)
from ansible_collections.tamyla.tradehub.plugins.module_utils.migration_bundle import (
    COLUMN_TYPES,
    BundleError,
    Column,
    value_problem,
)

from tests.support.bundles import (
    CORRUPTIONS,
    ENTITIES,
    corrupt_copy,
    fingerprint,
    read_manifest,
    read_rows,
    write_bundle,
)
from tests.support.migration import HubsDatabase
from tests.support.playbook import ROOT
from tests.support.services import PostgresServer

ROWS = 300


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of the nine entities, ROWS rows each."""
    return write_bundle(tmp_path_factory.mktemp("bundle") / "export", rows=ROWS)


def migrate(database: HubsDatabase, bundle: Path, tmp_path: Path, **options) -> dict:
    return run_import(
        bundle=str(bundle),
        conninfo=database.conninfo,
        progress_file=str(tmp_path / "progress.json"),
        **options,
    )


def assert_tables_hold(database: HubsDatabase, bundle: Path) -> None:
    """Each entity's table holds exactly the rows of its file: count and checksum."""
    for entity in read_manifest(bundle)["entities"]:
        expected = read_rows(bundle, entity["name"])
        found = database.table_rows(bundle, entity["name"])
        assert len(found) == entity["rows"] == len(expected), entity["name"]
        assert fingerprint(found) == fingerprint(expected), entity["name"]


def test_clean_import_holds_every_row_of_the_bundle(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    result = migrate(database, bundle, tmp_path)

    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True
    assert result["problems"] == []
    assert result["totals"] == {
        "rows": ROWS * len(ENTITIES),
        "new": ROWS * len(ENTITIES),
        "changed": 0,
        "unchanged": 0,
    }
    for name, entity in result["entities"].items():
        assert entity["status"] == "imported", name
        assert entity["rows"] == entity["new"] == ROWS
        assert entity["rows_per_second"] > 0
    assert result["entities"]["transactions"]["table"] == "demand.saas_transactions"
    assert_tables_hold(database, bundle)
    assert sorted(row[0] for row in database.ledger()) == sorted(
        e.name for e in ENTITIES
    )
    with database.connect() as conn:
        owners = dict(
            conn.execute(
                "SELECT schemaname || '.' || tablename, tableowner FROM pg_tables"
                " WHERE tablename LIKE 'saas%'"
            ).fetchall()
        )
        key = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'demand.saas_demand_forecasts'::regclass"
            " AND contype = 'p'"
        ).fetchone()[0]
        staging = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'tradehub_migration'"
            " AND tablename <> 'ledger'"
        ).fetchone()[0]
    assert owners["demand.saas_transactions"] == "demand"
    assert owners["sourcing.saas_compliance_documents"] == "sourcing"
    assert key == "PRIMARY KEY (sku, week_start)"
    assert staging == 0
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["state"] == "done"
    assert progress["percent"] == 100.0
    assert progress["rows_merged"] == ROWS * len(ENTITIES)


def test_the_same_bundle_again_changes_nothing(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    migrate(database, bundle, tmp_path)
    with database.connect() as conn:
        versions = conn.execute(
            "SELECT order_id, xmin::text FROM demand.saas_orders ORDER BY 1"
        ).fetchall()

    again = migrate(database, bundle, tmp_path)
    forced = migrate(database, bundle, tmp_path, force=True)

    assert again["changed"] is False
    assert {e["status"] for e in again["entities"].values()} == {"already_imported"}
    assert forced["changed"] is False
    for entity in forced["entities"].values():
        assert entity["status"] == "imported"
        assert (entity["new"], entity["changed"], entity["unchanged"]) == (0, 0, ROWS)
    with database.connect() as conn:
        # Merged again, but not one row was rewritten.
        assert (
            conn.execute(
                "SELECT order_id, xmin::text FROM demand.saas_orders ORDER BY 1"
            ).fetchall()
            == versions
        )
    assert_tables_hold(database, bundle)


def test_a_newer_export_updates_what_changed(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    newer = write_bundle(tmp_path / "newer", rows=ROWS, revision=1)
    migrate(database, bundle, tmp_path)

    preview = migrate(database, newer, tmp_path, check_mode=True)
    result = migrate(database, newer, tmp_path)

    assert result["changed"] is True
    for entity in ENTITIES:
        old, new = read_rows(bundle, entity.name), read_rows(newer, entity.name)
        added = len(new.keys() - old.keys())
        changed = sum(1 for k in old if new[k] != old[k])
        counts = result["entities"][entity.name]
        assert (counts["new"], counts["changed"]) == (added, changed), entity.name
        assert counts["unchanged"] == len(new) - added - changed
        assert added > 0
        if entity.mutate is not None:
            assert changed > 0, entity.name
        planned = preview["entities"][entity.name]
        assert planned["status"] == "would_import"
        assert (planned["new"], planned["changed"], planned["unchanged"]) == (
            counts["new"],
            counts["changed"],
            counts["unchanged"],
        )
    assert_tables_hold(database, newer)

    older = migrate(database, bundle, tmp_path)
    assert older["changed"] is False
    assert older["entities"]["orders"]["status"] == "already_imported"


def test_an_older_export_than_the_last_one_is_refused(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    older = write_bundle(tmp_path / "older", rows=ROWS - 10)  # same tenant and time
    newer = write_bundle(tmp_path / "newer", rows=ROWS, revision=2)
    migrate(database, newer, tmp_path)
    before = database.snapshot()

    with pytest.raises(BundleError, match="newer than this one"):
        migrate(database, older, tmp_path)

    assert database.snapshot() == before


def test_a_tar_gz_bundle_is_read_without_extracting(
    database: HubsDatabase, tmp_path: Path
):
    archive = write_bundle(tmp_path / "export", rows=50, tar=True)
    assert archive.name == "export.tar.gz"

    result = migrate(database, archive, tmp_path)

    assert result["totals"]["new"] == 50 * len(ENTITIES)
    assert_tables_hold(database, tmp_path / "export")


def test_check_mode_reports_without_writing(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    before = database.snapshot()

    result = migrate(database, bundle, tmp_path, check_mode=True)

    assert database.snapshot() == before
    assert result["changed"] is True
    assert result["totals"]["new"] == ROWS * len(ENTITIES)
    assert {e["status"] for e in result["entities"].values()} == {"would_import"}


def test_check_mode_reports_every_problem_without_writing(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    broken, _, _ = corrupt_copy(bundle, tmp_path / "broken", "wrong-type")

    def edit(name: str, change) -> None:
        manifest = read_manifest(broken)
        entity = next(e for e in manifest["entities"] if e["name"] == name)
        path = broken / entity["file"]
        lines = path.read_text().splitlines(keepends=True)
        change(lines)
        path.write_text("".join(lines))
        entity["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        (broken / "manifest.json").write_text(json.dumps(manifest))

    def bad_ticket(lines: list[str]) -> None:
        row = json.loads(lines[2])
        row["ticket_id"], row["priority"] = "three", None
        lines[2] = json.dumps(row) + "\n"

    def more_bad_orders(lines: list[str]) -> None:
        fields = lines[8].split(",")
        fields[3] = "1.2.3"
        lines[8] = ",".join(fields)
        lines[10] = lines[10].replace(",", ",,", 1)

    edit("tickets", bad_ticket)
    edit("orders", more_bad_orders)
    before = database.snapshot()

    result = migrate(database, broken, tmp_path, check_mode=True)

    assert database.snapshot() == before
    assert result["failed"] is True
    found = {(p["entity"], p["line"], p["column"]) for p in result["problems"]}
    assert found == {
        ("orders", 6, "total"),  # where PostgreSQL's COPY stopped
        ("orders", 9, "total"),  # found by the second pass
        ("orders", 11, None),
        ("tickets", 3, "ticket_id"),
        ("tickets", 3, "priority"),
    }
    messages = {(p["line"], p["message"]) for p in result["problems"]}
    assert (9, 'invalid input syntax for type numeric: "1.2.3"') in messages
    assert (11, "7 fields, the header names 6") in messages
    assert result["entities"]["orders"]["status"] == "refused"
    assert result["entities"]["products"]["status"] == "would_import"
    assert result["entities"]["products"]["new"] == ROWS


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupt_bundle_is_refused_with_nothing_merged(
    database: HubsDatabase, bundle: Path, tmp_path: Path, corruption: str
):
    broken, entity, words = corrupt_copy(bundle, tmp_path / "broken", corruption)
    before = database.snapshot()

    try:
        result = migrate(database, broken, tmp_path)
    except BundleError as exc:  # the manifest itself is refused
        message, problems = str(exc), [p.as_dict() for p in exc.problems]
    else:
        assert progress_state(tmp_path) == "failed"
        assert result["failed"] is True
        assert result["changed"] is False
        assert result["msg"].startswith("bundle refused, nothing was merged")
        message, problems = result["msg"], result["problems"]
        assert result["entities"][entity]["status"] == "refused"
        assert result["entities"]["products"]["status"] == "not_merged"

    assert words in message, message
    assert {p["entity"] for p in problems} == {entity}, problems
    assert database.saas_tables() == []
    assert database.ledger() == []
    after = database.snapshot()
    # Only the migration's own bookkeeping may appear: its schema and empty ledger.
    assert [r for r in after["relations"] if r[0] != "tradehub_migration"] == before[
        "relations"
    ]


def progress_state(tmp_path: Path) -> str:
    return json.loads((tmp_path / "progress.json").read_text())["state"]


def test_skip_entity_merges_the_good_entities_only(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    broken, _, _ = corrupt_copy(bundle, tmp_path / "broken", "duplicate-primary-key")

    result = migrate(database, broken, tmp_path, on_error="skip_entity")

    assert result["failed"] is True
    assert result["changed"] is True
    assert "refused entities not merged (orders)" in result["msg"]
    assert "demand.saas_orders" not in database.saas_tables()
    assert len(database.saas_tables()) == len(ENTITIES) - 1
    assert result["entities"]["orders"]["status"] == "refused"
    assert result["entities"]["products"]["status"] == "imported"


def test_an_entity_of_a_hub_without_schema_is_refused_before_any_write(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    with database.connect() as conn:
        conn.execute("DROP SCHEMA shipping")
    before = database.snapshot()

    with pytest.raises(BundleError, match="hub 'shipping' has no schema"):
        migrate(database, bundle, tmp_path)
    with pytest.raises(BundleError, match="not installed in this deployment"):
        migrate(database, bundle, tmp_path, hubs=["content", "demand"])

    assert database.snapshot() == before


def test_a_table_whose_columns_differ_is_refused_before_any_write(
    database: HubsDatabase, bundle: Path, tmp_path: Path
):
    with database.connect() as conn:
        conn.execute(
            "CREATE TABLE demand.saas_orders (order_id text PRIMARY KEY, total text)"
        )
    before = database.snapshot()

    with pytest.raises(BundleError) as refused:
        migrate(database, bundle, tmp_path)

    text = str(refused.value)
    assert (
        "entity orders, column total: table demand.saas_orders has it as text" in text
    )
    assert (
        "entity orders, column status: table demand.saas_orders has no such column"
        in text
    )
    assert database.snapshot() == before


KILL_SCRIPT = """
import json, sys
from ansible_collections.tamyla.tradehub.plugins.module_utils.data_migration import run_import
run_import(bundle=sys.argv[1], conninfo=json.loads(sys.argv[2]), progress_file=sys.argv[3])
"""


def killed_run(database: HubsDatabase, bundle: Path, progress: Path, ready) -> dict:
    """Run an import in a child process, SIGKILL it once ``ready(progress document)``;
    return the last progress document it wrote."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'collections'}")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILL_SCRIPT,
            str(bundle),
            json.dumps(database.conninfo),
            str(progress),
        ],
        env=env,
    )
    deadline = time.monotonic() + 60
    doc: dict = {}
    try:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                pytest.fail(f"the import ended ({child.returncode}) before the kill")
            try:
                doc = json.loads(progress.read_text())
            except (OSError, ValueError):
                doc = {}
            if doc and ready(doc):
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        else:
            pytest.fail(f"the import never reached the kill point: {doc}")
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    return doc


def merging_after_first(doc: dict) -> bool:
    return doc["state"] == "merging" and doc["entities"]["orders"]["state"] == "merged"


def verifying_transactions(doc: dict) -> bool:
    return doc["entities"]["transactions"]["state"] == "verifying"


@pytest.mark.parametrize(
    "ready", [verifying_transactions, merging_after_first], ids=["verifying", "merging"]
)
def test_a_run_killed_in_the_middle_ends_exact_when_run_again(
    database: HubsDatabase, tmp_path: Path, ready
):
    chosen = ["orders", "transactions", "shipments"]
    first = write_bundle(tmp_path / "first", rows=1000, entities=chosen)
    # A newer export: the tables exist, so every row goes through the merge.
    big = write_bundle(
        tmp_path / "big",
        rows=30_000,
        revision=1,
        sizes={"transactions": 200_000},
        entities=chosen,
    )
    migrate(database, first, tmp_path)
    progress = tmp_path / "killed.json"

    killed_run(database, big, progress, ready)

    merged = [row[0] for row in database.ledger()[len(chosen) :]]
    assert len(merged) < len(chosen), "the run was not killed in the middle"
    if ready is merging_after_first:
        assert merged[:1] == ["orders"]
    result = migrate(database, big, tmp_path)

    assert "failed" not in result, result.get("msg")
    assert sorted(
        name for name, e in result["entities"].items() if e["status"] == "imported"
    ) == sorted(set(chosen) - set(merged))
    assert_tables_hold(database, big)
    assert len(database.ledger()) == 2 * len(chosen)
    with database.connect() as conn:
        leftovers = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'tradehub_migration'"
            " AND tablename <> 'ledger'"
        ).fetchone()[0]
    assert leftovers == 0


def test_a_login_without_the_rights_it_needs_is_refused_before_any_write(
    database: HubsDatabase, tmp_path: Path
):
    small = write_bundle(tmp_path / "small", rows=5, entities=["products", "orders"])
    hub_login = {**database.conninfo, "user": "content", "password": "content-password"}
    before = database.snapshot()

    with pytest.raises(BundleError) as refused:
        run_import(
            bundle=str(small),
            conninfo=hub_login,
            progress_file=str(tmp_path / "progress.json"),
        )

    assert [str(p) for p in refused.value.problems] == [
        "role 'content' cannot create tables in schema 'demand': connect as the "
        "database's owner or a superuser (login_user; postgresql_admin_user in the "
        "inventory)",
        "role 'content' cannot give tables to role 'demand', the owner of schema "
        "'demand': connect as the database's owner or a superuser (login_user; "
        "postgresql_admin_user in the inventory)",
        "role 'content' cannot create the schema tradehub_migration for the ledger: "
        "connect as the database's owner or a superuser (login_user; "
        "postgresql_admin_user in the inventory)",
    ]
    assert database.snapshot() == before


SAMPLES = {
    "integer": [
        "42",
        " -7 ",
        "+0",
        "9223372036854775807",
        "9223372036854775808",
        "4.0",
        "1e3",
        "abc",
        "0x1F",
        "1_000",
        "",
    ],
    "decimal": [
        "12.50",
        "-.5",
        "5.",
        "1e-3",
        "NaN",
        "-Infinity",
        "1.2.3",
        "12,5",
        "€3",
        " 7 ",
        "",
    ],
    "boolean": [
        "true",
        "FALSE",
        "t",
        "yes",
        "n",
        "on",
        "off",
        "1",
        "0",
        "tru",
        "maybe",
        "2",
        "",
    ],
    "uuid": [
        "7d164b60-fca2-4811-8b7b-1c7d89219bf7",
        "{7d164b60fca248118b7b1c7d89219bf7}",
        "7D164B60-FCA2-4811-8B7B-1C7D89219BF7",
        "7d164b60",
        "not-a-uuid",
        "",
    ],
}


def test_the_second_pass_reports_only_values_postgresql_refuses(
    postgres: PostgresServer,
):
    flagged_any = set()
    with postgres.connect() as conn:
        for kind, values in SAMPLES.items():
            for value in values:
                column = Column("c", kind, nullable=False)
                flagged = value_problem(value, column) is not None
                try:
                    with conn.transaction():
                        accepted = conn.execute(
                            f"SELECT NULLIF(%s, '')::{COLUMN_TYPES[kind]} IS NOT NULL",
                            [value],
                        ).fetchone()[0]
                except psycopg.DataError:
                    accepted = False
                assert not (flagged and accepted), (kind, value)
                if flagged:
                    flagged_any.add((kind, value))
    assert {
        ("integer", "abc"),
        ("integer", "4.0"),
        ("integer", "9223372036854775808"),
        ("decimal", "1.2.3"),
        ("boolean", "maybe"),
        ("uuid", "not-a-uuid"),
        ("integer", ""),
    } <= flagged_any

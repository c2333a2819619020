"""``tradehub-hub migrate`` (contract §6): idempotent, serialised, never a downgrade."""

from __future__ import annotations

import json
import subprocess
import time

import psycopg
from tradehub_reference_hub.migrations import migration_lock_key

from tests.support.hub import clean_environment, hub_command, run_hub_command
from tests.support.lab import Lab

MIGRATIONS = "tradehub_schema_migrations"


def schema_state(conn: psycopg.Connection, schema: str) -> dict[str, object]:
    """What a migration could change: tables, their storage and the version rows."""
    tables = conn.execute(
        "SELECT c.relname, c.relfilenode FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname",
        [schema],
    ).fetchall()
    versions = conn.execute(
        psycopg.sql.SQL("SELECT version, name, applied_at FROM {} ORDER BY 1").format(
            psycopg.sql.Identifier(schema, MIGRATIONS)
        )
    ).fetchall()
    return {"tables": tables, "versions": versions}


def test_migrate_twice_changes_only_the_first_time(lab: Lab) -> None:
    db = lab.database("content")
    env = lab.env(db)

    first = lab.migrate(env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.count("\n") == 1, "stdout must be exactly one JSON line"
    assert json.loads(first.stdout) == {
        "hub": "content",
        "schema": "content",
        "from_version": 0,
        "to_version": 1,
        "applied": [1],
        "changed": True,
    }
    with db.admin() as conn:
        conn.execute(
            "INSERT INTO content.products (id, sku, name, price_cents, currency)"
            " VALUES (gen_random_uuid(), 'KEEP-1', 'Kept', 100, 'EUR')"
        )
        before = schema_state(conn, "content")

    second = lab.migrate(env)

    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == {
        "hub": "content",
        "schema": "content",
        "from_version": 1,
        "to_version": 1,
        "applied": [],
        "changed": False,
    }
    with db.admin() as conn:
        assert schema_state(conn, "content") == before
    assert db.count_rows("products") == 1


def test_migrate_uses_the_configured_schema(lab: Lab) -> None:
    db = lab.database("demand", schema="demand_eu")
    env = lab.env(db)

    result = lab.migrated(env)

    assert result["schema"] == "demand_eu"
    assert result["changed"] is True
    assert db.count_rows("orders") == 0
    with db.admin() as conn:
        public = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert public == (0,), "migrate must not create anything outside its schema"


def test_concurrent_migrations_apply_each_version_once(lab: Lab) -> None:
    db = lab.database("shipping")
    env = lab.env(db)
    key = migration_lock_key("shipping")
    with db.admin() as holder:
        # Hold the lock migrate takes, so that both runs are certainly concurrent.
        holder.execute("SELECT pg_advisory_lock(%s)", [key])
        runs = [
            subprocess.Popen(
                [hub_command(), "migrate"],
                env=clean_environment(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 20
        while True:
            waiting = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND NOT granted AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())"
            ).fetchone()
            if waiting == (2,):
                break
            assert time.monotonic() < deadline, "both migrate runs should wait"
            assert all(run.poll() is None for run in runs), "a run did not wait"
            time.sleep(0.05)
        holder.execute("SELECT pg_advisory_unlock(%s)", [key])
        outputs = [run.communicate(timeout=30) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    results = sorted(
        (json.loads(out) for out, _ in outputs), key=lambda r: r["changed"]
    )
    assert [r["changed"] for r in results] == [False, True]
    assert [r["applied"] for r in results] == [[], [1]]
    with db.admin() as conn:
        rows = conn.execute(f"SELECT version FROM shipping.{MIGRATIONS}").fetchall()
    assert rows == [(1,)]


def test_a_newer_schema_is_refused_without_change(lab: Lab) -> None:
    db = lab.database("contacts")
    env = lab.env(db)
    lab.migrated(env)
    with db.admin() as conn:
        conn.execute(
            f"INSERT INTO contacts.{MIGRATIONS} (version, name)"
            " VALUES (2, 'from a newer artifact')"
        )
        before = schema_state(conn, "contacts")

    done = lab.migrate(env)

    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert "newer" in result["error"]
    assert "version 2" in result["error"]
    with db.admin() as conn:
        assert schema_state(conn, "contacts") == before


def test_a_missing_schema_fails_with_the_fix(lab: Lab) -> None:
    db = lab.database("services")
    env = lab.env(db, TRADEHUB_DATABASE_SCHEMA="services_missing")

    done = lab.migrate(env)

    assert done.returncode == 1
    assert "services_missing" in json.loads(done.stdout)["error"]
    assert "CREATE SCHEMA" in json.loads(done.stdout)["error"]


def test_an_unreachable_database_fails_without_showing_the_password(lab: Lab) -> None:
    db = lab.database("campaigns")
    password = lab.passwords["campaigns"]
    env = lab.env(
        db, TRADEHUB_DATABASE_URL=f"postgresql://campaigns:{password}@127.0.0.1:1/x"
    )

    done = run_hub_command("migrate", env)

    assert done.returncode == 1
    assert "error" in json.loads(done.stdout)
    assert password not in done.stdout + done.stderr

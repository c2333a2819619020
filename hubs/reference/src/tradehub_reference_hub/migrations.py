"""Schema versions and ``tradehub-hub migrate`` (contract §6).

Migrations are forward-only. Each one runs in its own transaction together with its row
in ``<schema>.tradehub_schema_migrations``, under a session advisory lock so that two
concurrent runs apply each version once. A schema newer than this artifact is refused
without any change, because only a restore can take it back.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from tradehub_reference_hub.config import Config
from tradehub_reference_hub.entities import ENTITIES, EntitySpec, FieldSpec, Kind

MIGRATIONS_TABLE = "tradehub_schema_migrations"
#: How long ``migrate`` waits for a concurrent run to release the lock.
LOCK_WAIT_SECONDS = 300

_SQL_TYPES = {
    Kind.TEXT: "text",
    Kind.INTEGER: "bigint",
    Kind.BOOLEAN: "boolean",
    Kind.DATE: "date",
    Kind.TIMESTAMP: "timestamptz",
}


class MigrationError(Exception):
    """Migration cannot proceed; the message says why and what to do."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[EntitySpec, str], list[sql.Composable]]


def _column(spec: FieldSpec) -> sql.Composable:
    """The column definition of one declared field, with the same limits as the API."""
    col = sql.Identifier(spec.name)
    parts: list[sql.Composable] = [col, sql.SQL(_SQL_TYPES[spec.kind])]
    if not spec.nullable:
        parts.append(sql.SQL("NOT NULL"))
    if spec.default is not None:
        parts.append(sql.SQL("DEFAULT {}").format(sql.Literal(spec.default)))
    checks: list[sql.Composable] = []
    if spec.kind is Kind.TEXT and not spec.choices:
        checks.append(sql.SQL("char_length({}) >= 1").format(col))
        if spec.max_length is not None:
            checks.append(
                sql.SQL("char_length({}) <= {}").format(
                    col, sql.Literal(spec.max_length)
                )
            )
        if spec.pattern is not None:
            checks.append(sql.SQL("{} ~ {}").format(col, sql.Literal(spec.pattern)))
    if spec.choices:
        checks.append(
            sql.SQL("{} IN ({})").format(
                col, sql.SQL(", ").join(sql.Literal(c) for c in spec.choices)
            )
        )
    if spec.minimum is not None:
        checks.append(sql.SQL("{} >= {}").format(col, sql.Literal(spec.minimum)))
    if spec.maximum is not None:
        checks.append(sql.SQL("{} <= {}").format(col, sql.Literal(spec.maximum)))
    if checks:
        parts.append(
            sql.SQL("CHECK ({})").format(sql.SQL(" AND ").join(checks)),
        )
    return sql.SQL(" ").join(parts)


def _create_entity_table(entity: EntitySpec, schema: str) -> list[sql.Composable]:
    columns: list[sql.Composable] = [
        sql.SQL("id uuid PRIMARY KEY"),
        sql.SQL("seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE"),
        sql.SQL("created_at timestamptz NOT NULL DEFAULT now()"),
        *(_column(spec) for spec in entity.fields),
    ]
    return [
        sql.SQL("CREATE TABLE {table} ({columns})").format(
            table=sql.Identifier(schema, entity.plural),
            columns=sql.SQL(", ").join(columns),
        )
    ]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create entity table", _create_entity_table),
)

#: The schema version this artifact needs (``schema_version`` of ``/version``).
SCHEMA_VERSION = MIGRATIONS[-1].version


def migration_lock_key(schema: str) -> int:
    """The advisory lock key ``migrate`` holds: one per schema, stable across releases.

    Operators can see a running migration in ``pg_locks`` (locktype ``advisory``).
    """
    digest = hashlib.sha256(f"tradehub-migrate:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_TABLE_EXISTS = sql.SQL(
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = %s)"
)


def _max_version_query(schema: str) -> sql.Composed:
    return sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(
        sql.Identifier(schema, MIGRATIONS_TABLE)
    )


async def applied_version_async(conn: psycopg.AsyncConnection[Any], schema: str) -> int:
    """The schema's version for the readiness check: 0 when nothing was applied."""
    cur = await conn.execute(_TABLE_EXISTS, [schema, MIGRATIONS_TABLE])
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute(_max_version_query(schema))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def applied_version(conn: psycopg.Connection[Any], schema: str) -> int:
    """The schema's version: the greatest applied version, 0 without the table."""
    row = conn.execute(_TABLE_EXISTS, [schema, MIGRATIONS_TABLE]).fetchone()
    if not row or not row[0]:
        return 0
    row = conn.execute(_max_version_query(schema)).fetchone()
    return int(row[0]) if row else 0


def _acquire_lock(conn: psycopg.Connection[Any], key: int, schema: str) -> None:
    conn.execute(
        sql.SQL("SET lock_timeout = {}").format(
            sql.Literal(f"{LOCK_WAIT_SECONDS * 1000}ms")
        )
    )
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", [key])
    except psycopg.errors.LockNotAvailable:
        raise MigrationError(
            f"another migrate of schema {schema!r} held the advisory lock for more "
            f"than {LOCK_WAIT_SECONDS} s; wait for it to finish and run migrate again"
        ) from None
    conn.execute("SET lock_timeout = 0")


def migrate(config: Config) -> dict[str, Any]:
    """Bring the schema to :data:`SCHEMA_VERSION` and return the result document.

    Raises MigrationError (exit 1) when the schema is missing or newer than this
    artifact, and lets psycopg errors through for the caller to report.
    """
    entity = ENTITIES[config.hub]
    schema = config.database_schema
    result: dict[str, Any] = {"hub": config.hub, "schema": schema}
    with psycopg.connect(
        config.database_url,
        autocommit=True,
        connect_timeout=10,
        options=f"-c search_path={schema} -c TimeZone=UTC",
        application_name=f"tradehub-{config.hub}-migrate",
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", [schema]
        ).fetchone()
        if not exists:
            raise MigrationError(
                f"schema {schema!r} does not exist; create it owned by the hub's role "
                f"(CREATE SCHEMA {schema} AUTHORIZATION <role>) and run migrate again"
            )
        key = migration_lock_key(schema)
        _acquire_lock(conn, key, schema)
        try:
            current = applied_version(conn, schema)
            if current > SCHEMA_VERSION:
                raise MigrationError(
                    f"schema {schema!r} is at version {current}, newer than version "
                    f"{SCHEMA_VERSION} that this artifact needs; nothing was changed. "
                    "Install the newer artifact, or restore the backup taken before "
                    "the upgrade"
                )
            applied: list[int] = []
            for migration in MIGRATIONS:
                if migration.version <= current:
                    continue
                with conn.transaction():
                    conn.execute(
                        sql.SQL(
                            "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY,"
                            " name text NOT NULL, applied_at timestamptz NOT NULL"
                            " DEFAULT now())"
                        ).format(sql.Identifier(schema, MIGRATIONS_TABLE))
                    )
                    for statement in migration.statements(entity, schema):
                        conn.execute(statement)
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO {} (version, name) VALUES (%s, %s)"
                        ).format(sql.Identifier(schema, MIGRATIONS_TABLE)),
                        [migration.version, migration.name],
                    )
                applied.append(migration.version)
        finally:
            # Closing the session would release the lock too; unlocking explicitly
            # keeps it short when a pooler keeps the server session open.
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", [key])
    result.update(
        from_version=current,
        to_version=SCHEMA_VERSION if applied else current,
        applied=applied,
        changed=bool(applied),
    )
    return result

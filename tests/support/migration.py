"""A hubs' database on the session's PostgreSQL, and reading the imported tables back."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from ansible_collections.tamyla.tradehub.plugins.module_utils.catalog import HUBS
from psycopg import sql

from tests.support.bundles import read_manifest
from tests.support.services import PostgresServer

_numbers = itertools.count(1)


class HubsDatabase:
    """A database laid out as the postgresql role lays it out: a login role and a
    schema owned by it per hub."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.name = f"migration_{next(_numbers)}"
        server.create_database(self.name)
        for hub in HUBS:
            server.create_role(hub, f"{hub}-password")
            server.create_schema(self.name, hub, hub)

    @property
    def conninfo(self) -> dict:
        return {
            "host": self.server.host,
            "port": self.server.port,
            "user": self.server.superuser,
            "password": self.server.password,
            "dbname": self.name,
        }

    def connect(self) -> psycopg.Connection:
        return self.server.connect(self.name)

    def drop(self) -> None:
        self.server.drop_database(self.name)

    def table_rows(self, bundle: Path, name: str) -> dict[tuple, tuple]:
        """The rows of an entity's table by primary key, in the manifest's column order."""
        entity = next(e for e in read_manifest(bundle)["entities"] if e["name"] == name)
        names = [c["name"] for c in entity["columns"]]
        key = [names.index(k) for k in entity["primary_key"]]
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(n) for n in names),
            sql.Identifier(entity["hub"], f"saas_{name}"),
        )
        with self.connect() as conn:
            conn.execute("SET TimeZone = 'UTC'")
            return {
                tuple(row[i] for i in key): tuple(row) for row in conn.execute(query)
            }

    def snapshot(self) -> dict:
        """Every table, view and sequence outside the system schemas, with its row count
        and the ledger's rows: what a run that must write nothing must leave equal."""
        with self.connect() as conn:
            relations = conn.execute(
                "SELECT n.nspname, c.relname, c.relkind FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
                " AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'"
                " ORDER BY 1, 2"
            ).fetchall()
            counts = {}
            for schema, name, kind in relations:
                if kind == "r":
                    counts[f"{schema}.{name}"] = conn.execute(
                        sql.SQL(
                            "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} t"
                        ).format(sql.Identifier(schema, name))
                    ).fetchone()
            schemas = [
                row[0]
                for row in conn.execute(
                    # PostgreSQL keeps the namespaces of temporary tables for reuse
                    # by later sessions; they hold nothing once a session ends.
                    "SELECT nspname FROM pg_namespace"
                    " WHERE nspname !~ '^pg_(toast_)?temp_' ORDER BY 1"
                ).fetchall()
            ]
        return {"relations": relations, "counts": counts, "schemas": schemas}

    def saas_tables(self) -> list[str]:
        with self.connect() as conn:
            return [
                f"{schema}.{name}"
                for schema, name in conn.execute(
                    "SELECT schemaname, tablename FROM pg_tables"
                    " WHERE tablename LIKE 'saas\\_%%' ORDER BY 1, 2"
                ).fetchall()
            ]

    def ledger(self) -> list[tuple]:
        with self.connect() as conn:
            if (
                conn.execute(
                    "SELECT to_regclass('tradehub_migration.ledger')"
                ).fetchone()[0]
                is None
            ):
                return []
            return conn.execute(
                "SELECT entity, rows, inserted, updated, unchanged"
                " FROM tradehub_migration.ledger ORDER BY merged_at, entity"
            ).fetchall()


@contextmanager
def hubs_database(server: PostgresServer) -> Iterator[HubsDatabase]:
    database = HubsDatabase(server)
    try:
        yield database
    finally:
        database.drop()

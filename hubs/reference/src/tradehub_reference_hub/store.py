"""Rows of the hub's entity table, read and written through psycopg 3.

The statements are composed from the entity declaration with psycopg.sql, and every
table name is qualified with the hub's schema so that nothing can reach another schema
even if ``search_path`` were changed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from psycopg import AsyncConnection, sql

from tradehub_reference_hub.entities import EntitySpec

#: Columns every entity table has besides the declared fields. ``seq`` orders rows
#: (newest first) and is never shown to clients.
SYSTEM_COLUMNS = ("id", "created_at")


def rfc3339(value: dt.datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a ``Z`` suffix."""
    text = value.astimezone(dt.UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def to_json_value(value: Any) -> Any:
    """Turn a value returned by psycopg into its JSON representation."""
    if isinstance(value, dt.datetime):
        return rfc3339(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


class EntityStore:
    """The three statements the business API needs, composed once per process."""

    def __init__(self, entity: EntitySpec, schema: str) -> None:
        self.entity = entity
        table = sql.Identifier(schema, entity.plural)
        fields = [spec.name for spec in entity.fields]
        out = sql.SQL(", ").join(
            sql.Identifier(name) for name in (*SYSTEM_COLUMNS, *fields)
        )
        self._columns = ("id", *fields)
        self._insert = sql.SQL(
            "INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING {out}"
        ).format(
            table=table,
            columns=sql.SQL(", ").join(sql.Identifier(c) for c in self._columns),
            values=sql.SQL(", ").join(sql.Placeholder() * len(self._columns)),
            out=out,
        )
        self._get = sql.SQL("SELECT {out} FROM {table} WHERE id = %s").format(
            out=out, table=table
        )
        self._list = sql.SQL(
            "SELECT {out} FROM {table} ORDER BY seq DESC LIMIT %s OFFSET %s"
        ).format(out=out, table=table)

    @staticmethod
    def _row(columns: list[str], values: tuple[Any, ...]) -> dict[str, Any]:
        return {name: to_json_value(v) for name, v in zip(columns, values, strict=True)}

    async def insert(
        self, conn: AsyncConnection[Any], values: dict[str, Any]
    ) -> dict[str, Any]:
        """Insert one row with a new id and return it as JSON-ready data."""
        params = [uuid.uuid4(), *(values[name] for name in self._columns[1:])]
        cur = await conn.execute(self._insert, params)
        record = await cur.fetchone()
        assert record is not None and cur.description is not None
        return self._row([c.name for c in cur.description], record)

    async def get(
        self, conn: AsyncConnection[Any], item_id: uuid.UUID
    ) -> dict[str, Any] | None:
        cur = await conn.execute(self._get, [item_id])
        record = await cur.fetchone()
        if record is None or cur.description is None:
            return None
        return self._row([c.name for c in cur.description], record)

    async def list(
        self, conn: AsyncConnection[Any], limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """Return a page of rows, newest first."""
        cur = await conn.execute(self._list, [limit, offset])
        records = await cur.fetchall()
        columns = [c.name for c in cur.description or ()]
        return [self._row(columns, record) for record in records]

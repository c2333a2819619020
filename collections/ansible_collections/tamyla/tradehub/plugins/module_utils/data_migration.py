# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Import a SaaS export bundle into the hubs' schemas (docs/migration-bundle.md).

A run has two phases, so that a bad bundle changes nothing:

1. *Verify*: each entity's file is streamed once into a temporary staging table with
   ``COPY``, hashing it on the way. PostgreSQL checks every value against the column's
   type; the checksum, the row count and the primary key's uniqueness are checked
   after. Temporary tables live in the session only, so verifying writes nothing that
   outlives the run, and check mode stops here.
2. *Merge*: each verified entity is merged from its staging table into
   ``<hub schema>.saas_<entity>`` by primary key (``INSERT ... ON CONFLICT DO UPDATE
   ... WHERE ... IS DISTINCT FROM``, so unchanged rows are not touched) and recorded
   in the ledger ``tradehub_migration.ledger`` in the same transaction. A run killed at
   any point has each entity either merged and recorded, or not at all; the next run
   skips what the ledger records for the same bundle.

Only the staging tables and PostgreSQL hold the rows; memory stays flat whatever the
size of the bundle.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import tempfile
import time
import traceback

from ansible_collections.tamyla.tradehub.plugins.module_utils.catalog import HUBS
from ansible_collections.tamyla.tradehub.plugins.module_utils.migration_bundle import (
    Bundle,
    BundleError,
    HashingReader,
    Problem,
    parse_manifest,
    scan_csv,
)

try:
    import psycopg
    from psycopg import sql
    from psycopg.types.json import Jsonb
except ImportError:  # pragma: no cover - reported by the module
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None

LEDGER_SCHEMA = "tradehub_migration"
LEDGER_TABLE = "ledger"
TABLE_PREFIX = "saas_"
STAGE_PREFIX = "tradehub_stage_"
CHUNK_SIZE = 1 << 20
#: How long a run waits for another run on the same database to finish.
LOCK_WAIT_SECONDS = 300
#: The progress file is rewritten at most this often while rows stream.
PROGRESS_INTERVAL = 0.5

#: The JSON value types a NDJSON row may hold for each column type; None: any.
_JSON_TYPES = {
    "text": (str,),
    "integer": (int,),
    "decimal": (int, float, str),
    "boolean": (bool,),
    "date": (str,),
    "timestamp": (str,),
    "uuid": (str,),
    "json": None,
}
_JSON_NAMES = {
    "text": "a string",
    "integer": "an integer",
    "decimal": "a number or a decimal string",
    "boolean": "true or false",
    "date": "a date string (YYYY-MM-DD)",
    "timestamp": "an RFC 3339 time string",
    "uuid": "a UUID string",
}
_COPY_CONTEXT = re.compile(r"line (\d+)(?:, column (\w+))?")

REFUSE = "refuse"
SKIP_ENTITY = "skip_entity"


class MigrationError(Exception):
    """The run cannot go on (database unreachable, lock held...); nothing more is written."""


class _Refused(Exception):
    """Rolls back the staging of an entity that has problems."""


def _now():
    return (
        dt.datetime.now(dt.timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def default_progress_file(source_tenant):
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", source_tenant)
    return os.path.join(tempfile.gettempdir(), f"tradehub-migration-{safe}.json")


class Progress:
    """The JSON document an operator reads (``cat``, ``watch``) while a run goes on.

    It is replaced atomically (write, then rename), so a reader never sees half of it.
    """

    def __init__(self, path, manifest, clock=time.monotonic):
        self.path = path
        self._clock = clock
        self._started = clock()
        self._written = 0.0
        self.doc = {
            "state": "verifying",
            "pid": os.getpid(),
            "bundle_sha256": manifest.sha256,
            "source_tenant": manifest.source_tenant,
            "started_at": _now(),
            "updated_at": _now(),
            "elapsed_seconds": 0.0,
            "entity": None,
            "rows_total": manifest.total_rows,
            "rows_verified": 0,
            "rows_merged": 0,
            "percent": 0.0,
            "entities": {
                entity.name: {
                    "hub": entity.hub,
                    "state": "pending",
                    "rows": entity.rows,
                    "rows_done": 0,
                }
                for entity in manifest.entities
            },
            "problems": [],
        }

    def entity(self, name, force=True, **fields):
        self.doc["entities"][name].update(fields)
        if "state" in fields:
            self.doc["entity"] = name
        self.write(force=force)

    def update(self, force=True, **fields):
        self.doc.update(fields)
        self.write(force=force)

    def write(self, force=True):
        if self.path is None:
            return
        now = self._clock()
        if not force and now - self._written < PROGRESS_INTERVAL:
            return
        self._written = now
        doc = self.doc
        entities = doc["entities"].values()
        doc["rows_verified"] = sum(
            e["rows_done"] if e["state"] == "verifying" else e["rows"]
            for e in entities
            if e["state"] not in ("pending", "refused")
        )
        doc["rows_merged"] = sum(
            e["rows"] for e in entities if e["state"] in ("merged", "already_imported")
        )
        total = doc["rows_total"] or 1
        doc["percent"] = (
            100.0
            if doc["state"] == "done"
            else round(
                100.0 * (doc["rows_verified"] + doc["rows_merged"]) / (2 * total), 1
            )
        )
        doc["elapsed_seconds"] = round(now - self._started, 3)
        doc["updated_at"] = _now()
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            descriptor, staged = tempfile.mkstemp(
                prefix=".tradehub-migration-", dir=directory
            )
            with os.fdopen(descriptor, "w") as handle:
                json.dump(doc, handle, indent=1, sort_keys=True)
                handle.write("\n")
            os.chmod(staged, 0o644)
            os.replace(staged, self.path)
        except OSError as exc:
            raise MigrationError(
                f"cannot write the progress file {self.path}: {exc.strerror}; "
                "set progress_file to a writable path"
            ) from None


def _ident(*names):
    return sql.Identifier(*names)


def _lock_key(dbname):
    digest = hashlib.sha256(f"tradehub-data-migration:{dbname}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _stage_name(entity):
    return STAGE_PREFIX + entity.name


def _table_name(entity):
    return TABLE_PREFIX + entity.name


def _column_defs(entity, with_key):
    parts = []
    for column in entity.columns:
        part = sql.SQL("{} {}").format(_ident(column.name), sql.SQL(column.sql_type))
        if not column.nullable:
            part = sql.SQL("{} NOT NULL").format(part)
        parts.append(part)
    if with_key:
        parts.append(
            sql.SQL("PRIMARY KEY ({})").format(
                sql.SQL(", ").join(_ident(k) for k in entity.primary_key)
            )
        )
    return sql.SQL(", ").join(parts)


def _copy_problem(entity, exc, line_offset):
    """A PostgreSQL error raised by COPY, as a problem naming the line and column."""
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    message = message.replace(f'relation "{_stage_name(entity)}"', "the entity")
    line = column = None
    match = _COPY_CONTEXT.search(diag.context or "")
    if match:
        line = int(match.group(1)) + line_offset
        column = match.group(2)
    column = column or diag.column_name
    return Problem(message, entity.name, line, column)


class _EntityRun:
    """What one entity's verification and merge found, for the result."""

    def __init__(self, entity, schema):
        self.entity = entity
        self.table = f"{schema}.{_table_name(entity)}"
        self.status = "pending"
        self.problems = []
        self.rows = 0
        self.new = self.changed = self.unchanged = 0
        self.seconds = 0.0
        self.table_exists = False
        self.done = None

    def result(self):
        seconds = round(self.seconds, 3)
        return {
            "hub": self.entity.hub,
            "table": self.table,
            "file": self.entity.file,
            "format": self.entity.format,
            "status": self.status,
            "rows": self.rows,
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "duration": seconds,
            "rows_per_second": round(self.rows / self.seconds) if self.seconds else 0,
            "problems": [problem.as_dict() for problem in self.problems],
        }


class Importer:
    """One run of the import of one bundle into one database."""

    def __init__(
        self,
        bundle,
        conninfo,
        hubs=None,
        check_mode=False,
        force=False,
        on_error=REFUSE,
        progress_file=None,
        max_problems=20,
        clock=time.monotonic,
    ):
        self.bundle_path = bundle
        self.conninfo = dict(conninfo)
        self.hubs = sorted(set(hubs)) if hubs is not None else None
        self.check_mode = check_mode
        self.force = force
        self.on_error = on_error
        self.progress_file = progress_file
        self.max_problems = max(1, max_problems)
        self.clock = clock

    # -- the run ---------------------------------------------------------------

    def run(self):
        """Verify, then merge; return the result document (``failed`` and ``msg`` on
        problems). Raise BundleError when the bundle is refused before anything is
        written (manifest, files, schemas, rights, tables), MigrationError when the run
        cannot go on (connection, lock, progress file)."""
        started = self.clock()
        with Bundle(self.bundle_path) as bundle:
            manifest = parse_manifest(bundle.read_manifest(), HUBS, self.hubs)
            missing = bundle.missing_files(manifest)
            if missing:
                raise BundleError(missing)
            if self.progress_file is None:
                self.progress_file = default_progress_file(manifest.source_tenant)
            progress = Progress(self.progress_file, manifest, self.clock)
            progress.write()
            try:
                result = self._run(bundle, manifest, progress)
            except (BundleError, MigrationError) as exc:
                problems = getattr(exc, "problems", [Problem(str(exc))])
                progress.update(
                    state="failed", problems=[p.as_dict() for p in problems]
                )
                raise
            except Exception as exc:
                progress.update(state="failed", problems=[Problem(str(exc)).as_dict()])
                raise
        elapsed = self.clock() - started
        result["duration"] = round(elapsed, 3)
        rows = result["totals"]["rows"]
        result["rows_per_second"] = round(rows / elapsed) if elapsed else 0
        progress.update(
            state="failed" if result.get("failed") else "done",
            entity=None,
            problems=result["problems"],
        )
        return result

    def _connect(self):
        info = {
            key: value
            for key, value in self.conninfo.items()
            if value not in (None, "")
        }
        info.setdefault("connect_timeout", 10)
        try:
            return psycopg.connect(
                autocommit=True,
                application_name="tradehub-data-migration",
                # A long merge is not a runaway query: no statement timeout.
                options="-c TimeZone=UTC -c statement_timeout=0",
                **info,
            )
        except psycopg.Error as exc:
            where = "{}:{}".format(
                info.get("host", "local socket"), info.get("port", 5432)
            )
            raise MigrationError(
                f"cannot connect to PostgreSQL at {where}, database "
                f"{info.get('dbname', '?')!r}, as {info.get('user', '?')!r}: "
                f"{str(exc).strip()}"
            ) from None

    def _run(self, bundle, manifest, progress):
        with self._connect() as conn:
            if not self.check_mode:
                self._lock(conn)
            runs, owners = self._plan(conn, manifest)
            if not self.check_mode:
                self._ensure_ledger(conn)
            for run in sorted(runs, key=lambda r: bundle.position(r.entity)):
                if run.done is not None:
                    progress.entity(run.entity.name, state="already_imported")
                    continue
                self._verify(conn, bundle, run, progress)
            refused = [run for run in runs if run.problems]
            merge = not self.check_mode and (
                not refused or self.on_error == SKIP_ENTITY
            )
            if merge:
                progress.update(state="merging")
            for run in runs:
                if run.done is not None or run.problems:
                    continue
                if merge:
                    self._merge(conn, manifest, run, owners[run.entity.hub], progress)
                elif self.check_mode:
                    run.status = "would_import"
                else:
                    run.status = "not_merged"
                    progress.entity(run.entity.name, state="not_merged")
        return self._result(manifest, runs)

    def _lock(self, conn):
        """One run per database at a time: a second run waits, then gives up."""
        conn.execute(
            sql.SQL("SET lock_timeout = {}").format(
                sql.Literal(f"{LOCK_WAIT_SECONDS * 1000}ms")
            )
        )
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", [_lock_key(conn.info.dbname)])
        except psycopg.errors.LockNotAvailable:
            raise MigrationError(
                f"another data migration on database {conn.info.dbname!r} held its "
                f"lock for more than {LOCK_WAIT_SECONDS} s; wait for it to finish "
                "(see its progress file) and run again"
            ) from None
        conn.execute("SET lock_timeout = 0")

    # -- before any write ------------------------------------------------------------

    def _plan(self, conn, manifest):
        """Check the database side of every entity; read what the ledger records."""
        problems, owners, runs = [], {}, []
        for hub in sorted({entity.hub for entity in manifest.entities}):
            row = conn.execute(
                "SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace"
                " WHERE nspname = %s",
                [hub],
            ).fetchone()
            if row is None:
                problems.append(
                    Problem(
                        f"hub {hub!r} has no schema {hub!r} in database "
                        f"{conn.info.dbname!r}: install the hub (playbooks/site.yml) "
                        "before importing its data"
                    )
                )
            else:
                rights = self._check_rights(conn, hub, row[0])
                problems.extend(rights)
                if not rights:
                    owners[hub] = row[0]
        ledger = self._ledger_exists(conn)
        if not ledger:
            problems.extend(self._check_rights(conn, None, None))
        done = {}
        if ledger:
            for row in conn.execute(
                sql.SQL(
                    "SELECT entity, rows, merged_at FROM {} WHERE bundle_sha256 = %s"
                ).format(_ident(LEDGER_SCHEMA, LEDGER_TABLE)),
                [manifest.sha256],
            ):
                done[row[0]] = {"rows": row[1], "merged_at": row[2]}
            newer = conn.execute(
                sql.SQL(
                    "SELECT max(exported_at) FROM {} WHERE source_tenant = %s"
                    " AND bundle_sha256 <> %s AND exported_at > %s"
                ).format(_ident(LEDGER_SCHEMA, LEDGER_TABLE)),
                [manifest.source_tenant, manifest.sha256, manifest.exported_at],
            ).fetchone()[0]
            pending = [e for e in manifest.entities if e.name not in done]
            if newer is not None and pending and not self.force:
                problems.append(
                    Problem(
                        f"an export of {manifest.source_tenant!r} taken at "
                        f"{newer.isoformat()}, newer than this one "
                        f"({manifest.exported_at.isoformat()}), was imported already; "
                        "importing this one would bring older rows back. Import the "
                        "newest export, or set force=true to import this one anyway"
                    )
                )
        for entity in manifest.entities:
            run = _EntityRun(entity, entity.hub)
            runs.append(run)
            if entity.hub in owners:
                problems.extend(self._check_table(conn, run))
            if entity.name in done and not self.force:
                run.done = done[entity.name]
                run.status = "already_imported"
                run.rows = run.unchanged = entity.rows
        if problems:
            raise BundleError(problems)
        return runs, owners

    @staticmethod
    def _check_rights(conn, hub, owner):
        """The login must create tables in the hub's schema and give them to the hub's
        role (or, for hub None, create the ledger's schema): refused early otherwise."""
        user = conn.info.user
        fix = (
            "connect as the database's owner or a superuser (login_user; "
            "postgresql_admin_user in the inventory)"
        )
        if hub is None:
            allowed = conn.execute(
                "SELECT has_database_privilege(current_database(), 'CREATE')"
            ).fetchone()[0]
            return (
                []
                if allowed
                else [
                    Problem(
                        f"role {user!r} cannot create the schema {LEDGER_SCHEMA} "
                        f"for the ledger: {fix}"
                    )
                ]
            )
        # Giving a table to a role takes membership; from PostgreSQL 16 on, the
        # right to SET ROLE to it.
        role_right = "SET" if conn.info.server_version >= 160000 else "MEMBER"
        usage, create, member = conn.execute(
            "SELECT has_schema_privilege(%s, 'USAGE'), has_schema_privilege(%s, 'CREATE'),"
            " pg_has_role(%s, %s)",
            [hub, hub, owner, role_right],
        ).fetchone()
        problems = []
        if not (usage and create):
            problems.append(
                Problem(f"role {user!r} cannot create tables in schema {hub!r}: {fix}")
            )
        if not member:
            problems.append(
                Problem(
                    f"role {user!r} cannot give tables to role {owner!r}, the owner "
                    f"of schema {hub!r}: {fix}"
                )
            )
        return problems

    @staticmethod
    def _ledger_exists(conn):
        return (
            conn.execute(
                "SELECT to_regclass(%s)", [f"{LEDGER_SCHEMA}.{LEDGER_TABLE}"]
            ).fetchone()[0]
            is not None
        )

    def _check_table(self, conn, run):
        """An existing target table must have the manifest's columns, types and key."""
        entity = run.entity
        regclass = f'"{entity.hub}"."{_table_name(entity)}"'
        columns = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, NULL), a.attnotnull"
            " FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(%s)"
            " AND a.attnum > 0 AND NOT a.attisdropped",
            [regclass],
        ).fetchall()
        if not columns:
            return []
        run.table_exists = True
        problems = []
        found = {name: (sql_type, not_null) for name, sql_type, not_null in columns}
        for column in entity.columns:
            if column.name not in found:
                problems.append(
                    Problem(
                        f"table {run.table} has no such column; the manifest's "
                        "columns must match the table imported before",
                        entity.name,
                        column=column.name,
                    )
                )
            elif found[column.name][0] != column.sql_type:
                problems.append(
                    Problem(
                        f"table {run.table} has it as {found[column.name][0]}, the "
                        f"manifest as {column.type} ({column.sql_type})",
                        entity.name,
                        column=column.name,
                    )
                )
            elif found[column.name][1] and column.nullable:
                problems.append(
                    Problem(
                        f"table {run.table} has it NOT NULL, the manifest nullable",
                        entity.name,
                        column=column.name,
                    )
                )
        extra = sorted(set(found) - set(entity.column_names))
        if extra:
            problems.append(
                Problem(
                    f"table {run.table} has columns the manifest lacks: "
                    f"{', '.join(extra)}",
                    entity.name,
                )
            )
        key = conn.execute(
            "SELECT array_agg(a.attname::text) FROM pg_catalog.pg_index i"
            " JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY (i.indkey)"
            " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
            [regclass],
        ).fetchone()[0]
        if sorted(key or []) != sorted(entity.primary_key):
            problems.append(
                Problem(
                    f"table {run.table} has primary key ({', '.join(key or [])}), the "
                    f"manifest ({', '.join(entity.primary_key)})",
                    entity.name,
                )
            )
        return problems

    # -- phase 1: verify -----------------------------------------------------------

    def _verify(self, conn, bundle, run, progress):
        entity = run.entity
        started = self.clock()
        progress.entity(entity.name, state="verifying", rows_done=0)
        size = bundle.size(entity) or 1
        stage = self._stage(entity)
        copy_failed = False
        if self.check_mode:
            kind = "TEMPORARY"  # gone with the session: check mode leaves nothing
        elif run.table_exists:
            kind = "UNLOGGED"  # merged into the table, then dropped
        else:
            kind = ""  # becomes the table itself: its rows are written once
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("CREATE {} TABLE {} ({})").format(
                        sql.SQL(kind), stage, _column_defs(entity, with_key=False)
                    )
                )
                with bundle.open(entity) as raw:
                    hasher = HashingReader(raw)
                    reader = io.BufferedReader(hasher, CHUNK_SIZE)

                    def report(done_bytes=None, rows=None):
                        if rows is None:
                            rows = int(entity.rows * min(1.0, done_bytes / size))
                        progress.entity(entity.name, force=False, rows_done=rows)

                    try:
                        if entity.format == "csv":
                            rows = self._copy_csv(conn, run, reader, hasher, report)
                        else:
                            rows = self._copy_ndjson(conn, run, reader, report)
                    except psycopg.Error as exc:
                        line_offset = 1 if entity.format == "csv" else 0
                        run.problems.append(_copy_problem(entity, exc, line_offset))
                        rows = None
                        copy_failed = entity.format == "csv"
                    except _Refused:
                        rows = None
                    hasher.drain()
                if copy_failed:
                    self._scan_for_more(bundle, run)
                digest = hasher.hexdigest()
                if digest != entity.sha256:
                    run.problems.insert(
                        0,
                        Problem(
                            f"checksum mismatch: the file's SHA-256 is {digest}, the "
                            f"manifest's {entity.sha256} (the file was altered or "
                            "truncated after the export)",
                            entity.name,
                        ),
                    )
                if rows is not None and rows != entity.rows:
                    run.problems.append(
                        Problem(
                            f"the file holds {rows} rows, the manifest says "
                            f"{entity.rows}",
                            entity.name,
                        )
                    )
                if run.problems:
                    raise _Refused()
                run.rows = rows
                self._index_key(conn, run)
                if run.problems:
                    raise _Refused()
                if self.check_mode:
                    conn.execute(sql.SQL("ANALYZE {}").format(stage))
                    self._count_changes(conn, run)
        except _Refused:
            run.status = "refused"
            progress.entity(
                entity.name,
                state="refused",
                problems=[p.as_dict() for p in run.problems],
            )
        else:
            progress.entity(entity.name, state="verified", rows_done=run.rows)
        run.seconds += self.clock() - started

    def _scan_for_more(self, bundle, run):
        """COPY stopped at the first bad value: list the others too, once."""
        lines = {p.line for p in run.problems}
        with bundle.open(run.entity) as raw:
            for problem in scan_csv(raw, run.entity, self.max_problems):
                if problem.line not in lines:
                    run.problems.append(problem)
        del run.problems[self.max_problems :]

    def _copy_csv(self, conn, run, reader, hasher, report):
        """Check the header, then stream the rest of the file as it is into COPY."""
        entity = run.entity
        header = reader.readline()
        text = header.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
        names = next(csv.reader([text]), []) if text else []
        if not names:
            run.problems.append(
                Problem(
                    "the file is empty: a CSV file starts with a header line naming "
                    "the columns",
                    entity.name,
                    1,
                )
            )
            raise _Refused()
        declared = entity.column_names
        for name in declared:
            if name not in names:
                run.problems.append(
                    Problem(
                        "declared in the manifest but missing from the header",
                        entity.name,
                        1,
                        name,
                    )
                )
        for name in names:
            if name not in declared:
                run.problems.append(
                    Problem(
                        "in the header but not declared in the manifest",
                        entity.name,
                        1,
                        name,
                    )
                )
        if len(set(names)) != len(names):
            run.problems.append(
                Problem("the header names a column twice", entity.name, 1)
            )
        if run.problems:
            raise _Refused()
        statement = sql.SQL(
            "COPY {} ({}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')"
        ).format(
            self._stage(entity),
            sql.SQL(", ").join(_ident(name) for name in names),
        )
        with conn.cursor() as cursor:
            with cursor.copy(statement) as copy:
                while True:
                    data = reader.read1(CHUNK_SIZE)
                    if not data:
                        break
                    copy.write(data)
                    report(done_bytes=hasher.bytes_read)
            return cursor.rowcount

    def _copy_ndjson(self, conn, run, reader, report):
        """Check each line's JSON, keys and value types; stream the rows into COPY."""
        entity = run.entity
        names = entity.column_names
        expected = set(names)
        checks = [
            (c.name, _JSON_TYPES[c.type], c.nullable, c.type) for c in entity.columns
        ]
        problems = run.problems
        limit = self.max_problems
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            self._stage(entity),
            sql.SQL(", ").join(_ident(name) for name in names),
        )
        rows = 0
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            for number, line in enumerate(reader, 1):
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    message = "empty line" if not line.strip() else f"not JSON: {exc}"
                    problems.append(Problem(message, entity.name, number))
                    obj = None
                if obj is not None and not isinstance(obj, dict):
                    problems.append(Problem("not a JSON object", entity.name, number))
                    obj = None
                if obj is not None and obj.keys() != expected:
                    for name in names:
                        if name not in obj:
                            problems.append(
                                Problem("missing", entity.name, number, name)
                            )
                    for name in sorted(set(obj) - expected):
                        problems.append(
                            Problem(
                                "not declared in the manifest",
                                entity.name,
                                number,
                                name,
                            )
                        )
                    obj = None
                if obj is not None:
                    row = []
                    for name, allowed, nullable, col_type in checks:
                        value = obj[name]
                        if value is None:
                            if not nullable:
                                problems.append(
                                    Problem(
                                        "null, but the column is not nullable",
                                        entity.name,
                                        number,
                                        name,
                                    )
                                )
                        elif allowed is None:
                            value = Jsonb(value)
                        elif type(value) not in allowed:
                            problems.append(
                                Problem(
                                    f"expected {_JSON_NAMES[col_type]}, found "
                                    f"{json.dumps(value)[:60]}",
                                    entity.name,
                                    number,
                                    name,
                                )
                            )
                        row.append(value)
                    if not problems:
                        copy.write_row(row)
                rows = number
                if len(problems) >= limit:
                    raise _Refused()
                if not number % 4096:
                    report(rows=number)
            if problems:
                raise _Refused()
        return rows

    def _stage(self, entity):
        if self.check_mode:
            return _ident(_stage_name(entity))
        return _ident(LEDGER_SCHEMA, _stage_name(entity))

    def _index_key(self, conn, run):
        """The primary key's unique index, built by one sort; refuses duplicates."""
        entity = run.entity
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(
                        _ident(_stage_name(entity) + "_key"),
                        self._stage(entity),
                        sql.SQL(", ").join(_ident(k) for k in entity.primary_key),
                    )
                )
        except psycopg.errors.UniqueViolation:
            run.problems.extend(self._duplicates(conn, entity))

    def _duplicates(self, conn, entity):
        key = sql.SQL(", ").join(_ident(k) for k in entity.primary_key)
        found = conn.execute(
            sql.SQL(
                "SELECT {key}, count(*) FROM {stage} GROUP BY {key}"
                " HAVING count(*) > 1 ORDER BY {key} LIMIT %s"
            ).format(key=key, stage=self._stage(entity)),
            [self.max_problems],
        ).fetchall()
        problems = []
        for row in found:
            values = ", ".join(
                f"{name}={row[index]}" for index, name in enumerate(entity.primary_key)
            )
            problems.append(
                Problem(
                    f"duplicate primary key ({values}): {row[-1]} rows",
                    entity.name,
                    column=", ".join(entity.primary_key),
                )
            )
        return problems

    def _count_changes(self, conn, run):
        """Check mode: how many staged rows are new, changed or the same."""
        entity = run.entity
        if not run.table_exists:
            run.new = run.rows
            return
        others = [c.name for c in entity.columns if c.name not in entity.primary_key]
        join = sql.SQL(" AND ").join(
            sql.SQL("t.{0} = s.{0}").format(_ident(k)) for k in entity.primary_key
        )
        if others:
            differs = sql.SQL("ROW({}) IS DISTINCT FROM ROW({})").format(
                sql.SQL(", ").join(sql.SQL("t.{}").format(_ident(c)) for c in others),
                sql.SQL(", ").join(sql.SQL("s.{}").format(_ident(c)) for c in others),
            )
        else:
            differs = sql.SQL("false")
        new, changed = conn.execute(
            sql.SQL(
                "SELECT count(*) FILTER (WHERE t.{first} IS NULL),"
                " count(*) FILTER (WHERE t.{first} IS NOT NULL AND {differs})"
                " FROM {stage} s LEFT JOIN {table} t ON {join}"
            ).format(
                first=_ident(entity.primary_key[0]),
                differs=differs,
                stage=self._stage(entity),
                table=_ident(entity.hub, _table_name(entity)),
                join=join,
            )
        ).fetchone()
        run.new, run.changed = new, changed
        run.unchanged = run.rows - new - changed

    # -- phase 2: merge --------------------------------------------------------------

    def _ensure_ledger(self, conn):
        with conn.transaction():
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(_ident(LEDGER_SCHEMA))
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    "bundle_sha256 text NOT NULL, entity text NOT NULL,"
                    " source_tenant text NOT NULL, exported_at timestamptz NOT NULL,"
                    " hub text NOT NULL, target_table text NOT NULL,"
                    " file_sha256 text NOT NULL, rows bigint NOT NULL,"
                    " inserted bigint NOT NULL, updated bigint NOT NULL,"
                    " unchanged bigint NOT NULL, duration_seconds double precision"
                    " NOT NULL, merged_at timestamptz NOT NULL DEFAULT now(),"
                    " PRIMARY KEY (bundle_sha256, entity))"
                ).format(_ident(LEDGER_SCHEMA, LEDGER_TABLE))
            )
            # Staging tables a killed run left behind: this run stages again.
            stale = conn.execute(
                "SELECT c.relname FROM pg_catalog.pg_class c"
                " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname LIKE %s",
                [LEDGER_SCHEMA, STAGE_PREFIX.replace("_", "\\_") + "%"],
            ).fetchall()
            for (name,) in stale:
                conn.execute(
                    sql.SQL("DROP TABLE {}").format(_ident(LEDGER_SCHEMA, name))
                )

    def _merge(self, conn, manifest, run, owner, progress):
        entity = run.entity
        started = self.clock()
        progress.entity(entity.name, state="merging")
        table = _ident(entity.hub, _table_name(entity))
        stage = self._stage(entity)
        columns = sql.SQL(", ").join(_ident(c) for c in entity.column_names)
        with conn.transaction():
            exists = conn.execute(
                "SELECT to_regclass(%s)", [f'"{entity.hub}"."{_table_name(entity)}"']
            ).fetchone()[0]
            if not exists:
                # A first import: the verified staging table becomes the table.
                self._move_into_place(conn, entity, owner)
                inserted, updated = run.rows, 0
            else:
                empty = conn.execute(
                    sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(table)
                ).fetchone()[0]
                if empty:
                    cursor = conn.execute(
                        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                            table, columns, columns, stage
                        )
                    )
                    inserted, updated = cursor.rowcount, 0
                else:
                    inserted, updated = conn.execute(
                        self._upsert(entity, stage)
                    ).fetchone()
                conn.execute(sql.SQL("DROP TABLE {}").format(stage))
            seconds = run.seconds + (self.clock() - started)
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (bundle_sha256, entity, source_tenant, exported_at,"
                    " hub, target_table, file_sha256, rows, inserted, updated,"
                    " unchanged, duration_seconds)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (bundle_sha256, entity) DO UPDATE SET"
                    " rows = EXCLUDED.rows, inserted = EXCLUDED.inserted,"
                    " updated = EXCLUDED.updated, unchanged = EXCLUDED.unchanged,"
                    " duration_seconds = EXCLUDED.duration_seconds, merged_at = now()"
                ).format(_ident(LEDGER_SCHEMA, LEDGER_TABLE)),
                [
                    manifest.sha256,
                    entity.name,
                    manifest.source_tenant,
                    manifest.exported_at,
                    entity.hub,
                    run.table,
                    entity.sha256,
                    run.rows,
                    inserted,
                    updated,
                    run.rows - inserted - updated,
                    seconds,
                ],
            )
        run.new, run.changed = inserted, updated
        run.unchanged = run.rows - inserted - updated
        run.status = "imported"
        run.seconds += self.clock() - started
        progress.entity(entity.name, state="merged")

    @staticmethod
    def _move_into_place(conn, entity, owner):
        """Make the staging table the entity's table in its hub's schema, owned by the
        hub's role, its unique index the primary key: no row is written again."""
        name = _table_name(entity)
        table = _ident(entity.hub, name)
        conn.execute(
            sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                _ident(LEDGER_SCHEMA, _stage_name(entity)), _ident(entity.hub)
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                _ident(entity.hub, _stage_name(entity)), _ident(name)
            )
        )
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}"
            ).format(
                table, _ident(f"{name}_pkey"), _ident(_stage_name(entity) + "_key")
            )
        )
        conn.execute(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(
                table,
                sql.Literal(
                    f"SaaS entity {entity.name}, imported by tamyla.tradehub.data_migration"
                ),
            )
        )
        if owner != conn.info.user:
            conn.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, _ident(owner))
            )

    @staticmethod
    def _upsert(entity, stage):
        """Insert new keys, update changed rows, leave equal rows untouched; count."""
        table = _ident(entity.hub, _table_name(entity))
        names = entity.column_names
        others = [name for name in names if name not in entity.primary_key]
        key = sql.SQL(", ").join(_ident(k) for k in entity.primary_key)
        if others:
            action = sql.SQL(
                "DO UPDATE SET {assign} WHERE ROW({current}) IS DISTINCT FROM ROW({new})"
            ).format(
                assign=sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(_ident(c)) for c in others
                ),
                current=sql.SQL(", ").join(
                    sql.SQL("t.{}").format(_ident(c)) for c in others
                ),
                new=sql.SQL(", ").join(
                    sql.SQL("EXCLUDED.{}").format(_ident(c)) for c in others
                ),
            )
        else:
            action = sql.SQL("DO NOTHING")
        columns = sql.SQL(", ").join(_ident(c) for c in names)
        return sql.SQL(
            "WITH merged AS (INSERT INTO {table} AS t ({columns})"
            " SELECT {columns} FROM {stage} ON CONFLICT ({key}) {action}"
            " RETURNING (xmax = 0) AS inserted)"
            " SELECT count(*) FILTER (WHERE inserted),"
            " count(*) FILTER (WHERE NOT inserted) FROM merged"
        ).format(
            table=table,
            columns=columns,
            stage=stage,
            key=key,
            action=action,
        )

    # -- the result --------------------------------------------------------------------

    def _result(self, manifest, runs):
        entities = {run.entity.name: run.result() for run in runs}
        problems = [problem for run in runs for problem in run.problems]
        totals = {
            key: sum(entity[key] for entity in entities.values())
            for key in ("rows", "new", "changed", "unchanged")
        }
        result = {
            "changed": bool(totals["new"] or totals["changed"]),
            "bundle": {
                "path": self.bundle_path,
                "format": manifest.format,
                "sha256": manifest.sha256,
                "source_tenant": manifest.source_tenant,
                "exported_at": manifest.exported_at.isoformat(),
                "entities": len(manifest.entities),
                "rows": manifest.total_rows,
            },
            "entities": entities,
            "totals": totals,
            "problems": [problem.as_dict() for problem in problems],
            "progress_file": self.progress_file,
        }
        if problems:
            refused = sorted(run.entity.name for run in runs if run.problems)
            if self.check_mode:
                outcome = "check mode: the bundle would be refused"
            elif self.on_error == SKIP_ENTITY:
                outcome = f"refused entities not merged ({', '.join(refused)}); the others were"
            else:
                outcome = "bundle refused, nothing was merged"
            shown = "; ".join(str(p) for p in problems[:10])
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            result["failed"] = True
            result["msg"] = f"{outcome}: {len(problems)} problem(s): {shown}{more}"
        return result


def run_import(**kwargs):
    """Run one import; see :class:`Importer` for the arguments."""
    return Importer(**kwargs).run()

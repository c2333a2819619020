# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SaaS export bundle, format v1 (docs/migration-bundle.md), apart from any database.

A bundle is a directory, or a ``.tar.gz`` of one, holding ``manifest.json`` and one data
file per entity. :func:`parse_manifest` checks the manifest and returns every problem it
finds at once; :class:`Bundle` opens the data files as streams, from the directory or
straight out of the archive, so that nothing is held in memory or extracted to disk.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
from dataclasses import dataclass, field

BUNDLE_FORMAT = "tradehub-migration-bundle/1"
MANIFEST_NAME = "manifest.json"
#: The manifest is small; a larger one is refused unread.
MAX_MANIFEST_BYTES = 16 << 20
FORMATS = ("csv", "ndjson")
#: Column types of the manifest and the PostgreSQL type each one is stored as.
COLUMN_TYPES = {
    "text": "text",
    "integer": "bigint",
    "decimal": "numeric",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp with time zone",
    "uuid": "uuid",
    "json": "jsonb",
}
#: Column names: lower-case SQL identifiers that never need quoting.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
#: Entity names, shorter: the names of their tables and indexes derive from them and
#: must stay within PostgreSQL's 63 characters.
ENTITY_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class BundleError(Exception):
    """The bundle is refused before anything is written; ``problems`` lists why."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(
            "; ".join(str(problem) for problem in self.problems) or "bundle refused"
        )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a bundle, located as precisely as it can be."""

    message: str
    entity: str | None = None
    line: int | None = None
    column: str | None = None

    def __str__(self):
        where = []
        if self.entity:
            where.append(f"entity {self.entity}")
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_dict(self):
        return {
            "entity": self.entity,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool

    @property
    def sql_type(self):
        return COLUMN_TYPES[self.type]


@dataclass(frozen=True)
class Entity:
    """One entity of the export: where its rows go and how to check its file."""

    name: str
    hub: str
    file: str
    format: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    rows: int
    sha256: str

    @property
    def column_names(self):
        return [column.name for column in self.columns]


@dataclass(frozen=True)
class Manifest:
    format: str
    source_tenant: str
    exported_at: dt.datetime
    entities: tuple[Entity, ...]
    #: SHA-256 of the manifest file: with the files' checksums in it, it names the bundle.
    sha256: str
    total_rows: int = field(default=0)


def parse_time(value):
    """An RFC 3339 time with its offset (``Z`` accepted), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _safe_relative(path):
    """A plain relative path inside the bundle: no absolute path, no ``..``."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        return False
    normal = posixpath.normpath(path)
    return (
        not path.startswith("/")
        and normal == path
        and not normal.startswith("../")
        and normal != ".."
        and path != MANIFEST_NAME
    )


def _columns(name, raw, problems):
    if not isinstance(raw, list) or not raw:
        problems.append(Problem("'columns' must be a non-empty list", name))
        return ()
    columns, seen = [], set()
    for index, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            problems.append(Problem(f"column #{index} is not an object", name))
            continue
        col_name, col_type = item.get("name"), item.get("type")
        if not isinstance(col_name, str) or not NAME_PATTERN.match(col_name):
            problems.append(
                Problem(
                    f"column #{index}: name {col_name!r} is not a lower-case "
                    "identifier (letters, digits, _; at most 48)",
                    name,
                )
            )
            continue
        if col_name in seen:
            problems.append(Problem("column declared twice", name, column=col_name))
            continue
        seen.add(col_name)
        if col_type not in COLUMN_TYPES:
            problems.append(
                Problem(
                    f"type {col_type!r} is not one of {', '.join(COLUMN_TYPES)}",
                    name,
                    column=col_name,
                )
            )
            continue
        nullable = item.get("nullable", True)
        if not isinstance(nullable, bool):
            problems.append(
                Problem("'nullable' is not true or false", name, column=col_name)
            )
            continue
        columns.append(Column(col_name, col_type, nullable))
    return tuple(columns)


def _entity(raw, index, known_hubs, allowed_hubs, problems):
    """One entity of the manifest, or None with its problems added."""
    if not isinstance(raw, dict):
        problems.append(Problem(f"entity #{index} is not an object"))
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not ENTITY_NAME_PATTERN.match(name):
        problems.append(
            Problem(
                f"entity #{index}: name {name!r} is not a lower-case identifier "
                "(letters, digits, _; at most 40)"
            )
        )
        return None
    before = len(problems)
    hub = raw.get("hub")
    if hub not in known_hubs:
        problems.append(
            Problem(
                f"hub {hub!r} is unknown: expected one of {', '.join(known_hubs)}", name
            )
        )
    elif allowed_hubs is not None and hub not in allowed_hubs:
        problems.append(
            Problem(
                f"hub {hub!r} is not installed in this deployment (hubs: "
                f"{', '.join(allowed_hubs) or 'none'}); install it first or leave the "
                "entity out of the bundle",
                name,
            )
        )
    path = raw.get("file")
    if not _safe_relative(path):
        problems.append(
            Problem(f"file {path!r} is not a relative path inside the bundle", name)
        )
    fmt = raw.get("format")
    if fmt not in FORMATS:
        problems.append(
            Problem(f"format {fmt!r} is not one of {', '.join(FORMATS)}", name)
        )
    columns = _columns(name, raw.get("columns"), problems)
    names = {column.name for column in columns}
    key = raw.get("primary_key")
    if (
        not isinstance(key, list)
        or not key
        or not all(isinstance(part, str) for part in key)
        or len(set(key)) != len(key)
    ):
        problems.append(
            Problem("'primary_key' must be a non-empty list of column names", name)
        )
        key = []
    for part in key:
        if part not in names:
            problems.append(
                Problem("primary key column is not declared", name, column=part)
            )
    rows = raw.get("rows")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        problems.append(Problem("'rows' must be an integer >= 0", name))
    digest = raw.get("sha256")
    if not isinstance(digest, str) or not SHA256_PATTERN.match(digest):
        problems.append(
            Problem("'sha256' must be 64 lower-case hexadecimal digits", name)
        )
    if len(problems) > before:
        return None
    # Key columns are never null, whatever the manifest says about them.
    columns = tuple(
        Column(c.name, c.type, False) if c.name in key else c for c in columns
    )
    return Entity(name, hub, path, fmt, columns, tuple(key), rows, digest)


def parse_manifest(data, known_hubs, allowed_hubs=None):
    """Check a manifest's bytes; return a :class:`Manifest` or raise BundleError.

    *known_hubs* are the platform's hubs, *allowed_hubs* those of this deployment
    (None: all known hubs). Every problem is reported, not only the first.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(
            [Problem(f"{MANIFEST_NAME} is not valid JSON: {exc}")]
        ) from None
    if not isinstance(raw, dict):
        raise BundleError([Problem(f"{MANIFEST_NAME} is not a JSON object")])
    problems = []
    if raw.get("format") != BUNDLE_FORMAT:
        problems.append(
            Problem(
                f"format {raw.get('format')!r} is not supported: expected {BUNDLE_FORMAT!r}"
            )
        )
    tenant = raw.get("source_tenant")
    if not isinstance(tenant, str) or not tenant.strip():
        problems.append(Problem("'source_tenant' must be a non-empty string"))
    exported_at = parse_time(raw.get("exported_at"))
    if exported_at is None:
        problems.append(
            Problem("'exported_at' must be an RFC 3339 time with its offset")
        )
    items = raw.get("entities")
    entities = []
    if not isinstance(items, list) or not items:
        problems.append(Problem("'entities' must be a non-empty list"))
        items = []
    for index, item in enumerate(items, 1):
        entity = _entity(item, index, list(known_hubs), allowed_hubs, problems)
        if entity is not None:
            entities.append(entity)
    seen_names, seen_files = set(), set()
    for entity in entities:
        if entity.name in seen_names:
            problems.append(Problem("entity declared twice", entity.name))
        if entity.file in seen_files:
            problems.append(
                Problem(
                    f"file {entity.file} belongs to another entity too", entity.name
                )
            )
        seen_names.add(entity.name)
        seen_files.add(entity.file)
    if problems:
        raise BundleError(problems)
    return Manifest(
        format=BUNDLE_FORMAT,
        source_tenant=tenant,
        exported_at=exported_at,
        entities=tuple(entities),
        sha256=sha256,
        total_rows=sum(entity.rows for entity in entities),
    )


# What PostgreSQL's input functions may accept; PostgreSQL 16 added non-decimal
# integers and underscores between digits, so they are never reported either.
_INTEGER = re.compile(
    r"^\s*[+-]?(\d[\d_]*|0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+)\s*$"
)
_DECIMAL = re.compile(r"^\s*[+-]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d+)?\s*$")
_DECIMAL_WORDS = ("nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf")
_BOOLEAN_WORDS = ("true", "false", "yes", "no", "on", "off")
_HEX = re.compile(r"^[0-9a-fA-F]{32}$")


def value_problem(value, column):
    """Why PostgreSQL surely refuses *value* for *column*, or None. Conservative: a
    value it might accept is never reported (dates, times and JSON are left to it)."""
    if value == "":
        # An unquoted empty field is NULL, a quoted one the empty string: the csv
        # module cannot tell them apart, and either is wrong for a NOT NULL non-text.
        if not column.nullable and column.type != "text":
            return f"empty, but a {column.type} that is not nullable"
        return None
    kind = column.type
    if kind == "integer":
        ok = bool(_INTEGER.match(value))
        if ok and value.strip().lstrip("+-").isdigit():
            ok = -(2**63) <= int(value) < 2**63
    elif kind == "decimal":
        ok = bool(_DECIMAL.match(value)) or value.strip().lower() in _DECIMAL_WORDS
    elif kind == "boolean":
        word = value.strip().lower()
        ok = word in ("1", "0") or (
            word != "" and any(full.startswith(word) for full in _BOOLEAN_WORDS)
        )
    elif kind == "uuid":
        ok = bool(_HEX.match(value.strip().strip("{}").replace("-", "")))
    else:
        return None
    if ok:
        return None
    return f'invalid input syntax for type {COLUMN_TYPES[kind]}: "{value[:60]}"'


def scan_csv(stream, entity, limit):
    """Every bad field of a CSV file, found in Python, up to *limit* problems.

    PostgreSQL's COPY stops at the first bad value; when it has, this second pass
    lists the others, so that one check run shows them all. Lines are numbered as
    COPY numbers them: the header is line 1, and a record is one line.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    reader = csv.reader(text)
    problems = []
    header = next(reader, [])
    header = [header[0].lstrip("\ufeff"), *header[1:]] if header else []
    by_name = {column.name: column for column in entity.columns}
    columns = [by_name.get(name) for name in header]
    for number, fields in enumerate(reader, 2):
        if len(fields) != len(columns):
            problems.append(
                Problem(
                    f"{len(fields)} fields, the header names {len(columns)}",
                    entity.name,
                    number,
                )
            )
        else:
            for index, column in enumerate(columns):
                if column is None:
                    continue
                message = value_problem(fields[index], column)
                if message:
                    problems.append(Problem(message, entity.name, number, column.name))
        if len(problems) >= limit:
            break
    text.detach()
    return problems[:limit]


class HashingReader(io.RawIOBase):
    """Counts and hashes every byte read through it, so one pass both copies and checks."""

    def __init__(self, raw):
        self._raw = raw
        self.digest = hashlib.sha256()
        self.bytes_read = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.digest.update(data)
        self.bytes_read += size
        return size

    def drain(self, chunk_size=1 << 20):
        """Read (and hash) what is left, for a file whose rows are no longer needed."""
        while self._raw and self.readinto(bytearray(chunk_size)):
            pass

    def hexdigest(self):
        return self.digest.hexdigest()


class Bundle:
    """A bundle directory or ``.tar.gz``; open it with ``with Bundle(path) as b``."""

    def __init__(self, path):
        self.path = path
        self._tar = None
        self._members = {}
        self._root = ""

    def __enter__(self):
        if os.path.isdir(self.path):
            return self
        if not os.path.isfile(self.path):
            raise BundleError(
                [
                    Problem(
                        f"{self.path} is neither a bundle directory nor a .tar.gz file"
                    )
                ]
            )
        try:
            self._tar = tarfile.open(self.path, mode="r:gz")
            members = [m for m in self._tar.getmembers() if m.isfile()]
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BundleError(
                [Problem(f"{self.path} is not a readable .tar.gz: {exc}")]
            ) from None
        manifests = sorted(
            (m.name for m in members if posixpath.basename(m.name) == MANIFEST_NAME),
            key=lambda name: name.count("/"),
        )
        if not manifests:
            raise BundleError([Problem(f"{self.path} holds no {MANIFEST_NAME}")])
        self._root = posixpath.dirname(manifests[0])
        self._members = {m.name: m for m in members}
        return self

    def __exit__(self, *exc_info):
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def _member(self, relative):
        return self._members.get(posixpath.join(self._root, relative))

    def read_manifest(self):
        if self._tar is None:
            path = os.path.join(self.path, MANIFEST_NAME)
            try:
                with open(path, "rb") as handle:
                    data = handle.read(MAX_MANIFEST_BYTES + 1)
            except OSError as exc:
                raise BundleError(
                    [Problem(f"cannot read {path}: {exc.strerror}")]
                ) from None
        else:
            member = self._member(MANIFEST_NAME)
            data = self._tar.extractfile(member).read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise BundleError([Problem(f"{MANIFEST_NAME} is larger than 16 MiB")])
        return data

    def missing_files(self, manifest):
        """Problems for the entities whose file is not in the bundle."""
        problems = []
        for entity in manifest.entities:
            if self._tar is None:
                present = os.path.isfile(os.path.join(self.path, entity.file))
            else:
                present = self._member(entity.file) is not None
            if not present:
                problems.append(
                    Problem(f"file {entity.file} is not in the bundle", entity.name)
                )
        return problems

    def position(self, entity):
        """Where the file starts in the archive (0 in a directory): reading the files
        in this order never rewinds the compressed stream."""
        if self._tar is None:
            return 0
        return self._member(entity.file).offset_data

    def size(self, entity):
        if self._tar is None:
            return os.path.getsize(os.path.join(self.path, entity.file))
        return self._member(entity.file).size

    def open(self, entity):
        """A binary stream of the entity's file, read from the disk or the archive."""
        if self._tar is None:
            return open(os.path.join(self.path, entity.file), "rb")
        return self._tar.extractfile(self._member(entity.file))

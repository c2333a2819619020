"""Realistic SaaS export bundles (format v1, docs/migration-bundle.md), and broken ones.

``write_bundle`` writes a bundle of the nine entities a SaaS tenant exports, from a seed,
at any size: the same seed, sizes and revision give the same bytes. A higher
``revision`` is a newer export of the same tenant: every row of the older one is there,
one row in seven of the mutable entities changed, and a few rows more.

``CORRUPTIONS`` turns a good bundle into each broken variant the importer must refuse,
each with the words its error names. ``read_rows`` reads an entity's file back into
Python values, independently of the importer, to compare with the tables.

    .venv/bin/python -m tests.support.bundles OUT [--rows 1000] [--seed 7]
        [--revision 0] [--size transactions=1000000] [--tar]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import random
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

FORMAT = "tradehub-migration-bundle/1"
TENANT = "acme-trading"
EPOCH = dt.datetime(2021, 1, 4, 8, 0, tzinfo=dt.timezone.utc)
CURRENCIES = ("EUR", "USD", "GBP", "CHF")
FIRST = ("Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hiro", "Ines")
LAST = ("Okafor", "Müller", "Smith", "Ivanova", "García", "Nakamura", "O'Brien")
COMPANIES = ("Nordwind GmbH", "Blue Harbor Ltd", "Sol y Mar S.A.", "Kettle & Co")
WORDS = ("steel", "bolt", "organic", "cotton", "valve", "premium", "eco", "pack")


@dataclass(frozen=True)
class EntityDef:
    name: str
    hub: str
    format: str
    columns: tuple[tuple[str, str, bool], ...]  # name, type, nullable
    primary_key: tuple[str, ...]
    row: Callable[[random.Random, int], tuple]
    #: Rebuilds row i of a newer export from the older row (None: never changes).
    mutate: Callable[[tuple, int], tuple] | None = None


def _money(rng: random.Random, high: int) -> decimal.Decimal:
    return decimal.Decimal(rng.randrange(1, high)).scaleb(-2)


def _time(seconds: int) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=seconds)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _product(rng, i):
    words = " ".join(rng.choice(WORDS) for _ in range(2))
    description = rng.choice(
        (
            None,
            f"{words.title()}, sold by the box",
            'Says "robust", 12" wide\nTwo lines',
        )
    )
    return (
        f"SKU-{i:07d}",
        f"{words.title()} {i}",
        description,
        _money(rng, 500_000),
        rng.choice(CURRENCIES),
        rng.random() < 0.8,
        _time(i * 61),
    )


def _contact(rng, i):
    name = _name(rng)
    email = f"{name.split()[0].lower()}.{i}@example.com"
    return (
        _uuid(rng),
        name,
        email,
        rng.choice((None, f"+44 20 7946 {i % 10000:04d}")),
        rng.choice((None, *COMPANIES)),
        rng.random() < 0.4,
        _time(i * 97),
    )


def _campaign(rng, i):
    start = (EPOCH + dt.timedelta(days=i % 900)).date()
    return (
        i + 1,
        f"{rng.choice(('Spring', 'Summer', 'Autumn', 'Winter'))} push {i}",
        rng.choice(("email", "sms", "social", "web", "print")),
        start,
        rng.choice((None, start + dt.timedelta(days=rng.randrange(7, 60)))),
        rng.choice((None, _money(rng, 10_000_000))),
        {
            "segments": [rng.choice(WORDS), rng.choice(WORDS)],
            "ab_test": rng.random() < 0.3,
        },
    )


def _order(rng, i):
    return (
        f"ORD-{i:08d}",
        f"CUST-{rng.randrange(1, 50_000):06d}",
        rng.choice(("pending", "confirmed", "fulfilled", "cancelled")),
        _money(rng, 2_000_000),
        rng.choice(CURRENCIES),
        _time(i * 43),
    )


def _forecast(rng, i):
    week = (EPOCH + dt.timedelta(weeks=i % 104)).date()
    return (f"SKU-{i // 104:07d}", week, rng.randrange(0, 5_000))


def _shipment(rng, i):
    shipped = rng.random() < 0.85
    return (
        f"SHP-{i:08d}",
        f"ORD-{rng.randrange(0, max(i, 1)):08d}",
        rng.choice(("DHL", "UPS", "La Poste", "DPD")),
        f"TRK{rng.getrandbits(40):012d}" if shipped else None,
        rng.randrange(50, 80_000),
        _time(i * 53 + 3600) if shipped else None,
    )


def _ticket(rng, i):
    return (
        i + 1,
        rng.choice(("Late delivery", "Wrong size", "Invoice copy", "Café order")),
        f"Hello,\nmy order ORD-{i:08d} has a problem: {rng.choice(WORDS)}.\n"
        f'Regards, "{_name(rng)}"',
        f"requester{i}@example.org",
        rng.choice(("low", "normal", "high", "urgent")),
        rng.choice(("open", "pending", "resolved", "closed")),
        _time(i * 71),
    )


def _transaction(rng, i):
    return (
        i + 1,
        f"ACC-{rng.randrange(1, 20_000):06d}",
        rng.choice(("sale", "refund", "payout", "fee")),
        _money(rng, 10_000_000),
        rng.choice(CURRENCIES),
        _time(i * 7),
        rng.choice((None, f"INV-{i:09d}")),
    )


def _document(rng, i):
    issued = (EPOCH + dt.timedelta(days=i % 1000)).date()
    return (
        _uuid(rng),
        f"SUP-{rng.randrange(1, 3_000):05d}",
        rng.choice(("iso9001", "reach", "rohs", "insurance", "w9")),
        issued,
        rng.choice((None, issued + dt.timedelta(days=365))),
        hashlib.sha256(f"doc-{i}".encode()).hexdigest(),
        {"pages": rng.randrange(1, 40), "language": rng.choice(("en", "de", "fr"))},
    )


def _bump(
    index: int, value: Callable[[tuple], object]
) -> Callable[[tuple, int], tuple]:
    def mutate(row: tuple, revision: int) -> tuple:
        return (*row[:index], value(row, revision), *row[index + 1 :])

    return mutate


TEXT, INT, DEC, BOOL = "text", "integer", "decimal", "boolean"
ENTITIES: tuple[EntityDef, ...] = (
    EntityDef(
        "products",
        "content",
        "csv",
        (
            ("sku", TEXT, False),
            ("name", TEXT, False),
            ("description", TEXT, True),
            ("price", DEC, False),
            ("currency", TEXT, False),
            ("published", BOOL, False),
            ("updated_at", "timestamp", False),
        ),
        ("sku",),
        _product,
        _bump(3, lambda row, r: row[3] + r),
    ),
    EntityDef(
        "contacts",
        "contacts",
        "ndjson",
        (
            ("contact_id", "uuid", False),
            ("full_name", TEXT, False),
            ("email", TEXT, False),
            ("phone", TEXT, True),
            ("company", TEXT, True),
            ("marketing_opt_in", BOOL, False),
            ("created_at", "timestamp", False),
        ),
        ("contact_id",),
        _contact,
        _bump(5, lambda row, r: not row[5]),
    ),
    EntityDef(
        "campaigns",
        "campaigns",
        "ndjson",
        (
            ("campaign_id", INT, False),
            ("name", TEXT, False),
            ("channel", TEXT, False),
            ("starts_on", "date", False),
            ("ends_on", "date", True),
            ("budget", DEC, True),
            ("audience", "json", False),
        ),
        ("campaign_id",),
        _campaign,
        _bump(6, lambda row, r: {**row[6], "revision": r}),
    ),
    EntityDef(
        "orders",
        "demand",
        "csv",
        (
            ("order_id", TEXT, False),
            ("customer_ref", TEXT, False),
            ("status", TEXT, False),
            ("total", DEC, False),
            ("currency", TEXT, False),
            ("placed_at", "timestamp", False),
        ),
        ("order_id",),
        _order,
        _bump(2, lambda row, r: "fulfilled" if row[2] != "fulfilled" else "cancelled"),
    ),
    EntityDef(
        "demand_forecasts",
        "demand",
        "csv",
        (("sku", TEXT, False), ("week_start", "date", False), ("quantity", INT, False)),
        ("sku", "week_start"),
        _forecast,
        _bump(2, lambda row, r: row[2] + r),
    ),
    EntityDef(
        "shipments",
        "shipping",
        "csv",
        (
            ("shipment_id", TEXT, False),
            ("order_id", TEXT, False),
            ("carrier", TEXT, False),
            ("tracking_number", TEXT, True),
            ("weight_grams", INT, False),
            ("shipped_at", "timestamp", True),
        ),
        ("shipment_id",),
        _shipment,
        _bump(4, lambda row, r: row[4] + r),
    ),
    EntityDef(
        "tickets",
        "services",
        "ndjson",
        (
            ("ticket_id", INT, False),
            ("subject", TEXT, False),
            ("body", TEXT, False),
            ("requester_email", TEXT, False),
            ("priority", TEXT, False),
            ("status", TEXT, False),
            ("opened_at", "timestamp", False),
        ),
        ("ticket_id",),
        _ticket,
        _bump(5, lambda row, r: "closed"),
    ),
    EntityDef(
        "transactions",
        "demand",
        "csv",
        (
            ("txn_id", INT, False),
            ("account_ref", TEXT, False),
            ("kind", TEXT, False),
            ("amount", DEC, False),
            ("currency", TEXT, False),
            ("booked_at", "timestamp", False),
            ("reference", TEXT, True),
        ),
        ("txn_id",),
        _transaction,
        None,  # history is never rewritten; a newer export only adds rows
    ),
    EntityDef(
        "compliance_documents",
        "sourcing",
        "ndjson",
        (
            ("document_id", "uuid", False),
            ("supplier_ref", TEXT, False),
            ("kind", TEXT, False),
            ("issued_on", "date", False),
            ("expires_on", "date", True),
            ("file_sha256", TEXT, False),
            ("metadata", "json", False),
        ),
        ("document_id",),
        _document,
        _bump(4, lambda row, r: row[3] + dt.timedelta(days=365 * (r + 1))),
    ),
)
BY_NAME = {entity.name: entity for entity in ENTITIES}


def rows_of(
    entity: EntityDef, count: int, seed: int, revision: int = 0
) -> Iterator[tuple]:
    """The entity's rows in a given export: ``count`` rows, plus 1 % more per revision."""
    rng = random.Random(f"{seed}:{entity.name}")
    total = count + (count // 100 + 1) * revision if revision else count
    for i in range(total):
        row = entity.row(rng, i)
        if revision and entity.mutate and i < count and i % 7 == revision % 7:
            row = entity.mutate(row, revision)
        yield row


def _csv_field(value: object) -> str:
    if value is None:
        return ""  # an unquoted empty field is NULL in COPY's CSV
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.datetime):
        text = value.isoformat().replace("+00:00", "Z")
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    if text == "" or any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_value(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


def _write_file(
    path: Path, entity: EntityDef, rows: Iterator[tuple]
) -> tuple[int, str]:
    """Write the entity's file; return its row count and SHA-256."""
    digest = hashlib.sha256()
    count = 0
    names = [c[0] for c in entity.columns]
    with path.open("wb") as handle:
        buffer: list[str] = []
        if entity.format == "csv":
            buffer.append(",".join(names) + "\n")
        for row in rows:
            if entity.format == "csv":
                buffer.append(",".join(_csv_field(v) for v in row) + "\n")
            else:
                doc = {n: _json_value(v) for n, v in zip(names, row, strict=True)}
                buffer.append(json.dumps(doc, ensure_ascii=False) + "\n")
            count += 1
            if len(buffer) >= 4096:
                data = "".join(buffer).encode()
                digest.update(data)
                handle.write(data)
                buffer.clear()
        data = "".join(buffer).encode()
        digest.update(data)
        handle.write(data)
    return count, digest.hexdigest()


def write_bundle(
    out: Path,
    rows: int = 100,
    seed: int = 7,
    revision: int = 0,
    sizes: dict[str, int] | None = None,
    entities: list[str] | None = None,
    tenant: str = TENANT,
    tar: bool = False,
) -> Path:
    """Write a bundle directory at *out* (and return it, or the ``.tar.gz`` beside it).

    *rows* per entity unless *sizes* names another count; *entities* picks a subset.
    """
    out.mkdir(parents=True, exist_ok=True)
    chosen = [BY_NAME[name] for name in entities] if entities else list(ENTITIES)
    items = []
    for entity in chosen:
        count = (sizes or {}).get(entity.name, rows)
        file = f"{entity.name}.{'csv' if entity.format == 'csv' else 'ndjson'}"
        written, digest = _write_file(
            out / file, entity, rows_of(entity, count, seed, revision)
        )
        items.append(
            {
                "name": entity.name,
                "hub": entity.hub,
                "file": file,
                "format": entity.format,
                "columns": [
                    {"name": n, "type": t, "nullable": nullable}
                    for n, t, nullable in entity.columns
                ],
                "primary_key": list(entity.primary_key),
                "rows": written,
                "sha256": digest,
            }
        )
    exported = EPOCH + dt.timedelta(days=1000 + revision)
    manifest = {
        "format": FORMAT,
        "source_tenant": tenant,
        "exported_at": exported.isoformat().replace("+00:00", "Z"),
        "entities": items,
    }
    write_manifest(out, manifest)
    if not tar:
        return out
    archive = out.with_name(out.name + ".tar.gz")
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(out, arcname=out.name)
    return archive


def read_manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def write_manifest(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _entity_of(manifest: dict, name: str) -> dict:
    return next(e for e in manifest["entities"] if e["name"] == name)


def _rewrite(bundle: Path, name: str, edit: Callable[[list[str]], list[str]]) -> None:
    """Edit an entity's file line by line and update the manifest to match it, so
    that the edit is the bundle's only problem."""
    manifest = read_manifest(bundle)
    entity = _entity_of(manifest, name)
    path = bundle / entity["file"]
    lines = path.read_text().splitlines(keepends=True)
    lines = edit(lines)
    data = "".join(lines).encode()
    path.write_bytes(data)
    entity["sha256"] = hashlib.sha256(data).hexdigest()
    write_manifest(bundle, manifest)


# Each corruption breaks one CSV entity of a good bundle (``orders``, rows >= 10) and
# returns what the refusal must name: (entity, words of the message).
def _bad_checksum(bundle: Path) -> tuple[str, str]:
    path = bundle / "orders.csv"
    data = bytearray(path.read_bytes())
    # One digit of a customer reference: still a valid row, only the checksum tells.
    at = data.index(b"ORD-00000003,CUST-") + len("ORD-00000003,CUST-")
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    path.write_bytes(bytes(data))
    return "orders", "checksum mismatch"


def _missing_column(bundle: Path) -> tuple[str, str]:
    def drop_status(lines: list[str]) -> list[str]:
        rows = list(csv.reader(io.StringIO("".join(lines))))
        index = rows[0].index("status")
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(
            [r[:index] + r[index + 1 :] for r in rows]
        )
        return [out.getvalue()]

    _rewrite(bundle, "orders", drop_status)
    return "orders", "line 1, column status: declared in the manifest but missing"


def _wrong_type(bundle: Path) -> tuple[str, str]:
    def bad_total(lines: list[str]) -> list[str]:
        fields = lines[5].split(",")
        fields[3] = "twelve"
        lines[5] = ",".join(fields)
        return lines

    _rewrite(bundle, "orders", bad_total)
    return "orders", "line 6, column total: invalid input syntax for type numeric"


def _duplicate_key(bundle: Path) -> tuple[str, str]:
    def repeat(lines: list[str]) -> list[str]:
        return [*lines, lines[4]]

    _rewrite(bundle, "orders", repeat)
    manifest = read_manifest(bundle)
    _entity_of(manifest, "orders")["rows"] += 1
    write_manifest(bundle, manifest)
    return "orders", "duplicate primary key (order_id=ORD-00000003)"


def _truncated(bundle: Path) -> tuple[str, str]:
    path = bundle / "orders.csv"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "orders", "checksum mismatch"


def _unknown_hub(bundle: Path) -> tuple[str, str]:
    manifest = read_manifest(bundle)
    _entity_of(manifest, "orders")["hub"] = "billing"
    write_manifest(bundle, manifest)
    return "orders", "hub 'billing' is unknown"


CORRUPTIONS: dict[str, Callable[[Path], tuple[str, str]]] = {
    "bad-checksum": _bad_checksum,
    "missing-column": _missing_column,
    "wrong-type": _wrong_type,
    "duplicate-primary-key": _duplicate_key,
    "truncated-file": _truncated,
    "unknown-hub": _unknown_hub,
}


def corrupt_copy(good: Path, out: Path, corruption: str) -> tuple[Path, str, str]:
    """Copy a good bundle directory to *out* and break it; return (out, entity, words)."""
    shutil.copytree(good, out)
    entity, words = CORRUPTIONS[corruption](out)
    return out, entity, words


# -- reading a bundle back, independently of the importer ---------------------------


def _parse(value: object, type_: str) -> object:
    if value is None:
        return None
    if type_ == "text":
        return value
    if type_ == "integer":
        return int(value)
    if type_ == "decimal":
        return decimal.Decimal(str(value))
    if type_ == "boolean":
        return value if isinstance(value, bool) else value == "true"
    if type_ == "date":
        return dt.date.fromisoformat(value)
    if type_ == "timestamp":
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if type_ == "uuid":
        return uuid.UUID(value)
    return value if not isinstance(value, str) else json.loads(value)


def read_rows(bundle: Path, name: str) -> dict[tuple, tuple]:
    """An entity's rows by primary key, as Python values, in column order."""
    entity = _entity_of(read_manifest(bundle), name)
    names = [c["name"] for c in entity["columns"]]
    types = [c["type"] for c in entity["columns"]]
    key = [names.index(k) for k in entity["primary_key"]]
    path = bundle / entity["file"]
    out: dict[tuple, tuple] = {}
    with path.open(newline="") as handle:
        if entity["format"] == "csv":
            reader = csv.reader(handle)
            header = next(reader)
            order = [header.index(n) for n in names]
            for fields in reader:
                # csv cannot tell "" (empty string) from an empty field (NULL); the
                # generator quotes empty strings, and writes no other empty field.
                raw = [fields[i] if fields[i] != "" else None for i in order]
                row = tuple(_parse(v, t) for v, t in zip(raw, types, strict=True))
                out[tuple(row[i] for i in key)] = row
        else:
            for line in handle:
                doc = json.loads(line)
                row = tuple(
                    _parse(doc[n], t) for n, t in zip(names, types, strict=True)
                )
                out[tuple(row[i] for i in key)] = row
    return out


def fingerprint(rows: dict[tuple, tuple]) -> str:
    """A SHA-256 of rows that does not depend on their order or on how a value was
    spelt (``12.5`` and ``12.50``, ``Z`` and ``+00:00``)."""

    def canon(value: object) -> str:
        if isinstance(value, decimal.Decimal):
            return format(value.normalize(), "f")
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.timezone.utc).isoformat()
        if isinstance(value, dict | list):
            return json.dumps(value, sort_keys=True)
        return repr(value)

    digest = hashlib.sha256()
    for key in sorted(rows, key=repr):
        digest.update("\x1f".join(canon(v) for v in rows[key]).encode() + b"\n")
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a SaaS export bundle (v1).")
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=1000, help="rows per entity")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--revision", type=int, default=0, help="a newer export")
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        help="ENTITY=ROWS, e.g. transactions=1000000",
    )
    parser.add_argument("--entity", action="append", help="only these entities")
    parser.add_argument("--tar", action="store_true", help="also write OUT.tar.gz")
    args = parser.parse_args()
    sizes = {k: int(v) for k, v in (item.split("=", 1) for item in args.size)}
    print(
        write_bundle(
            args.out,
            args.rows,
            args.seed,
            args.revision,
            sizes,
            args.entity,
            tar=args.tar,
        )
    )


if __name__ == "__main__":
    main()

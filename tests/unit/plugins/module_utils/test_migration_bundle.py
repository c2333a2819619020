"""The export bundle's manifest and files, without a database."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import shutil
import tarfile
from pathlib import Path

import pytest
from ansible_collections.tamyla.tradehub.plugins.module_utils.catalog import HUBS
from ansible_collections.tamyla.tradehub.plugins.module_utils.migration_bundle import (
    BUNDLE_FORMAT,
    COLUMN_TYPES,
    FORMATS,
    Bundle,
    BundleError,
    HashingReader,
    Problem,
    parse_manifest,
    scan_csv,
)

from tests.support.bundles import (
    ENTITIES,
    fingerprint,
    read_manifest,
    read_rows,
    write_bundle,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("bundle") / "export", rows=25)


def manifest_bytes(doc: dict) -> bytes:
    return json.dumps(doc).encode()


def problems_of(doc: dict, allowed=None) -> list[str]:
    with pytest.raises(BundleError) as refused:
        parse_manifest(manifest_bytes(doc), HUBS, allowed)
    return [str(problem) for problem in refused.value.problems]


def test_a_generated_manifest_parses(bundle: Path):
    data = (bundle / "manifest.json").read_bytes()

    manifest = parse_manifest(data, HUBS)

    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest.source_tenant == "acme-trading"
    assert manifest.exported_at.tzinfo is not None
    assert [e.name for e in manifest.entities] == [e.name for e in ENTITIES]
    assert manifest.total_rows == 25 * len(ENTITIES)
    forecasts = next(e for e in manifest.entities if e.name == "demand_forecasts")
    assert forecasts.primary_key == ("sku", "week_start")
    assert forecasts.columns[1].sql_type == "date"


def test_the_generator_is_deterministic(tmp_path: Path):
    first = write_bundle(tmp_path / "a", rows=30, seed=3)
    second = write_bundle(tmp_path / "b", rows=30, seed=3)
    other = write_bundle(tmp_path / "c", rows=30, seed=4)

    assert (first / "manifest.json").read_bytes() == (
        second / "manifest.json"
    ).read_bytes()
    assert (first / "manifest.json").read_bytes() != (
        other / "manifest.json"
    ).read_bytes()
    for entity in read_manifest(first)["entities"]:
        data = (first / entity["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entity["sha256"]
        assert len(read_rows(first, entity["name"])) == entity["rows"] == 30


def test_a_newer_revision_keeps_every_key_and_changes_some_rows(tmp_path: Path):
    old = write_bundle(tmp_path / "old", rows=70, entities=["orders", "transactions"])
    new = write_bundle(
        tmp_path / "new", rows=70, revision=1, entities=["orders", "transactions"]
    )

    old_orders, new_orders = read_rows(old, "orders"), read_rows(new, "orders")
    assert old_orders.keys() < new_orders.keys()
    assert sum(old_orders[k] != new_orders[k] for k in old_orders) == 10
    old_history = read_rows(old, "transactions")
    assert all(read_rows(new, "transactions")[k] == v for k, v in old_history.items())
    assert fingerprint(old_orders) != fingerprint(new_orders)


def test_every_manifest_problem_is_reported_at_once(bundle: Path):
    doc = read_manifest(bundle)
    broken = copy.deepcopy(doc)
    broken["format"] = "tradehub-migration-bundle/2"
    broken["exported_at"] = "2026-11-30 12:00"
    orders = next(e for e in broken["entities"] if e["name"] == "orders")
    orders["hub"] = "billing"
    orders["file"] = "../etc/passwd"
    orders["columns"][3]["type"] = "money"
    products = next(e for e in broken["entities"] if e["name"] == "products")
    products["primary_key"] = ["code"]
    products["sha256"] = "ABC"
    products["format"] = "xlsx"
    contacts = next(e for e in broken["entities"] if e["name"] == "contacts")
    contacts["columns"].append(dict(contacts["columns"][0]))
    contacts["rows"] = -1

    problems = problems_of(broken)

    assert problems == [
        "format 'tradehub-migration-bundle/2' is not supported: expected "
        "'tradehub-migration-bundle/1'",
        "'exported_at' must be an RFC 3339 time with its offset",
        "entity products: format 'xlsx' is not one of csv, ndjson",
        "entity products, column code: primary key column is not declared",
        "entity products: 'sha256' must be 64 lower-case hexadecimal digits",
        "entity contacts, column contact_id: column declared twice",
        "entity contacts: 'rows' must be an integer >= 0",
        "entity orders: hub 'billing' is unknown: expected one of " + ", ".join(HUBS),
        "entity orders: file '../etc/passwd' is not a relative path inside the bundle",
        "entity orders, column total: type 'money' is not one of text, integer, "
        "decimal, boolean, date, timestamp, uuid, json",
    ]


def test_a_hub_outside_the_deployment_is_refused(bundle: Path):
    problems = problems_of(read_manifest(bundle), allowed=["content", "demand"])

    assert (
        "entity contacts: hub 'contacts' is not installed in this deployment"
        in (problems[0])
    )
    assert len(problems) == len(
        [e for e in ENTITIES if e.hub not in ("content", "demand")]
    )


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"{", "manifest.json is not valid JSON"),
        (b"[]", "manifest.json is not a JSON object"),
        (
            b'{"format": "tradehub-migration-bundle/1"}',
            "'entities' must be a non-empty list",
        ),
    ],
)
def test_a_manifest_that_is_not_one_is_refused(data: bytes, words: str):
    with pytest.raises(BundleError, match=words):
        parse_manifest(data, HUBS)


def test_key_columns_are_never_null(bundle: Path):
    doc = read_manifest(bundle)
    orders = next(e for e in doc["entities"] if e["name"] == "orders")
    orders["columns"][0]["nullable"] = True

    manifest = parse_manifest(manifest_bytes(doc), HUBS)

    parsed = next(e for e in manifest.entities if e.name == "orders")
    assert parsed.columns[0].nullable is False


def test_a_tar_gz_bundle_streams_its_files(bundle: Path, tmp_path: Path):
    archive = tmp_path / "export.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(bundle, arcname="acme-2026-11-30")

    with Bundle(str(archive)) as opened:
        manifest = parse_manifest(opened.read_manifest(), HUBS)
        assert opened.missing_files(manifest) == []
        for entity in manifest.entities:
            with opened.open(entity) as raw:
                reader = HashingReader(raw)
                reader.drain(chunk_size=1000)
            assert reader.hexdigest() == entity.sha256
            assert reader.bytes_read == opened.size(entity)
        positions = [opened.position(entity) for entity in manifest.entities]
    assert min(positions) > 0
    assert len(set(positions)) == len(positions)
    with Bundle(str(bundle)) as opened:
        assert {opened.position(entity) for entity in manifest.entities} == {0}


def test_a_missing_file_and_a_bad_archive_are_named(bundle: Path, tmp_path: Path):
    copied = tmp_path / "copy"
    shutil.copytree(bundle, copied)
    (copied / "products.csv").unlink()
    (tmp_path / "broken.tar.gz").write_bytes(b"not gzip")

    with Bundle(str(copied)) as opened:
        manifest = parse_manifest(opened.read_manifest(), HUBS)
        problems = opened.missing_files(manifest)
    with pytest.raises(BundleError, match=r"is not a readable \.tar\.gz"):
        Bundle(str(tmp_path / "broken.tar.gz")).__enter__()
    with pytest.raises(BundleError, match="neither a bundle directory"):
        Bundle(str(tmp_path / "absent")).__enter__()

    assert [str(p) for p in problems] == [
        "entity products: file products.csv is not in the bundle"
    ]


def test_problems_read_as_their_location():
    assert (
        str(Problem("bad", "orders", 6, "total"))
        == "entity orders, line 6, column total: bad"
    )
    assert str(Problem("bad")) == "bad"
    assert Problem("bad", "orders").as_dict() == {
        "entity": "orders",
        "line": None,
        "column": None,
        "message": "bad",
    }


def test_the_format_document_lists_every_column_type_and_format():
    doc = (
        Path(__file__).resolve().parents[4] / "docs" / "migration-bundle.md"
    ).read_text()
    section = doc.split("### Column types", 1)[1].split("###", 1)[0]

    documented = re.findall(r"^\| `(\w+)` \| `(\w+)`", section, re.MULTILINE)

    assert [name for name, _ in documented] == list(COLUMN_TYPES)
    for name, sql_type in documented:
        assert COLUMN_TYPES[name].startswith(
            sql_type.replace("timestamptz", "timestamp")
        )
    assert f'"format": "{BUNDLE_FORMAT}"' in doc
    assert all(f"`{fmt}`" in doc for fmt in FORMATS)


def test_the_second_pass_lists_every_bad_field_by_record(bundle: Path):
    manifest = parse_manifest((bundle / "manifest.json").read_bytes(), HUBS)
    products = next(e for e in manifest.entities if e.name == "products")
    data = (
        "\ufeffsku,name,description,price,currency,published,updated_at\n"
        'A-1,One,"two\nlines",12.50,EUR,true,2026-01-01T00:00:00Z\n'
        "A-2,Two,,twelve,EUR,maybe,2026-01-01T00:00:00Z\n"
        "A-3,Three,,,EUR,false\n"
        "A-4,Four,,1,EUR,false,2026-01-01T00:00:00Z\n"
    ).encode()

    problems = scan_csv(io.BytesIO(data), products, limit=10)

    assert [str(p) for p in problems] == [
        "entity products, line 3, column price: invalid input syntax for type "
        'numeric: "twelve"',
        "entity products, line 3, column published: invalid input syntax for type "
        'boolean: "maybe"',
        "entity products, line 4: 6 fields, the header names 7",
    ]
    assert len(scan_csv(io.BytesIO(data), products, limit=1)) == 1

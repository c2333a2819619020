"""The business API (§4.5) and its events (§9), for every hub, and every refusal.

A refused request must change nothing: each refusal case counts the rows and the
stream entries before and after.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.hub import HubProcess
from tests.support.lab import HubDatabase, Lab

# One realistic new row per hub, written the way a client of each hub would.
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "sourcing": (
        "suppliers",
        {
            "name": "Nordic Timber AB",
            "country_code": "SE",
            "contact_email": "orders@nordictimber.example",
            "rating": 4,
        },
    ),
    "content": (
        "products",
        {
            "sku": "OAK-TABLE-180",
            "name": "Oak dining table, 180 cm",
            "description": "Solid oak, oiled finish.",
            "price_cents": 129900,
            "currency": "EUR",
            "published": True,
        },
    ),
    "contacts": (
        "contacts",
        {
            "full_name": "Amira Haddad",
            "email": "amira.haddad@example.com",
            "phone": "+49 30 1234567",
            "company": "Haddad Interiors",
        },
    ),
    "campaigns": (
        "campaigns",
        {
            "name": "Spring furniture fair",
            "channel": "email",
            "starts_on": "2026-03-01",
            "ends_on": "2026-03-31",
            "budget_cents": 500000,
        },
    ),
    "demand": (
        "orders",
        {
            "customer_ref": "PO-2026-0117",
            "total_cents": 259800,
            "currency": "EUR",
            "placed_at": "2026-02-14T09:30:00Z",
        },
    ),
    "shipping": (
        "shipments",
        {
            "order_ref": "PO-2026-0117",
            "carrier": "DHL Freight",
            "tracking_number": "JD014600003SE",
            "weight_grams": 84000,
            "shipped_at": "2026-02-16T07:05:00Z",
        },
    ),
    "services": (
        "tickets",
        {
            "subject": "Table arrived with a scratch",
            "body": "The left leg has a 3 cm scratch. Photos attached to the order.",
            "requester_email": "amira.haddad@example.com",
            "priority": "high",
        },
    ),
}
SINGULAR = {
    "suppliers": "supplier",
    "products": "product",
    "contacts": "contact",
    "campaigns": "campaign",
    "orders": "order",
    "shipments": "shipment",
    "tickets": "ticket",
}


def is_rfc3339_utc(text: str) -> bool:
    return text.endswith("Z") and dt.datetime.fromisoformat(text).utcoffset() == (
        dt.timedelta(0)
    )


@pytest.mark.parametrize("hub_name", list(SAMPLES))
def test_created_row_is_readable_and_announced(
    lab: Lab, start_hub: Any, hub_name: str
) -> None:
    entity, sample = SAMPLES[hub_name]
    db = lab.database(hub_name)
    env = lab.env(db)
    lab.migrated(env)
    lab.clear_events(hub_name)
    hub = start_hub(env)
    client = hub.client()
    assert client.get("/readyz").status_code == 200

    created = client.post(f"/api/v1/{entity}", json=sample)

    assert created.status_code == 201, created.text
    row = created.json()
    item_id = uuid.UUID(row["id"])
    assert created.headers["location"] == f"/api/v1/{entity}/{item_id}"
    assert {k: row[k] for k in sample} == sample
    assert is_rfc3339_utc(row["created_at"])

    fetched = client.get(created.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == row

    listed = client.get(f"/api/v1/{entity}")
    assert listed.status_code == 200
    assert listed.json() == {"items": [row], "limit": 50, "offset": 0}

    events = lab.events(hub_name)
    assert len(events) == 1
    _, fields = events[0]
    assert set(fields) == {"type", "id", "hub", "entity_id", "occurred_at", "data"}
    assert fields["type"] == f"{SINGULAR[entity]}.created"
    assert fields["hub"] == hub_name
    assert fields["entity_id"] == row["id"]
    uuid.UUID(fields["id"])
    assert is_rfc3339_utc(fields["occurred_at"])
    assert json.loads(fields["data"]) == row
    metrics = client.get("/metrics").text
    assert (
        f'tradehub_events_published_total{{hub="{hub_name}",'
        f'type="{SINGULAR[entity]}.created"}} 1.0'
    ) in metrics


def test_list_is_newest_first_and_pages(ready_content_hub: Any) -> None:
    hub, _ = ready_content_hub
    client = hub.client()
    ids = []
    for n in range(5):
        response = client.post(
            "/api/v1/products",
            json={
                "sku": f"SKU-{n}",
                "name": f"Item {n}",
                "price_cents": n,
                "currency": "EUR",
            },
        )
        assert response.status_code == 201
        ids.append(response.json()["id"])

    page = client.get("/api/v1/products", params={"limit": 2, "offset": 1}).json()

    assert page["limit"] == 2 and page["offset"] == 1
    assert [item["id"] for item in page["items"]] == [ids[3], ids[2]]
    everything = client.get("/api/v1/products", params={"limit": 500}).json()
    assert [item["id"] for item in everything["items"]] == ids[::-1]


# -- refusals --------------------------------------------------------------------------

MAX_BODY = 2048
VALID = {"sku": "OK-1", "name": "Valid", "price_cents": 100, "currency": "EUR"}


@pytest.fixture(scope="module")
def api_hub(
    lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HubProcess, HubDatabase]]:
    db = lab.database("content")
    env = lab.env(db, TRADEHUB_MAX_BODY_BYTES=str(MAX_BODY))
    lab.migrated(env)
    hub = HubProcess(env, Path(tmp_path_factory.mktemp("api-hub"))).start()
    yield hub, db
    hub.stop()


def chunks(data: bytes, size: int = 512) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


JSON = {"content-type": "application/json"}
REFUSALS: list[Any] = [
    pytest.param(
        "POST",
        {"content": b'{"sku": "A",', "headers": JSON},
        400,
        "invalid_json",
        id="malformed-json",
    ),
    pytest.param(
        "POST", {"content": b"[1, 2]", "headers": JSON}, 400, "invalid_json", id="array"
    ),
    pytest.param(
        "POST",
        {"content": b'"text"', "headers": JSON},
        400,
        "invalid_json",
        id="string",
    ),
    pytest.param(
        "POST", {"content": b"", "headers": JSON}, 400, "invalid_json", id="empty-body"
    ),
    pytest.param(
        "POST",
        {
            "content": b'{"sku": "A", "name": "B", "price_cents": NaN, "currency": "EUR"}',
            "headers": JSON,
        },
        400,
        "invalid_json",
        id="nan-literal",
    ),
    pytest.param(
        "POST",
        {"content": b'{"sku": "\xff"}', "headers": JSON},
        400,
        "invalid_json",
        id="not-utf8",
    ),
    pytest.param(
        "POST",
        {"content": "\ufeff".encode() + json.dumps(VALID).encode(), "headers": JSON},
        400,
        "invalid_json",
        id="byte-order-mark",
    ),
    pytest.param(
        "POST",
        {
            "content": b'{"sku": "\\ud800", "name": "B", "price_cents": 1, "currency": "EUR"}',
            "headers": JSON,
        },
        400,
        "invalid_json",
        id="lone-surrogate",
    ),
    pytest.param(
        "POST",
        {"json": {**VALID, "colour": "red"}},
        422,
        "validation_failed",
        id="unknown-field",
    ),
    pytest.param(
        "POST",
        {"json": {k: v for k, v in VALID.items() if k != "sku"}},
        422,
        "validation_failed",
        id="missing-field",
    ),
    pytest.param(
        "POST",
        {"json": {**VALID, "price_cents": "100"}},
        422,
        "validation_failed",
        id="wrong-type",
    ),
    pytest.param(
        "POST",
        {"json": {**VALID, "published": 1}},
        422,
        "validation_failed",
        id="int-for-bool",
    ),
    pytest.param(
        "POST",
        {"json": {**VALID, "price_cents": -1}},
        422,
        "validation_failed",
        id="below-minimum",
    ),
    pytest.param(
        "POST",
        {"json": {**VALID, "name": "x" * 201}},
        422,
        "validation_failed",
        id="too-long",
    ),
    pytest.param(
        "POST",
        {"json": {**VALID, "currency": "euro"}},
        422,
        "validation_failed",
        id="bad-pattern",
    ),
    pytest.param(
        "POST",
        {"json": {**VALID, "name": "nul\u0000byte"}},
        422,
        "validation_failed",
        id="nul-character",
    ),
    pytest.param(
        "POST",
        {"json": {**VALID, "name": None}},
        422,
        "validation_failed",
        id="null-required",
    ),
    pytest.param(
        "POST",
        {"json": {**VALID, "description": "d" * (MAX_BODY + 10)}},
        413,
        "body_too_large",
        id="oversize-content-length",
    ),
    pytest.param(
        "POST",
        {
            "content": chunks(
                json.dumps({**VALID, "description": "d" * (MAX_BODY * 2)}).encode()
            ),
            "headers": JSON,
        },
        413,
        "body_too_large",
        id="oversize-chunked",
    ),
    pytest.param(
        "POST",
        {
            "content": json.dumps(VALID).encode(),
            "headers": {"content-type": "text/plain"},
        },
        415,
        "unsupported_media_type",
        id="text-plain",
    ),
    pytest.param(
        "POST",
        {"content": json.dumps(VALID).encode()},
        415,
        "unsupported_media_type",
        id="no-content-type",
    ),
    pytest.param(
        "POST",
        {"data": {"sku": "A"}},
        415,
        "unsupported_media_type",
        id="form-encoded",
    ),
]


def snapshot(lab: Lab, db: HubDatabase) -> tuple[int, int]:
    with lab.redis() as client:
        return db.count_rows("products"), client.xlen("tradehub:content:events")


@pytest.mark.parametrize(("method", "kwargs", "status", "code"), REFUSALS)
def test_refused_post_changes_nothing(
    api_hub: tuple[HubProcess, HubDatabase],
    lab: Lab,
    method: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    hub, db = api_hub
    before = snapshot(lab, db)

    with hub.client() as client:
        response = client.request(method, "/api/v1/products", **kwargs)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert snapshot(lab, db) == before


@pytest.mark.parametrize(
    ("payload", "field", "problem"),
    [
        ({**VALID, "colour": "red"}, "colour", "unknown field"),
        ({k: v for k, v in VALID.items() if k != "sku"}, "sku", "field required"),
        ({**VALID, "price_cents": "100"}, "price_cents", "valid integer"),
    ],
    ids=["unknown", "missing", "wrong-type"],
)
def test_validation_details_name_the_field(
    api_hub: tuple[HubProcess, HubDatabase], payload: dict, field: str, problem: str
) -> None:
    hub, _ = api_hub

    with hub.client() as client:
        response = client.post("/api/v1/products", json=payload)

    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert any(d["field"] == field and problem in d["problem"] for d in details), (
        details
    )


def test_oversize_chunked_body_on_a_raw_socket_is_refused(
    api_hub: tuple[HubProcess, HubDatabase], lab: Lab
) -> None:
    """A client that streams without Content-Length is cut off at the limit."""
    hub, db = api_hub
    before = snapshot(lab, db)
    chunk = b"x" * 1024
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/products HTTP/1.1\r\nHost: hub\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(3):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # The limit is passed; the hub answers without waiting for the last chunk.
        head = sock.recv(4096)

    assert head.startswith(b"HTTP/1.1 413 ")
    assert snapshot(lab, db) == before


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "code"),
    [
        ("GET", "/api/v1/products/not-a-uuid", None, 400, "invalid_parameter"),
        ("GET", "/api/v1/products/12345", None, 400, "invalid_parameter"),
        ("GET", f"/api/v1/products/{uuid.uuid4()}", None, 404, "not_found"),
        ("GET", "/api/v1/products", {"limit": "0"}, 400, "invalid_parameter"),
        ("GET", "/api/v1/products", {"limit": "501"}, 400, "invalid_parameter"),
        ("GET", "/api/v1/products", {"limit": "ten"}, 400, "invalid_parameter"),
        ("GET", "/api/v1/products", {"offset": "-1"}, 400, "invalid_parameter"),
        ("GET", "/api/v1/orders", None, 404, "not_found"),
        ("GET", "/api/v1/products/", None, 404, "not_found"),
        ("DELETE", "/api/v1/products", None, 405, "method_not_allowed"),
        ("PUT", f"/api/v1/products/{uuid.uuid4()}", None, 405, "method_not_allowed"),
        ("POST", "/healthz", None, 405, "method_not_allowed"),
    ],
)
def test_bad_requests_get_the_error_shape(
    api_hub: tuple[HubProcess, HubDatabase],
    lab: Lab,
    method: str,
    path: str,
    params: dict[str, str] | None,
    status: int,
    code: str,
) -> None:
    hub, db = api_hub
    before = snapshot(lab, db)

    with hub.client() as client:
        response = client.request(method, path, params=params)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    if status == 405:
        assert "GET" in response.headers["allow"]
    assert snapshot(lab, db) == before


def test_refusals_leave_the_hub_serving(
    api_hub: tuple[HubProcess, HubDatabase],
) -> None:
    hub, _ = api_hub

    with hub.client() as client:
        response = client.post("/api/v1/products", json=VALID)

    assert response.status_code == 201

"""``/readyz`` and ``/healthz`` as the platform sees them when dependencies fail (§4.1-4.2).

Every hub here is a real ``tradehub-hub serve`` process against the real servers; an
outage is a stopped PostgreSQL or a Redis port nobody listens on.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx

from tests.support.hub import HubProcess
from tests.support.lab import Lab
from tests.support.services import PostgresServer, free_port


def readyz(hub: HubProcess) -> httpx.Response:
    return httpx.get(f"{hub.base_url}/readyz", timeout=10)


def wait_readyz(hub: HubProcess, status: int, timeout: float = 20.0) -> httpx.Response:
    """Poll /readyz until it answers *status*; return that response."""
    deadline = time.monotonic() + timeout
    while True:
        response = readyz(hub)
        if response.status_code == status:
            return response
        assert time.monotonic() < deadline, f"/readyz stayed {response.text}"
        time.sleep(0.2)


def metric_value(hub: HubProcess, series: str) -> float | None:
    for line in httpx.get(f"{hub.base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_ready_hub_reports_every_check(ready_content_hub: Any) -> None:
    hub, _ = ready_content_hub

    response = readyz(hub)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "ready"
    assert body["hub"] == "content"
    assert body["failing"] == []
    assert list(body["checks"]) == ["database", "event_bus", "schema", "license"]
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["schema"]["detail"] == "version 1"
    assert "days left" in body["checks"]["license"]["detail"]


def test_database_outage_and_recovery_without_restart(
    ready_content_hub: Any, postgres: PostgresServer, lab: Lab
) -> None:
    hub, db = ready_content_hub
    assert readyz(hub).status_code == 200
    password = lab.passwords["content"]

    postgres.stop()
    try:
        started = time.monotonic()
        response = wait_readyz(hub, 503)
        answered_in = time.monotonic() - started
        body = response.json()
        assert body["failing"] == ["database"]
        assert body["status"] == "not_ready"
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["database"]["detail"]
        assert body["checks"]["event_bus"]["ok"] is True
        # The schema did not change with the outage: its last known version stands.
        assert body["checks"]["schema"]["ok"] is True
        assert password not in response.text
        assert answered_in < 4.0, "readyz must answer within about 2 s"

        health = httpx.get(f"{hub.base_url}/healthz", timeout=5)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "hub": "content"}

        label = 'tradehub_dependency_up{dependency="database",hub="content"}'
        assert metric_value(hub, label) == 0.0

        refused = httpx.post(
            f"{hub.base_url}/api/v1/products",
            json={"sku": "X-1", "name": "X", "price_cents": 1, "currency": "EUR"},
            timeout=15,
        )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "dependency_unavailable"
    finally:
        postgres.start()

    body = wait_readyz(hub, 200).json()
    assert body["failing"] == []
    assert metric_value(hub, label) == 1.0
    assert hub.process is not None and hub.process.poll() is None
    assert db.count_rows("products") == 0, "the refused POST must leave no row"
    assert password not in hub.stdout() + hub.stderr()


def test_unreachable_event_bus_makes_the_hub_not_ready(
    lab: Lab, start_hub: Any
) -> None:
    db = lab.database("content")
    password = lab.passwords["content"]
    env = lab.env(
        db,
        TRADEHUB_EVENT_BUS_URL=f"redis://content:{password}@127.0.0.1:{free_port()}/0",
    )
    lab.migrated(env)
    hub = start_hub(env)

    started = time.monotonic()
    response = readyz(hub)

    assert time.monotonic() - started < 4.0
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["event_bus"]
    assert body["checks"]["event_bus"]["ok"] is False
    assert password not in response.text
    assert httpx.get(f"{hub.base_url}/healthz", timeout=5).status_code == 200

    # The database is the record: a write still succeeds, the lost event is counted.
    created = httpx.post(
        f"{hub.base_url}/api/v1/products",
        json={
            "sku": "NO-BUS",
            "name": "Unannounced",
            "price_cents": 1,
            "currency": "EUR",
        },
        timeout=15,
    )
    assert created.status_code == 201
    assert db.count_rows("products") == 1
    failures = (
        'tradehub_event_publish_failures_total{hub="content",type="product.created"}'
    )
    assert metric_value(hub, failures) == 1.0
    assert metric_value(hub, failures.replace("publish_failures", "published")) is None
    logged = hub.wait_for_log(lambda r: r["msg"].startswith("event not published"))
    assert logged["level"] == "error"
    assert logged["entity_id"] == created.json()["id"]
    assert logged["request_id"] == created.headers["x-request-id"]


def test_readyz_answers_in_about_2s_when_dependencies_hang(
    lab: Lab, start_hub: Any
) -> None:
    """A listener that never answers: connections open, then nothing comes back."""
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(64)
        port = black_hole.getsockname()[1]
        db = lab.database("content")
        env = lab.env(
            db,
            TRADEHUB_DATABASE_URL=f"postgresql://content:pw@127.0.0.1:{port}/x",
            TRADEHUB_EVENT_BUS_URL=f"redis://content:pw@127.0.0.1:{port}/0",
        )
        hub = start_hub(env)

        started = time.monotonic()
        response = readyz(hub)
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert 1.5 < elapsed < 3.5, elapsed
    assert response.json()["failing"] == ["database", "event_bus", "schema"]


def test_schema_check_fails_until_migrate_runs(lab: Lab, start_hub: Any) -> None:
    db = lab.database("sourcing")
    env = lab.env(db)
    hub = start_hub(env)

    body = readyz(hub).json()

    assert body["failing"] == ["schema"]
    assert "run tradehub-hub migrate" in body["checks"]["schema"]["detail"]
    assert "version 0" in body["checks"]["schema"]["detail"]

    lab.migrated(env)

    body = wait_readyz(hub, 200, timeout=5).json()
    assert body["checks"]["schema"] == {"ok": True, "detail": "version 1"}


def test_schema_newer_than_the_artifact_is_not_ready(lab: Lab, start_hub: Any) -> None:
    db = lab.database("campaigns")
    env = lab.env(db)
    lab.migrated(env)
    with db.admin() as conn:
        conn.execute(
            "INSERT INTO campaigns.tradehub_schema_migrations (version, name)"
            " VALUES (2, 'newer')"
        )
    hub = start_hub(env)

    body = readyz(hub).json()

    assert body["failing"] == ["schema"]
    assert "newer" in body["checks"]["schema"]["detail"]

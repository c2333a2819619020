"""Process behaviour (§8) and the operational endpoints (§4.3-4.4) of a running hub."""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import time
import uuid
from typing import Any

import httpx

from tests.support.hub import HubProcess, run_hub_command
from tests.support.lab import Lab
from tests.support.services import PostgresServer, free_port


def read_response(sock: socket.socket, timeout: float = 15.0) -> bytes:
    """Read until the server closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_sigterm_lets_the_request_in_flight_finish(lab: Lab, start_hub: Any) -> None:
    db = lab.database("content")
    env = lab.env(db)
    lab.migrated(env)
    hub = start_hub(env)
    body = json.dumps(
        {"sku": "DRAIN-1", "name": "In flight", "price_cents": 500, "currency": "EUR"}
    ).encode()
    half = len(body) // 2

    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/products HTTP/1.1\r\nHost: hub\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        sock.sendall(body[:half])
        # Another request answered means the event loop has read our headers too;
        # the app is now waiting for the rest of the body.
        assert httpx.get(f"{hub.base_url}/healthz", timeout=5).status_code == 200
        time.sleep(0.2)
        hub.send_signal(signal.SIGTERM)
        hub.wait_for_log(lambda r: r["msg"] == "Shutting down")
        time.sleep(0.3)
        # Draining: no new connections, but the open request goes on.
        try:
            socket.create_connection(("127.0.0.1", hub.port), timeout=1).close()
            refused = False
        except OSError:
            refused = True
        assert refused, "a draining hub must not accept new connections"
        sock.sendall(body[half:])
        response = read_response(sock)

    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 "), response
    row = json.loads(payload)
    assert row["sku"] == "DRAIN-1"
    assert hub.wait(timeout=20) == 0, hub.output()
    with db.admin() as conn:
        stored = conn.execute(
            "SELECT sku FROM content.products WHERE id = %s", [row["id"]]
        ).fetchone()
    assert stored == ("DRAIN-1",)
    records = hub.log_records()
    assert records[-1]["msg"] == "stopped after a clean drain"
    assert any(r["msg"] == "connections closed" for r in records)


def test_sigint_stops_cleanly(lab: Lab, start_hub: Any) -> None:
    db = lab.database("demand")
    env = lab.env(db)
    hub = start_hub(env)

    hub.send_signal(signal.SIGINT)

    assert hub.wait(timeout=20) == 0, hub.output()


def test_logs_are_json_lines_with_the_documented_keys(ready_content_hub: Any) -> None:
    hub, _ = ready_content_hub
    given_id = "req-" + uuid.uuid4().hex
    with hub.client() as client:
        echoed = client.get("/version", headers={"X-Request-ID": given_id})
        created = client.post(
            "/api/v1/products",
            json={
                "sku": "LOG-1",
                "name": "Logged",
                "price_cents": 1,
                "currency": "EUR",
            },
        )
        generated = created.headers["x-request-id"]
        last = client.get(f"/api/v1/products/{created.json()['id']}")

    assert echoed.headers["x-request-id"] == given_id
    assert generated and generated != given_id
    # The access line is written once the response is out: wait for the last one.
    last_id = last.headers["x-request-id"]
    hub.wait_for_log(lambda r: r.get("request_id") == last_id and "route" in r)
    records = hub.log_records()  # fails on any stdout line that is not JSON
    assert records
    for record in records:
        assert {"ts", "level", "hub", "logger", "msg"} <= set(record), record
        assert record["hub"] == "content"
        assert record["level"] in {"debug", "info", "warning", "error", "critical"}
        stamp = dt.datetime.fromisoformat(record["ts"])
        assert record["ts"].endswith("Z") and stamp.utcoffset() == dt.timedelta(0)
    assert any(r["logger"].startswith("uvicorn") for r in records), "server logs"
    access = [r for r in records if "request_id" in r and "route" in r]
    by_id = {r["request_id"]: r for r in access}
    version_line = by_id[given_id]
    assert version_line["method"] == "GET"
    assert version_line["path"] == "/version"
    assert version_line["route"] == "/version"
    assert version_line["status"] == 200
    assert isinstance(version_line["duration_ms"], float | int)
    post_line = by_id[generated]
    assert (post_line["method"], post_line["status"]) == ("POST", 201)
    get_lines = [r for r in access if r["route"] == "/api/v1/products/{id}"]
    assert get_lines and get_lines[-1]["path"].startswith("/api/v1/products/")
    password = hub.env["TRADEHUB_DATABASE_URL"].split(":")[2].split("@")[0]
    assert password not in hub.stdout()
    assert hub.stderr() == ""


def test_text_log_format_for_a_person(lab: Lab, start_hub: Any) -> None:
    db = lab.database("services")
    hub = start_hub(lab.env(db, TRADEHUB_LOG_FORMAT="text"))

    lines = hub.stdout().splitlines()

    assert lines and not lines[0].startswith("{")
    assert "Application startup complete." in hub.stdout()


def test_metrics_expose_the_contract_series(ready_content_hub: Any) -> None:
    hub, _ = ready_content_hub
    with hub.client() as client:
        created = client.post(
            "/api/v1/products",
            json={"sku": "M-1", "name": "Metered", "price_cents": 1, "currency": "EUR"},
        ).json()
        client.get(f"/api/v1/products/{created['id']}")
        client.get(f"/api/v1/products/{uuid.uuid4()}")
        client.get("/no/such/path")
        client.get("/readyz")
        response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    expected = [
        'tradehub_http_requests_total{hub="content",method="GET",'
        'route="/api/v1/products/{id}",status="200"} 1.0',
        'tradehub_http_requests_total{hub="content",method="GET",'
        'route="/api/v1/products/{id}",status="404"} 1.0',
        'tradehub_http_requests_total{hub="content",method="POST",'
        'route="/api/v1/products",status="201"} 1.0',
        'tradehub_http_requests_total{hub="content",method="GET",'
        'route="unmatched",status="404"} 1.0',
        'tradehub_http_request_duration_seconds_count{hub="content",method="GET",'
        'route="/api/v1/products/{id}"} 2.0',
        'tradehub_dependency_up{dependency="database",hub="content"} 1.0',
        'tradehub_dependency_up{dependency="event_bus",hub="content"} 1.0',
        'tradehub_events_published_total{hub="content",type="product.created"} 1.0',
        'tradehub_build_info{hub="content",schema_version="1",version="1.0.0"} 1.0',
        "# TYPE tradehub_http_requests_total counter",
        "# TYPE tradehub_http_request_duration_seconds histogram",
        "# TYPE tradehub_dependency_up gauge",
        "# TYPE tradehub_license_days_left gauge",
        "# TYPE tradehub_build_info gauge",
    ]
    for series in expected:
        assert series in text, series
    days = [
        line
        for line in text.splitlines()
        if line.startswith('tradehub_license_days_left{hub="content"} ')
    ]
    assert len(days) == 1 and 363 <= float(days[0].split()[-1]) <= 365
    assert created["id"] not in text, "raw ids must never become label values"
    assert "/no/such/path" not in text


def test_metrics_scrape_does_not_run_readiness_checks(
    ready_content_hub: Any, postgres: PostgresServer
) -> None:
    hub, _ = ready_content_hub
    series = 'tradehub_dependency_up{dependency="database",hub="content"} '
    with hub.client() as client:
        assert client.get("/readyz").status_code == 200
        postgres.stop()
        try:
            started = time.monotonic()
            text = client.get("/metrics").text
            elapsed = time.monotonic() - started
        finally:
            postgres.start()

    # A scrape that ran the database check would wait for it and report 0.
    assert elapsed < 1.0
    assert series + "1.0" in text


def test_dependency_gauges_are_refreshed_without_probes(
    lab: Lab, start_hub: Any
) -> None:
    db = lab.database("shipping")
    env = lab.env(db)
    env["TRADEHUB_EVENT_BUS_URL"] = env["TRADEHUB_EVENT_BUS_URL"].replace(
        f":{lab.redis_server.port}/", f":{free_port()}/"
    )
    hub = start_hub(env)
    database = 'tradehub_dependency_up{dependency="database",hub="shipping"} '
    event_bus = 'tradehub_dependency_up{dependency="event_bus",hub="shipping"} '

    # Nobody calls /readyz: only the background check can set these.
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(f"{hub.base_url}/metrics", timeout=5).text
        if database + "1.0" in text:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    assert event_bus + "0.0" in text
    routes = {r.get("route") for r in hub.log_records()}
    assert "/readyz" not in routes


def test_version_endpoint_matches_the_command(ready_content_hub: Any) -> None:
    hub, _ = ready_content_hub

    served = httpx.get(f"{hub.base_url}/version", timeout=5)
    printed = run_hub_command("version", {"TRADEHUB_HUB_NAME": "content"})

    assert served.status_code == 200
    assert served.json() == json.loads(printed.stdout)
    assert served.json()["contract"] == 1


def test_a_hub_refuses_to_start_on_a_busy_port(lab: Lab, start_hub: Any) -> None:
    db = lab.database("sourcing")
    first: HubProcess = start_hub(lab.env(db))

    done = run_hub_command(
        "serve", lab.env(db, TRADEHUB_LISTEN=f"127.0.0.1:{first.port}")
    )

    assert done.returncode == 1
    assert "address already in use" in done.stdout.lower()

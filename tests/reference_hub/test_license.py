"""License verification (§7) and its reload on SIGHUP (§8), seen through ``/readyz``.

One content hub process serves the whole module: each case replaces its license file
and sends SIGHUP, exactly as an operator renewing a license does, and the process is
never restarted.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tradehub_reference_hub.license import add_signature, sign_license

from tests.support.hub import HubProcess
from tests.support.lab import TRUSTED_KEY_ID, Lab, LicenseSigner, utc
from tests.support.licenses import BAD_LICENSES as BAD
from tests.support.licenses import DEPLOYMENT


@pytest.fixture(scope="module")
def licensed_hub(
    lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HubProcess, Path]]:
    workdir = tmp_path_factory.mktemp("licensed-hub")
    license_file = lab.signer.write(workdir / "license.json", lab.signer.document())
    db = lab.database("content")
    env = lab.env(
        db,
        TRADEHUB_LICENSE_FILE=str(license_file),
        TRADEHUB_DEPLOYMENT_ID=DEPLOYMENT,
    )
    lab.migrated(env)
    hub = HubProcess(env, workdir).start()
    yield hub, license_file
    hub.stop()


def reload(hub: HubProcess) -> dict[str, Any]:
    """SIGHUP the hub and wait for the log line that reports the license it read."""
    mark = len(hub.log_records())
    hub.send_signal(signal.SIGHUP)
    return hub.wait_for_log(lambda r: r["msg"].startswith("license read"), after=mark)


def license_check(hub: HubProcess) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{hub.base_url}/readyz", timeout=10)
    body = response.json()
    return response.status_code, body


# What the hub's license check says of each bad license of tests.support.licenses.
REASONS = {
    "payload-changed-by-one-byte": "does not verify",
    "unknown-key-id": "no signature by a trusted key",
    "wrong-signature": "does not verify",
    "expired-past-grace": "grace days are over",
    "not-yet-valid": "not valid before",
    "another-customer": "customer",
    "hub-not-covered": "does not cover hub 'content'",
    "another-deployment": "deployment",
    "truncated": "not valid JSON",
    "not-json": "not valid JSON",
    "empty-file": "empty",
    "unknown-format": "format",
}
BAD_LICENSES = [
    pytest.param(make, REASONS[name], id=name) for name, make in BAD.items()
]


@pytest.mark.parametrize(("make", "reason"), BAD_LICENSES)
def test_bad_license_makes_the_hub_not_ready(
    licensed_hub: tuple[HubProcess, Path],
    lab: Lab,
    make: Callable[[LicenseSigner], Any],
    reason: str,
) -> None:
    hub, license_file = licensed_hub
    pid = hub.pid
    lab.signer.write(license_file, make(lab.signer))

    logged = reload(hub)

    assert logged["level"] == "warning"
    assert logged["license_ok"] is False
    status, body = license_check(hub)
    assert status == 503
    assert body["failing"] == ["license"]
    assert body["checks"]["license"]["ok"] is False
    assert reason in body["checks"]["license"]["detail"]
    metrics = httpx.get(f"{hub.base_url}/metrics", timeout=10).text
    assert "tradehub_license_days_left{" not in metrics

    # A good license again, and the same process is ready again.
    lab.signer.write(license_file, lab.signer.document())
    assert reload(hub)["license_ok"] is True
    assert license_check(hub)[0] == 200
    assert hub.pid == pid and hub.process is not None and hub.process.poll() is None


GOOD_LICENSES: list[Any] = [
    pytest.param(
        lambda s: s.document(s.payload(deployment_id=DEPLOYMENT)),
        id="bound-to-this-deployment",
    ),
    pytest.param(
        # Key rotation: an old key the hub no longer trusts, then the current one.
        lambda s: add_signature(
            sign_license(s.untrusted, "tamyla-retired-0", s.payload()),
            s.trusted,
            TRUSTED_KEY_ID,
        ),
        id="second-signature-trusted",
    ),
]


@pytest.mark.parametrize("make", GOOD_LICENSES)
def test_good_license_variants_are_ready(
    licensed_hub: tuple[HubProcess, Path],
    lab: Lab,
    make: Callable[[LicenseSigner], Any],
) -> None:
    hub, license_file = licensed_hub
    lab.signer.write(license_file, make(lab.signer))

    logged = reload(hub)

    assert logged["license_ok"] is True
    status, body = license_check(hub)
    assert status == 200, body
    assert body["checks"]["license"]["ok"] is True
    lab.signer.write(license_file, lab.signer.document())
    reload(hub)


def test_license_in_grace_is_ready_with_a_warning(
    licensed_hub: tuple[HubProcess, Path], lab: Lab
) -> None:
    hub, license_file = licensed_hub
    payload = lab.signer.payload(expires_at=utc(-2.5), grace_days=7)
    lab.signer.write(license_file, lab.signer.document(payload))

    logged = reload(hub)

    assert logged["license_id"] == payload["license_id"]
    status, body = license_check(hub)
    assert status == 200
    assert body["failing"] == []
    check = body["checks"]["license"]
    assert check["ok"] is True
    assert check["warning"] is True
    assert "grace" in check["detail"]
    metrics = httpx.get(f"{hub.base_url}/metrics", timeout=10).text
    assert 'tradehub_license_days_left{hub="content"} -3.0' in metrics
    lab.signer.write(license_file, lab.signer.document())
    reload(hub)


def test_license_log_shows_id_and_expiry_but_no_key_material(
    licensed_hub: tuple[HubProcess, Path], lab: Lab
) -> None:
    hub, license_file = licensed_hub
    document = lab.signer.document()
    lab.signer.write(license_file, document)

    logged = reload(hub)

    payload = json.loads(base64.b64decode(document["payload"]))
    assert logged["license_id"] == payload["license_id"]
    assert logged["expires_at"] == payload["expires_at"]
    assert document["signatures"][0]["signature"] not in hub.stdout()
    pem = (lab.signer.keys_dir / f"{TRUSTED_KEY_ID}.pem").read_text()
    assert pem.splitlines()[1] not in hub.stdout()


def read_http_response(sock: socket.socket) -> tuple[int, bytes]:
    """Read one response with a Content-Length from a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return int(head.split()[1]), body


def test_sighup_keeps_open_connections(
    licensed_hub: tuple[HubProcess, Path], lab: Lab
) -> None:
    hub, license_file = licensed_hub
    request = b"GET /readyz HTTP/1.1\r\nHost: hub\r\n\r\n"
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
        sock.sendall(request)
        assert read_http_response(sock)[0] == 200

        lab.signer.write(license_file, b"")
        reload(hub)
        sock.sendall(request)  # the same connection, after the reload
        status, body = read_http_response(sock)

        assert status == 503
        assert json.loads(body)["failing"] == ["license"]
        lab.signer.write(license_file, lab.signer.document())
        reload(hub)
        sock.sendall(request)
        assert read_http_response(sock)[0] == 200


def test_missing_license_then_sighup_makes_the_hub_ready(
    lab: Lab, start_hub: Any, tmp_path: Path
) -> None:
    db = lab.database("contacts")
    license_file = tmp_path / "license.json"
    env = lab.env(db, TRADEHUB_LICENSE_FILE=str(license_file))
    lab.migrated(env)
    hub = start_hub(env)

    status, body = license_check(hub)

    assert status == 503
    assert body["failing"] == ["license"]
    assert "not found" in body["checks"]["license"]["detail"]

    lab.signer.write(license_file, lab.signer.document())
    reload(hub)

    status, body = license_check(hub)
    assert status == 200
    assert body["checks"]["license"]["ok"] is True

"""The vendor's license tool, ``tradehub-license`` (tools/license).

Every test makes its own keys in a temporary directory and runs the command line
in-process through ``main(argv)``, except one that runs the installed console script
and ``python -m tradehub_license`` as real processes. The interoperability tests hand
the tool's licenses to the reference hub's own verifier, which is what the hubs run.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from tradehub_license import document
from tradehub_license.cli import main
from tradehub_license.errors import REFUSAL_CODES
from tradehub_license.keys import load_private_key
from tradehub_reference_hub import license as hub_license

OLD_KEY = "tamyla-2026-1"
NEW_KEY = "tamyla-2027-1"
CUSTOMER = "acme-trading"
DAY = dt.timedelta(days=1)


# ----------------------------------------------------------------------- helpers


class Run:
    """The outcome of one in-process run of the command line."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> dict[str, Any]:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run ``tradehub-license ARGS`` in this process; paths are turned into text."""

    def run(*args: object) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def vendor(tmp_path: Path, cli: Callable[..., Run]) -> Path:
    """The vendor's key directory, with two key pairs made by ``keygen``."""
    keys = tmp_path / "vendor-keys"
    for key_id in (OLD_KEY, NEW_KEY):
        assert cli("keygen", "--key-id", key_id, "--out", keys).code == 0
    return keys


def trust(directory: Path, vendor: Path, *key_ids: str) -> Path:
    """A customer's trusted-keys directory holding only the given public keys."""
    directory.mkdir(parents=True, exist_ok=True)
    for key_id in key_ids:
        (directory / f"{key_id}.pem").write_bytes(
            (vendor / f"{key_id}.pem").read_bytes()
        )
    return directory


def describe(tmp_path: Path, name: str = "license.yml", **fields: Any) -> Path:
    """Write a license description; the defaults make a valid one-year license."""
    data: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "customer_name": "Acme Trading GmbH",
        "hubs": ["sourcing", "content"],
        "days": 365,
    }
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def issue(
    cli: Callable[..., Run], tmp_path: Path, vendor: Path, *key_ids: str, **fields: Any
) -> Path:
    """Issue a license from a description with the given keys; returns its path."""
    out = tmp_path / "license.json"
    keys = [a for k in key_ids or (OLD_KEY,) for a in ("--key", vendor / f"{k}.key")]
    result = cli("issue", describe(tmp_path, **fields), *keys, "--out", out)
    assert result.code == 0, result.err
    return out


def payload_of(path: Path) -> dict[str, Any]:
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


def sign_payload(vendor: Path, key_id: str, payload: dict[str, Any], out: Path) -> Path:
    """Sign an arbitrary valid payload with the library (for times in the past)."""
    out.write_text(
        document.dumps(
            document.sign(payload, [load_private_key(vendor / f"{key_id}.key")])
        )
    )
    return out


def past_payload(expired_days_ago: float, grace_days: int) -> dict[str, Any]:
    """A payload whose expiry was the given number of days ago."""
    expires = dt.datetime.now(dt.UTC) - dt.timedelta(days=expired_days_ago)
    start = expires - 365 * DAY
    return {
        "license_id": "acme-old-1",
        "customer_id": CUSTOMER,
        "customer_name": "Acme Trading GmbH",
        "hubs": {"content": {"edition": "standard", "limits": {}}},
        "issued_at": document.format_time(start),
        "not_before": document.format_time(start),
        "expires_at": document.format_time(expires),
        "grace_days": grace_days,
        "deployment_id": None,
        "features": {},
    }


def flip_payload_byte(path: Path, needle: bytes = b"Acme") -> None:
    """Change one byte of the signed payload, keeping it valid JSON and base64."""
    doc = json.loads(path.read_text())
    payload = bytearray(base64.b64decode(doc["payload"]))
    payload[payload.index(needle)] ^= 0x01  # 'A' becomes '@'
    doc["payload"] = base64.b64encode(bytes(payload)).decode()
    path.write_text(json.dumps(doc))


# ------------------------------------------------------------------------ keygen


def test_keygen_writes_a_private_key_for_the_vendor_and_a_public_key_to_ship(
    tmp_path: Path, cli: Callable[..., Run]
) -> None:
    out = tmp_path / "keys"
    result = cli("keygen", "--key-id", "tamyla-2026.rc-1", "--out", out)

    assert result.code == 0, result.err
    private, public = out / "tamyla-2026.rc-1.key", out / "tamyla-2026.rc-1.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    shipped = serialization.load_pem_public_key(public.read_bytes())
    assert isinstance(shipped, Ed25519PublicKey)
    shipped.verify(key.sign(b"probe"), b"probe")  # the pair belongs together
    assert "BEGIN" not in result.out + result.err
    assert str(private) in result.out and str(public) in result.out


def test_keygen_never_overwrites_a_key(tmp_path: Path, cli: Callable[..., Run]) -> None:
    out = tmp_path / "keys"
    assert cli("keygen", "--key-id", OLD_KEY, "--out", out).code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    again = cli("keygen", "--key-id", OLD_KEY, "--out", out)
    (out / f"{OLD_KEY}.key").unlink()
    only_public_left = cli("keygen", "--key-id", OLD_KEY, "--out", out)

    assert again.code == 2
    assert "never overwritten" in again.err
    assert only_public_left.code == 2
    assert f"{OLD_KEY}.pem already exists" in only_public_left.err
    assert (out / f"{OLD_KEY}.pem").read_bytes() == before[f"{OLD_KEY}.pem"]
    assert not (out / f"{OLD_KEY}.key").exists()


@pytest.mark.parametrize(
    "key_id", ["Tamyla-1", "tamyla_1", "a/b", ".hidden", "-rf", "", "a b", "x" * 65]
)
def test_keygen_rejects_a_key_id_that_cannot_name_a_key_file(
    tmp_path: Path, cli: Callable[..., Run], key_id: str
) -> None:
    result = cli("keygen", f"--key-id={key_id}", "--out", tmp_path / "keys")

    assert result.code == 2
    assert "lower-case letters, digits, '.' and '-'" in result.err
    assert not (tmp_path / "keys").exists()


# ------------------------------------------------------------------------- issue


def test_issue_signs_with_every_key_for_a_rotation(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    license_file = issue(cli, tmp_path, vendor, OLD_KEY, NEW_KEY, grace_days=7)

    doc = json.loads(license_file.read_text())
    assert doc["format"] == "tradehub-license/1"
    assert [s["key_id"] for s in doc["signatures"]] == [OLD_KEY, NEW_KEY]
    assert {s["algorithm"] for s in doc["signatures"]} == {"ed25519"}
    payload_bytes = base64.b64decode(doc["payload"])
    payload = json.loads(payload_bytes)
    # The signed bytes are the canonical encoding: sorted keys, no spaces, UTF-8.
    assert (
        payload_bytes
        == json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    assert payload["customer_id"] == CUSTOMER
    assert payload["hubs"] == {
        "sourcing": {"edition": "standard", "limits": {}},
        "content": {"edition": "standard", "limits": {}},
    }
    start = dt.datetime.fromisoformat(payload["not_before"])
    assert dt.datetime.fromisoformat(payload["expires_at"]) - start == 365 * DAY
    assert abs(dt.datetime.now(dt.UTC) - start) < dt.timedelta(minutes=1)
    assert payload["issued_at"] == payload["not_before"]
    assert payload["grace_days"] == 7
    assert payload["deployment_id"] is None
    assert payload["features"] == {}
    assert payload["license_id"].startswith(f"{CUSTOMER}-{start:%Y%m%d}-")
    # Customers trusting only the old key, or only the new one, both accept it.
    for key_id in (OLD_KEY, NEW_KEY):
        trusted = trust(tmp_path / f"trust-{key_id}", vendor, key_id)
        checked = cli("inspect", license_file, "--trusted-keys", trusted, "--json")
        assert checked.code == 0, checked.err
        assert checked.json()["signed_by"] == key_id


def test_issue_reads_editions_limits_dates_binding_and_features(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    description = describe(
        tmp_path,
        license_id="acme-2026-enterprise",
        customer_name="Acme Trading GmbH, Zürich",
        hubs={
            "sourcing": {"edition": "enterprise", "limits": {"suppliers": 5000}},
            "demand": None,
        },
        days=None,
        not_before="2026-01-01T09:30:00+01:00",
        expires_at=dt.date(2099, 1, 1),
        grace_days=0,
        deployment_id="5d0c7c1e9a2b4f6e8d0c1b2a",
        features={"bulk_export": True, "beta_reports": False},
    )
    result = cli("issue", description, "--key", vendor / f"{NEW_KEY}.key")

    assert result.code == 0, result.err
    payload = json.loads(base64.b64decode(json.loads(result.out)["payload"]))
    assert payload == {
        "license_id": "acme-2026-enterprise",
        "customer_id": CUSTOMER,
        "customer_name": "Acme Trading GmbH, Zürich",
        "hubs": {
            "sourcing": {"edition": "enterprise", "limits": {"suppliers": 5000}},
            "demand": {"edition": "standard", "limits": {}},
        },
        "issued_at": payload["issued_at"],
        "not_before": "2026-01-01T08:30:00Z",
        "expires_at": "2099-01-01T00:00:00Z",
        "grace_days": 0,
        "deployment_id": "5d0c7c1e9a2b4f6e8d0c1b2a",
        "features": {"bulk_export": True, "beta_reports": False},
    }
    assert "issued license acme-2026-enterprise" in result.err


@pytest.mark.parametrize(
    ("fields", "messages"),
    [
        pytest.param(
            {"hubs": ["sourcing", "shiping"]},
            ["unknown hub 'shiping'", "did you mean 'shipping'"],
            id="unknown-hub",
        ),
        pytest.param(
            {"hubs": {"content": {"edition": "standard", "limit": {}}}},
            ["hubs': content: unknown member 'limit'"],
            id="unknown-hub-member",
        ),
        pytest.param(
            {"customer": "acme"},
            ["unknown field 'customer'", "did you mean 'customer_id'"],
            id="unknown-field",
        ),
        pytest.param(
            {"customer_id": "Acme Trading"},
            ["field 'customer_id' must be the customer's tradehub_customer_id"],
            id="bad-customer-id",
        ),
        pytest.param(
            {"customer_id": None}, ["field 'customer_id' is missing"], id="no-customer"
        ),
        pytest.param(
            {
                "days": None,
                "not_before": "2098-01-01T00:00:00Z",
                "expires_at": "2097-12-31",
            },
            ["'expires_at' (2097-12-31T00:00:00Z) must be later than 'not_before'"],
            id="expires-before-not-before",
        ),
        pytest.param(
            {"days": None, "expires_at": "2020-01-01"},
            ["'expires_at' (2020-01-01T00:00:00Z) is not in the future"],
            id="expires-in-the-past",
        ),
        pytest.param(
            {"expires_at": "2099-01-01"},
            ["'expires_at' and 'days' are both given: keep one"],
            id="days-and-expires-at",
        ),
        pytest.param({"days": None}, ["give 'days'"], id="no-end"),
        pytest.param({"days": 0}, ["'days' must be an integer >= 1"], id="zero-days"),
        pytest.param(
            {"not_before": "2026-05-01 10:00:00"},
            ["'not_before'", "must be a date"],
            id="time-without-zone",
        ),
        pytest.param(
            {"grace_days": -1}, ["'grace_days' must be an integer >= 0"], id="grace"
        ),
        pytest.param(
            {"deployment_id": ""}, ["'deployment_id' is empty"], id="empty-deployment"
        ),
        pytest.param(
            {"deployment_id": 42, "features": {"export": "yes"}},
            ["'deployment_id' is read by YAML as 42", "export must be true or false"],
            id="every-problem-at-once",
        ),
    ],
)
def test_issue_refuses_a_bad_description_naming_the_field(
    tmp_path: Path,
    cli: Callable[..., Run],
    vendor: Path,
    fields: dict[str, Any],
    messages: list[str],
) -> None:
    out = tmp_path / "license.json"
    description = describe(tmp_path, **fields)
    result = cli("issue", description, "--key", vendor / f"{OLD_KEY}.key", "--out", out)

    assert result.code == 2
    assert f"{description} is not a valid license description" in result.err
    for message in messages:
        assert message in result.err
    assert not out.exists()
    assert result.out == ""


def test_issue_refuses_a_key_given_twice_in_yaml(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    description = tmp_path / "twice.yml"
    description.write_text("customer_id: acme\ncustomer_id: other\n")

    result = cli("issue", description, "--key", vendor / f"{OLD_KEY}.key")

    assert result.code == 2
    assert "line 2" in result.err and "'customer_id' is given twice" in result.err


def test_issue_refuses_keys_that_cannot_sign(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    description = describe(tmp_path)
    not_a_key = tmp_path / "notes.key"
    not_a_key.write_text("hello\n")

    public = cli("issue", description, "--key", vendor / f"{OLD_KEY}.pem")
    garbage = cli("issue", description, "--key", not_a_key)
    twice = cli(
        "issue",
        description,
        "--key",
        vendor / f"{OLD_KEY}.key",
        "--key",
        vendor / f"{OLD_KEY}.key",
    )
    missing = cli("issue", description, "--key", vendor / "tamyla-1999-1.key")

    assert public.code == 2 and "signing keys are named <key_id>.key" in public.err
    assert garbage.code == 2 and "is not a PEM private key" in garbage.err
    assert twice.code == 2 and f"key id given more than once: {OLD_KEY}" in twice.err
    assert missing.code == 2 and "tamyla-1999-1.key not found" in missing.err
    assert public.out == garbage.out == twice.out == missing.out == ""


def test_issue_warns_about_a_signing_key_others_can_read(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    key = vendor / f"{OLD_KEY}.key"
    key.chmod(0o644)

    result = cli("issue", describe(tmp_path), "--key", key)

    assert result.code == 0
    assert f"run chmod 600 {key}" in result.err


# ----------------------------------------------------------------------- inspect


def test_inspect_shows_the_license_and_verifies_it(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    license_file = issue(
        cli,
        tmp_path,
        vendor,
        OLD_KEY,
        hubs={"content": {"edition": "enterprise", "limits": {"products": 100000}}},
        deployment_id="dep-eu-1",
        features={"bulk_export": True},
    )
    trusted = trust(tmp_path / "trusted", vendor, OLD_KEY, NEW_KEY)
    args = [
        "--customer-id",
        CUSTOMER,
        "--hub",
        "content",
        "--deployment-id",
        "dep-eu-1",
    ]

    text = cli("inspect", license_file, "--trusted-keys", trusted, *args)
    as_json = cli("inspect", license_file, "--trusted-keys", trusted, *args, "--json")

    assert text.code == 0, text.err
    payload = payload_of(license_file)
    assert payload["license_id"] in text.out
    assert "acme-trading (Acme Trading GmbH)" in text.out
    assert "content     enterprise  products=100000" in text.out
    assert f"{OLD_KEY}  verified" in text.out
    assert "valid until " + payload["expires_at"] in text.out
    assert "bulk_export=on" in text.out
    assert "result      OK: signed by trusted key tamyla-2026-1" in text.out
    report = as_json.json()
    assert as_json.code == 0
    assert report["ok"] is True and report["code"] is None
    assert report["signed_by"] == OLD_KEY
    assert report["window"]["state"] == "valid"
    assert report["window"]["days_left"] in (364, 365)
    assert report["license"]["deployment_id"] == "dep-eu-1"
    # Signatures and keys are never printed.
    signature = json.loads(license_file.read_text())["signatures"][0]["signature"]
    for output in (text.out, text.err, as_json.out):
        assert signature not in output
        assert "BEGIN" not in output


def test_inspect_without_trusted_keys_lists_but_does_not_verify(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    license_file = issue(cli, tmp_path, vendor, OLD_KEY, NEW_KEY)
    flip_payload_byte(license_file)

    result = cli("inspect", license_file)

    assert result.code == 0
    assert f"{OLD_KEY}  not checked (give --trusted-keys)" in result.out
    assert "signatures not verified" in result.out
    assert "@cme Trading GmbH" in result.out


def test_inspect_reports_the_grace_period(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    license_file = sign_payload(
        vendor, OLD_KEY, past_payload(3.5, grace_days=14), tmp_path / "old.json"
    )
    trusted = trust(tmp_path / "trusted", vendor, OLD_KEY)

    text = cli("inspect", license_file, "--trusted-keys", trusted)
    report = cli("inspect", license_file, "--trusted-keys", trusted, "--json").json()

    assert text.code == 0
    assert "in its grace period, 10 of 14 grace days left: renew" in text.out
    assert report["ok"] is True
    assert report["window"] == {
        "state": "in-grace",
        "days_left": -4,
        "grace_days_left": 10,
        "text": report["window"]["text"],
    }
    assert report["warnings"] == [report["window"]["text"]]


def test_inspect_evaluates_at_another_time(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    license_file = issue(cli, tmp_path, vendor, OLD_KEY, grace_days=14)
    expires = dt.datetime.fromisoformat(payload_of(license_file)["expires_at"])

    def at(moment: dt.datetime) -> Run:
        return cli(
            "inspect", license_file, "--at", document.format_time(moment), "--json"
        )

    assert at(expires).json()["window"]["state"] == "valid"
    assert at(expires + 14 * DAY).json()["window"]["state"] == "in-grace"
    late = at(expires + 14 * DAY + dt.timedelta(seconds=1))
    assert late.code == 1 and late.json()["code"] == "expired"
    assert cli("inspect", license_file, "--at", "tomorrow").code == 2


def _bound(cli: Callable[..., Run], tmp_path: Path, vendor: Path) -> Path:
    return issue(cli, tmp_path, vendor, OLD_KEY, deployment_id="dep-eu-1")


def _write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "given.json"
    path.write_bytes(content)
    return path


def _changed(cli: Callable[..., Run], tmp_path: Path, vendor: Path) -> Path:
    license_file = issue(cli, tmp_path, vendor)
    flip_payload_byte(license_file)
    return license_file


def _impostor(cli: Callable[..., Run], tmp_path: Path, vendor: Path) -> Path:
    """Signed with another private key that claims the trusted key's id."""
    impostor = tmp_path / "impostor"
    assert cli("keygen", "--key-id", OLD_KEY, "--out", impostor).code == 0
    return issue(cli, tmp_path, impostor, OLD_KEY)


BAD_INPUTS: dict[str, tuple[Callable[..., Path], list[str], str, str]] = {
    # name: (make the file, extra inspect arguments, code, words of the reason)
    "empty-file": (
        lambda cli, tmp, vendor: _write(tmp, b"\n"),
        [],
        "empty",
        "license file is empty",
    ),
    "truncated": (
        lambda cli, tmp, vendor: _write(
            tmp, issue(cli, tmp, vendor).read_bytes()[:120]
        ),
        [],
        "not-json",
        "cut short",
    ),
    "not-json": (
        lambda cli, tmp, vendor: _write(tmp, b"LICENSE acme-trading 2027\n"),
        [],
        "not-json",
        "not valid JSON",
    ),
    "wrong-format": (
        lambda cli, tmp, vendor: _write(
            tmp,
            issue(cli, tmp, vendor)
            .read_bytes()
            .replace(b"tradehub-license/1", b"tradehub-license/2"),
        ),
        [],
        "wrong-format",
        "license format is 'tradehub-license/2'",
    ),
    "payload-changed": (
        _changed,
        [],
        "bad-signature",
        "payload was changed after signing",
    ),
    "unknown-key": (
        lambda cli, tmp, vendor: issue(cli, tmp, vendor, NEW_KEY),
        [],
        "unknown-key",
        f"no signature by a trusted key (signed with: {NEW_KEY}; trusted: {OLD_KEY})",
    ),
    "wrong-signature": (
        _impostor,
        [],
        "bad-signature",
        f"signature by trusted key {OLD_KEY} does not verify",
    ),
    "expired-past-grace": (
        lambda cli, tmp, vendor: sign_payload(
            vendor, OLD_KEY, past_payload(15, grace_days=14), tmp / "old.json"
        ),
        [],
        "expired",
        "its 14 grace days are over",
    ),
    "not-yet-valid": (
        lambda cli, tmp, vendor: issue(
            cli, tmp, vendor, not_before="2098-01-01T00:00:00Z"
        ),
        [],
        "not-yet-valid",
        "not valid before 2098-01-01T00:00:00Z",
    ),
    "other-customer": (
        lambda cli, tmp, vendor: issue(cli, tmp, vendor),
        ["--customer-id", "globex"],
        "other-customer",
        "is for customer 'acme-trading', not 'globex'",
    ),
    "hub-not-covered": (
        lambda cli, tmp, vendor: issue(cli, tmp, vendor),
        ["--hub", "content", "--hub", "shipping"],
        "hub-not-covered",
        "does not cover hub shipping (covers: content, sourcing)",
    ),
    "other-deployment": (
        _bound,
        ["--deployment-id", "dep-us-2"],
        "other-deployment",
        "bound to deployment 'dep-eu-1', not 'dep-us-2'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_inspect_refuses_with_the_reason(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path, case: str
) -> None:
    make, extra, code, reason = BAD_INPUTS[case]
    license_file = make(cli, tmp_path, vendor)
    trusted = trust(tmp_path / "trusted", vendor, OLD_KEY)

    text = cli("inspect", license_file, "--trusted-keys", trusted, *extra)
    as_json = cli("inspect", license_file, "--trusted-keys", trusted, *extra, "--json")

    assert text.code == 1
    assert f"refused [{code}]" in text.err
    assert reason in text.err
    assert as_json.code == 1
    assert as_json.json()["ok"] is False
    assert as_json.json()["code"] == code


def test_inspect_errors_on_input_it_cannot_use(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    license_file = issue(cli, tmp_path, vendor)
    empty_dir = tmp_path / "no-keys"
    empty_dir.mkdir()

    missing = cli("inspect", tmp_path / "nowhere.json")
    no_keys = cli("inspect", license_file, "--trusted-keys", empty_dir)
    private_as_trusted = cli(
        "inspect", license_file, "--trusted-keys", vendor / f"{OLD_KEY}.key"
    )

    assert missing.code == 2 and "nowhere.json not found" in missing.err
    assert no_keys.code == 2 and "no usable trusted key" in no_keys.err
    assert private_as_trusted.code == 2
    assert "not a directory or a <key_id>.pem file" in private_as_trusted.err


# ------------------------------------------------------------------ as a process


def test_console_script_and_module_run_as_processes(tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "tradehub-license"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, env=env, timeout=60
        )

    keygen = run(command, "keygen", "--key-id", "sandbox-vendor", "--out", tmp_path)
    issued = run(
        command,
        "issue",
        describe(tmp_path, hubs=["demand"]),
        "--key",
        tmp_path / "sandbox-vendor.key",
        "--out",
        tmp_path / "license.json",
    )
    args = ["--trusted-keys", tmp_path / "sandbox-vendor.pem", "--hub", "demand"]
    good = run(command, "inspect", tmp_path / "license.json", *args)
    bad = run(command, "inspect", tmp_path / "license.json", *args, "--hub", "content")
    module = run(
        sys.executable,
        "-m",
        "tradehub_license",
        "inspect",
        tmp_path / "license.json",
        *args,
    )

    assert keygen.returncode == 0, keygen.stderr
    assert issued.returncode == 0, issued.stderr
    assert good.returncode == 0, good.stderr
    assert "sandbox-vendor  verified" in good.stdout
    assert bad.returncode == 1
    assert "refused [hub-not-covered]" in bad.stderr
    assert module.returncode == 0, module.stderr
    assert "sandbox-vendor  verified" in module.stdout


# ------------------------------------------------------------- interoperability


def hub_verifies(
    license_file: Path,
    trusted: Path,
    *,
    hub: str = "content",
    deployment_id: str | None = None,
) -> hub_license.LicenseStatus:
    """What a reference hub concludes, with its own code, about the license file."""
    keys, problems = hub_license.load_trusted_keys(trusted)
    assert problems == []
    lic = hub_license.parse_document(license_file.read_bytes(), keys)
    return hub_license.evaluate(
        lic,
        hub=hub,
        customer_id=CUSTOMER,
        deployment_id=deployment_id,
        now=dt.datetime.now(dt.UTC),
    )


def test_reference_hub_accepts_the_tools_license_during_a_key_rotation(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    license_file = issue(
        cli,
        tmp_path,
        vendor,
        OLD_KEY,
        NEW_KEY,
        hubs={"content": {"edition": "enterprise", "limits": {"products": 100000}}},
        features={"bulk_export": True},
    )
    payload = payload_of(license_file)

    for key_id in (OLD_KEY, NEW_KEY):
        status = hub_verifies(license_file, trust(tmp_path / key_id, vendor, key_id))
        assert status.ok, status.detail
        assert status.license is not None
        assert status.license.key_id == key_id
        assert status.license.license_id == payload["license_id"]
        assert status.license.hubs == payload["hubs"]
        assert status.license.features == {"bulk_export": True}
        assert status.license.grace_days == 14
        assert status.license.expires_at == dt.datetime.fromisoformat(
            payload["expires_at"]
        )
    not_covered = hub_verifies(
        license_file, trust(tmp_path / "old-only", vendor, OLD_KEY), hub="demand"
    )
    assert not not_covered.ok
    assert "does not cover hub 'demand'" in not_covered.detail


def test_reference_hub_honours_the_deployment_binding(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    license_file = issue(cli, tmp_path, vendor, OLD_KEY, deployment_id="dep-eu-1")
    trusted = trust(tmp_path / "trusted", vendor, OLD_KEY)

    assert hub_verifies(license_file, trusted, deployment_id="dep-eu-1").ok
    elsewhere = hub_verifies(license_file, trusted, deployment_id="dep-us-2")
    assert not elsewhere.ok
    assert "bound to deployment 'dep-eu-1'" in elsewhere.detail


def test_one_changed_payload_byte_is_refused_by_the_tool_and_the_hub(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    license_file = issue(cli, tmp_path, vendor, OLD_KEY, NEW_KEY)
    trusted = trust(tmp_path / "trusted", vendor, OLD_KEY, NEW_KEY)
    assert hub_verifies(license_file, trusted).ok  # before the change
    flip_payload_byte(license_file)

    tool = cli("inspect", license_file, "--trusted-keys", trusted, "--json")
    keys, _ = hub_license.load_trusted_keys(trusted)
    with pytest.raises(hub_license.LicenseInvalid, match="does not verify"):
        hub_license.parse_document(license_file.read_bytes(), keys)

    assert tool.code == 1
    assert tool.json()["code"] == "bad-signature"
    assert [s["status"] for s in tool.json()["signatures"]] == ["does not verify"] * 2


def test_the_tool_verifies_a_license_signed_by_the_hubs_helper(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    payload = past_payload(-30, grace_days=5)  # expires in 30 days
    key_id, key = load_private_key(vendor / f"{NEW_KEY}.key")
    signed = hub_license.add_signature(
        hub_license.sign_license(key, key_id, payload),
        load_private_key(vendor / f"{OLD_KEY}.key")[1],
        OLD_KEY,
    )
    license_file = tmp_path / "from-hub-helper.json"
    license_file.write_text(json.dumps(signed))
    trusted = trust(tmp_path / "trusted", vendor, OLD_KEY)

    result = cli("inspect", license_file, "--trusted-keys", trusted, "--json")

    assert result.code == 0, result.err
    assert result.json()["signed_by"] == OLD_KEY
    assert result.json()["license"]["license_id"] == payload["license_id"]
    assert result.json()["window"]["days_left"] in (29, 30)


# ------------------------------------------------------------ the documentation

DOC = Path(__file__).resolve().parents[2] / "docs" / "licensing.md"


def doc_section(number: int) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {number}. ")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_the_documentation_lists_every_payload_field_and_refusal_code() -> None:
    fields = re.findall(r"^\| `(\w+)` \| ", doc_section(2), re.MULTILINE)
    codes = re.findall(r"^\| `([a-z-]+)` \| ", doc_section(7), re.MULTILINE)

    assert fields == list(document.PAYLOAD_FIELDS)
    assert codes == list(REFUSAL_CODES)


def test_the_documented_description_issues_a_license_the_hub_accepts(
    tmp_path: Path, cli: Callable[..., Run], vendor: Path
) -> None:
    example = re.search(r"```yaml\n(.*?)```", doc_section(8), re.DOTALL)
    assert example is not None
    description = tmp_path / "acme.yml"
    description.write_text(example.group(1))
    out = tmp_path / "acme-license.json"

    issued = cli("issue", description, "--key", vendor / f"{NEW_KEY}.key", "--out", out)

    assert issued.code == 0, issued.err
    status = hub_verifies(
        out,
        trust(tmp_path / "trusted", vendor, NEW_KEY),
        hub="contacts",
        deployment_id="k3v9x0q2m7c4d8w1z5n6b2r4",
    )
    assert status.ok, status.detail
    assert status.license is not None
    assert status.license.hubs["sourcing"] == {
        "edition": "enterprise",
        "limits": {"suppliers": 5000},
    }

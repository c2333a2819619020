"""Offline license verification (contract §7) and the signing helper the vendor uses.

The hub reads the license file and the trusted keys at start and on SIGHUP; the time
window is evaluated at each check, so a license expires without a reload. A missing or
invalid license never stops the process: it only makes the ``license`` check fail.
Nothing here ever logs or returns key material.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

LICENSE_FORMAT = "tradehub-license/1"
ALGORITHM = "ed25519"
#: Larger files are refused unread: a license is a few hundred bytes.
MAX_LICENSE_BYTES = 1 << 20
_DAY = 86400.0


class LicenseInvalid(Exception):
    """The license does not verify; the message is safe to show in ``/readyz``."""


@dataclass(frozen=True)
class License:
    """A verified payload."""

    license_id: str
    customer_id: str
    customer_name: str
    hubs: dict[str, Any]
    issued_at: dt.datetime
    not_before: dt.datetime
    expires_at: dt.datetime
    grace_days: int
    deployment_id: str | None
    features: dict[str, bool]
    key_id: str


@dataclass(frozen=True)
class LicenseStatus:
    """The outcome of the ``license`` check at one moment."""

    ok: bool
    detail: str
    warning: bool = False
    days_left: int | None = None
    license: License | None = None


def _b64decode(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise LicenseInvalid(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise LicenseInvalid(f"{what} is not valid base64") from None


def load_trusted_keys(keys_dir: Path) -> tuple[dict[str, Ed25519PublicKey], list[str]]:
    """Read ``<key_id>.pem`` files; return the keys and a note for each unusable file."""
    keys: dict[str, Ed25519PublicKey] = {}
    problems: list[str] = []
    try:
        paths = sorted(keys_dir.glob("*.pem"))
    except OSError as exc:
        return keys, [f"cannot list {keys_dir}: {exc.strerror}"]
    for path in paths:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError, TypeError):
            problems.append(f"{path.name} is not a readable PEM public key")
            continue
        if not isinstance(key, Ed25519PublicKey):
            problems.append(f"{path.name} is not an Ed25519 public key")
            continue
        keys[path.stem] = key
    return keys, problems


def _time(payload: Mapping[str, Any], name: str) -> dt.datetime:
    value = payload.get(name)
    if not isinstance(value, str):
        raise LicenseInvalid(f"payload field {name!r} is missing or not a string")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise LicenseInvalid(
            f"payload field {name!r} is not an RFC 3339 time"
        ) from None
    if parsed.tzinfo is None:
        raise LicenseInvalid(f"payload field {name!r} has no time zone")
    return parsed


def _string(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise LicenseInvalid(f"payload field {name!r} is missing or not a string")
    return value


def parse_document(raw: bytes, keys: Mapping[str, Ed25519PublicKey]) -> License:
    """Check the file's shape and signatures and return the payload's fields.

    Binding to a customer, hub, deployment and time is checked by :func:`evaluate`.
    """
    if not raw.strip():
        raise LicenseInvalid("license file is empty")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LicenseInvalid("license file is not valid JSON") from None
    if not isinstance(document, dict):
        raise LicenseInvalid("license file is not a JSON object")
    if document.get("format") != LICENSE_FORMAT:
        raise LicenseInvalid(f"license format is not {LICENSE_FORMAT!r}")
    payload_bytes = _b64decode(document.get("payload"), "payload")
    signatures = document.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise LicenseInvalid("license has no signatures")
    trusted_seen: list[str] = []
    signed_by: str | None = None
    for entry in signatures:
        if not isinstance(entry, dict):
            continue
        key_id = entry.get("key_id")
        if not isinstance(key_id, str) or key_id not in keys:
            continue
        if entry.get("algorithm") != ALGORITHM:
            continue
        trusted_seen.append(key_id)
        try:
            signature = _b64decode(entry.get("signature"), "signature")
            keys[key_id].verify(signature, payload_bytes)
        except (LicenseInvalid, InvalidSignature):
            continue
        signed_by = key_id
        break
    if signed_by is None:
        if trusted_seen:
            raise LicenseInvalid(
                "signature does not verify with trusted key "
                + ", ".join(sorted(set(trusted_seen)))
            )
        named = sorted(
            {
                str(e.get("key_id"))
                for e in signatures
                if isinstance(e, dict) and e.get("key_id")
            }
        )
        raise LicenseInvalid(
            "no signature by a trusted key (signed with: "
            + (", ".join(named) or "none")
            + "; trusted: "
            + (", ".join(sorted(keys)) or "none")
            + ")"
        )
    try:
        payload = json.loads(payload_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LicenseInvalid("payload is not UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise LicenseInvalid("payload is not a JSON object")
    hubs = payload.get("hubs")
    if not isinstance(hubs, dict):
        raise LicenseInvalid("payload field 'hubs' is missing or not an object")
    grace = payload.get("grace_days", 0)
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        raise LicenseInvalid("payload field 'grace_days' is not an integer >= 0")
    deployment = payload.get("deployment_id")
    if deployment is not None and not isinstance(deployment, str):
        raise LicenseInvalid("payload field 'deployment_id' is not a string or null")
    features = payload.get("features", {})
    if not isinstance(features, dict):
        raise LicenseInvalid("payload field 'features' is not an object")
    return License(
        license_id=_string(payload, "license_id"),
        customer_id=_string(payload, "customer_id"),
        customer_name=_string(payload, "customer_name"),
        hubs=hubs,
        issued_at=_time(payload, "issued_at"),
        not_before=_time(payload, "not_before"),
        expires_at=_time(payload, "expires_at"),
        grace_days=grace,
        deployment_id=deployment or None,
        features={str(k): bool(v) for k, v in features.items()},
        key_id=signed_by,
    )


def evaluate(
    lic: License,
    *,
    hub: str,
    customer_id: str,
    deployment_id: str | None,
    now: dt.datetime,
) -> LicenseStatus:
    """Check the binding and the time window of a verified license at *now*."""
    if lic.customer_id != customer_id:
        return LicenseStatus(
            False,
            f"license {lic.license_id} is for customer {lic.customer_id!r}, "
            f"not {customer_id!r} (TRADEHUB_CUSTOMER_ID)",
        )
    if hub not in lic.hubs:
        covered = ", ".join(sorted(lic.hubs)) or "none"
        return LicenseStatus(
            False,
            f"license {lic.license_id} does not cover hub {hub!r} (covers: {covered})",
        )
    if lic.deployment_id is not None and lic.deployment_id != deployment_id:
        where = repr(deployment_id) if deployment_id else "unset"
        return LicenseStatus(
            False,
            f"license {lic.license_id} is bound to deployment {lic.deployment_id!r}, "
            f"TRADEHUB_DEPLOYMENT_ID is {where}",
        )
    if now < lic.not_before:
        return LicenseStatus(
            False,
            f"license {lic.license_id} is not valid before "
            f"{lic.not_before.astimezone(dt.UTC).isoformat()}",
        )
    days_left = math.floor((lic.expires_at - now).total_seconds() / _DAY)
    expiry = lic.expires_at.astimezone(dt.UTC).date().isoformat()
    if now <= lic.expires_at:
        return LicenseStatus(
            True,
            f"valid until {expiry}, {days_left} days left",
            days_left=days_left,
            license=lic,
        )
    grace_end = lic.expires_at + dt.timedelta(days=lic.grace_days)
    if now <= grace_end:
        grace_left = math.floor((grace_end - now).total_seconds() / _DAY)
        return LicenseStatus(
            True,
            f"expired on {expiry}; in its grace period, {grace_left} of "
            f"{lic.grace_days} grace days left: renew the license",
            warning=True,
            days_left=days_left,
            license=lic,
        )
    return LicenseStatus(
        False,
        f"license {lic.license_id} expired on {expiry} and its "
        f"{lic.grace_days} grace days are over",
    )


class LicenseState:
    """The license as last read from disk, evaluated against the clock on demand."""

    def __init__(
        self,
        license_file: Path,
        keys_dir: Path,
        *,
        hub: str,
        customer_id: str,
        deployment_id: str | None,
    ) -> None:
        self.license_file = license_file
        self.keys_dir = keys_dir
        self.hub = hub
        self.customer_id = customer_id
        self.deployment_id = deployment_id
        self._license: License | None = None
        self._error = "license not read yet"
        self.key_problems: list[str] = []

    def load(self) -> LicenseStatus:
        """Re-read the trusted keys and the license file; return the status now."""
        keys, self.key_problems = load_trusted_keys(self.keys_dir)
        self._license = None
        try:
            if not self.license_file.exists():
                raise LicenseInvalid(f"license file {self.license_file} not found")
            if self.license_file.stat().st_size > MAX_LICENSE_BYTES:
                raise LicenseInvalid(f"license file {self.license_file} is too large")
            raw = self.license_file.read_bytes()
            if not keys:
                raise LicenseInvalid(f"no trusted keys (*.pem) in {self.keys_dir}")
            self._license = parse_document(raw, keys)
        except LicenseInvalid as exc:
            self._error = str(exc)
        except OSError as exc:
            self._error = (
                f"cannot read license file {self.license_file}: {exc.strerror}"
            )
        return self.status()

    def status(self, now: dt.datetime | None = None) -> LicenseStatus:
        if self._license is None:
            return LicenseStatus(False, self._error)
        return evaluate(
            self._license,
            hub=self.hub,
            customer_id=self.customer_id,
            deployment_id=self.deployment_id,
            now=now or dt.datetime.now(dt.UTC),
        )


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The canonical bytes that get signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def sign_license(
    private_key: Ed25519PrivateKey, key_id: str, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the license file document for *payload*, signed with *private_key*.

    Write it with ``json.dump``; hubs verify the signature against the trusted key
    ``<key_id>.pem``.
    """
    payload_bytes = encode_payload(payload)
    return {
        "format": LICENSE_FORMAT,
        "payload": base64.b64encode(payload_bytes).decode("ascii"),
        "signatures": [_signature(private_key, key_id, payload_bytes)],
    }


def add_signature(
    document: Mapping[str, Any], private_key: Ed25519PrivateKey, key_id: str
) -> dict[str, Any]:
    """Return *document* with one more signature, for rotating the vendor's keys."""
    payload_bytes = base64.b64decode(document["payload"], validate=True)
    signed = dict(document)
    signed["signatures"] = [
        *document.get("signatures", []),
        _signature(private_key, key_id, payload_bytes),
    ]
    return signed


def public_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    """The PEM text to install as ``<key_id>.pem`` in the trusted-keys directory."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _signature(
    private_key: Ed25519PrivateKey, key_id: str, payload_bytes: bytes
) -> dict[str, str]:
    return {
        "key_id": key_id,
        "algorithm": ALGORITHM,
        "signature": base64.b64encode(private_key.sign(payload_bytes)).decode("ascii"),
    }

# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline verification of signed hub licenses (docs/licensing.md).

Pure logic, without Ansible: the modules hand it the license text, the trusted public
keys and what the deployment is (customer, hubs, deployment id, the time), and get back
either a :class:`License` or a :class:`LicenseError` whose message names the reason.
Nothing here reads or returns key material beyond the public keys it is given.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import os
import re

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - reported by the modules
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True

LICENSE_FORMAT = "tradehub-license/1"
ALGORITHM = "ed25519"
#: A license is a few hundred bytes; anything larger is refused unread.
MAX_LICENSE_BYTES = 1 << 20
KEY_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_DAY = 86400.0

#: The statuses of :func:`assess`, from best to worst.
VALID, IN_GRACE, EXPIRED, NOT_YET_VALID = (
    "valid",
    "in_grace",
    "expired",
    "not_yet_valid",
)


class LicenseError(Exception):
    """The license is refused; the message says why and is safe to show."""


class License:
    """The fields of a license whose signature verified."""

    def __init__(self, payload, key_id):
        self.key_id = key_id
        self.license_id = _string(payload, "license_id")
        self.customer_id = _string(payload, "customer_id")
        self.customer_name = _string(payload, "customer_name")
        hubs = payload.get("hubs")
        if not isinstance(hubs, dict) or not hubs:
            raise LicenseError(
                "payload field 'hubs' is missing or not a non-empty object"
            )
        self.hubs = hubs
        self.issued_at = _time(payload, "issued_at")
        self.not_before = _time(payload, "not_before")
        self.expires_at = _time(payload, "expires_at")
        grace = payload.get("grace_days", 0)
        if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
            raise LicenseError("payload field 'grace_days' is not an integer >= 0")
        self.grace_days = grace
        deployment = payload.get("deployment_id")
        if deployment is not None and not isinstance(deployment, str):
            raise LicenseError("payload field 'deployment_id' is not a string or null")
        self.deployment_id = deployment or None
        features = payload.get("features", {})
        if not isinstance(features, dict):
            raise LicenseError("payload field 'features' is not an object")
        self.features = {str(name): bool(on) for name, on in features.items()}

    @property
    def grace_ends_at(self):
        return self.expires_at + dt.timedelta(days=self.grace_days)

    def summary(self, now=None):
        """What a module returns about the license: never a signature or a key."""
        summary = {
            "license_id": self.license_id,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "hubs": sorted(self.hubs),
            "coverage": self.hubs,
            "issued_at": _iso(self.issued_at),
            "not_before": _iso(self.not_before),
            "expires_at": _iso(self.expires_at),
            "grace_days": self.grace_days,
            "deployment_id": self.deployment_id,
            "features": self.features,
            "key_id": self.key_id,
        }
        if now is not None:
            summary.update(assess(self, now))
        return summary


def _iso(moment):
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _string(payload, name):
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise LicenseError(f"payload field {name!r} is missing or not a string")
    return value


def _time(payload, name):
    value = _string(payload, name)
    try:
        # Python before 3.11 does not read the "Z" suffix.
        moment = dt.datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", value))
    except ValueError:
        raise LicenseError(
            f"payload field {name!r} is not an RFC 3339 time: {value!r}"
        ) from None
    if moment.tzinfo is None:
        raise LicenseError(f"payload field {name!r} has no time zone: {value!r}")
    return moment


def _b64decode(value, what):
    if not isinstance(value, str):
        raise LicenseError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise LicenseError(f"{what} is not valid base64") from None


def load_public_key(pem, name):
    """Read one trusted key; *name* (its file) is used in the error."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise LicenseError(f"trusted key {name} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise LicenseError(f"trusted key {name} is not an Ed25519 public key")
    return key


def load_trusted_keys(directory):
    """Return ``{key_id: public key}`` from the ``<key_id>.pem`` files of *directory*."""
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(".pem"))
    except OSError as exc:
        raise LicenseError(
            f"cannot read the trusted keys in {directory}: {exc.strerror}"
        ) from None
    keys = {}
    for name in names:
        path = os.path.join(directory, name)
        with open(path, "rb") as handle:
            keys[name[: -len(".pem")]] = load_public_key(handle.read(), path)
    if not keys:
        raise LicenseError(
            f"no trusted keys (<key_id>.pem) in {directory}: install the vendor's public keys "
            "there (hub_trusted_keys of the hub role)"
        )
    return keys


def parse(raw, keys):
    """Check the document's shape and its signatures; return the :class:`License`.

    *raw* is the file's bytes; *keys* maps key ids to Ed25519 public keys. A signature
    by a key that is not trusted is skipped; the license verifies when one signature by
    a trusted key does.
    """
    if len(raw) > MAX_LICENSE_BYTES:
        raise LicenseError(f"the license is larger than {MAX_LICENSE_BYTES} bytes")
    if not raw.strip():
        raise LicenseError("the license is empty")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise LicenseError(
            "the license is not valid JSON (truncated or not a license file)"
        ) from None
    if not isinstance(document, dict):
        raise LicenseError("the license is not a JSON object")
    if document.get("format") != LICENSE_FORMAT:
        raise LicenseError(
            f"the license's format is {document.get('format')!r}, not {LICENSE_FORMAT!r}"
        )
    payload_bytes = _b64decode(document.get("payload"), "the license's payload")
    signatures = document.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise LicenseError("the license has no signatures")
    named = []
    failed = []
    signed_by = None
    for entry in signatures:
        if not isinstance(entry, dict):
            raise LicenseError("a signature of the license is not an object")
        key_id = entry.get("key_id")
        named.append(str(key_id))
        if key_id not in keys:
            continue
        if entry.get("algorithm") != ALGORITHM:
            failed.append(
                f"{key_id} (algorithm {entry.get('algorithm')!r}, not {ALGORITHM!r})"
            )
            continue
        try:
            keys[key_id].verify(
                _b64decode(entry.get("signature"), "signature"), payload_bytes
            )
        except (LicenseError, InvalidSignature):
            failed.append(key_id)
            continue
        signed_by = key_id
        break
    if signed_by is None:
        if failed:
            raise LicenseError(
                "the signature does not verify with trusted key "
                + ", ".join(failed)
                + ": the license was changed after signing, or is not the vendor's"
            )
        raise LicenseError(
            "the license is not signed by a trusted key (signed by: "
            + ", ".join(sorted(set(named)))
            + "; trusted: "
            + (", ".join(sorted(keys)) or "none")
            + ")"
        )
    try:
        payload = json.loads(payload_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise LicenseError("the license's payload is not UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise LicenseError("the license's payload is not a JSON object")
    return License(payload, signed_by)


def describe(raw):
    """Read the payload without verifying it, for a diff of what is installed.

    Returns the summary fields that a diff shows, or ``{"unreadable": reason}``.
    """
    try:
        document = json.loads(raw)
        payload = json.loads(base64.b64decode(document["payload"], validate=True))
        return {
            "license_id": str(payload["license_id"]),
            "hubs": sorted(payload["hubs"]),
            "expires_at": str(payload["expires_at"]),
        }
    except (ValueError, TypeError, KeyError, binascii.Error):
        return {"unreadable": "not a readable license file"}


def assess(lic, now):
    """The license's time status at *now*: status, days_left and grace days left."""
    days_left = math.floor((lic.expires_at - now).total_seconds() / _DAY)
    if now < lic.not_before:
        status = NOT_YET_VALID
    elif now <= lic.expires_at:
        status = VALID
    elif now <= lic.grace_ends_at:
        status = IN_GRACE
    else:
        status = EXPIRED
    grace_left = max(0, math.floor((lic.grace_ends_at - now).total_seconds() / _DAY))
    return {
        "status": status,
        "days_left": days_left,
        "grace_days_left": grace_left if status == IN_GRACE else None,
    }


def check(lic, customer_id, hubs, deployment_id, now):
    """Refuse a verified license that does not fit this deployment at *now*.

    Returns a list of warnings (a license within its grace period) when it fits.
    """
    if lic.customer_id != customer_id:
        raise LicenseError(
            f"license {lic.license_id} is for customer {lic.customer_id!r}, not "
            f"{customer_id!r} (tradehub_customer_id)"
        )
    missing = sorted(set(hubs) - set(lic.hubs))
    if missing:
        raise LicenseError(
            f"license {lic.license_id} does not cover {'hub' if len(missing) == 1 else 'hubs'} "
            f"{', '.join(missing)} "
            f"(it covers {', '.join(sorted(lic.hubs))}): ask the vendor for a license "
            "that covers every installed hub, or remove the hub from tradehub_hubs"
        )
    if lic.deployment_id is not None and lic.deployment_id != deployment_id:
        raise LicenseError(
            f"license {lic.license_id} is bound to deployment {lic.deployment_id!r}, and "
            f"this deployment is {deployment_id or 'unnamed'!r} (tradehub_deployment_id)"
        )
    state = assess(lic, now)
    if state["status"] == NOT_YET_VALID:
        raise LicenseError(
            f"license {lic.license_id} is not valid before {_iso(lic.not_before)}"
        )
    if state["status"] == EXPIRED:
        raise LicenseError(
            f"license {lic.license_id} expired on {_iso(lic.expires_at)} and its "
            f"{lic.grace_days} grace days are over: ask the vendor for a renewal"
        )
    if state["status"] == IN_GRACE:
        return [
            f"license {lic.license_id} expired on {_iso(lic.expires_at)}; the hubs stay ready "
            f"for {state['grace_days_left']} more grace days: ask the vendor for a renewal"
        ]
    return []


def now_utc():
    return dt.datetime.now(dt.timezone.utc)

"""The bad licenses every verifier must refuse, built from the session's signer.

The reference hub (``/readyz``) and the collection's ``hub_license`` module are tested
against the same list, each with the reason its own message gives. All target
customer ``CUSTOMER_ID`` and the hub ``content``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tradehub_reference_hub.license import sign_license

from tests.support.lab import TRUSTED_KEY_ID, LicenseSigner, utc

#: The deployment a bound license is checked against.
DEPLOYMENT = "dep-eu-1"


def flip_one_payload_byte(document: dict[str, Any]) -> dict[str, Any]:
    """The document with one byte of its signed payload changed, still valid JSON."""
    payload = bytearray(base64.b64decode(document["payload"]))
    index = payload.index(b"Example")
    payload[index] ^= 0x01  # 'E' becomes 'D'
    return {**document, "payload": base64.b64encode(bytes(payload)).decode()}


def signed_by(key: Ed25519PrivateKey, key_id: str, signer: LicenseSigner, **kw: Any):
    return sign_license(key, key_id, signer.payload(**kw))


Make = Callable[[LicenseSigner], Any]

BAD_LICENSES: dict[str, Make] = {
    "payload-changed-by-one-byte": lambda s: flip_one_payload_byte(s.document()),
    "unknown-key-id": lambda s: signed_by(s.trusted, "tamyla-unknown-9", s),
    "wrong-signature": lambda s: signed_by(s.untrusted, TRUSTED_KEY_ID, s),
    "expired-past-grace": lambda s: s.document(
        s.payload(not_before=utc(-400), expires_at=utc(-30), grace_days=14)
    ),
    "not-yet-valid": lambda s: s.document(
        s.payload(not_before=utc(2), expires_at=utc(400))
    ),
    "another-customer": lambda s: s.document(s.payload(customer_id="cust-0099")),
    "hub-not-covered": lambda s: s.document(
        s.payload(hubs={"demand": {"edition": "standard", "limits": {}}})
    ),
    "another-deployment": lambda s: s.document(s.payload(deployment_id="dep-us-2")),
    "truncated": lambda s: json.dumps(s.document()).encode()[:60],
    "not-json": lambda s: b"license: yes\n",
    "empty-file": lambda s: b"",
    "unknown-format": lambda s: {**s.document(), "format": "tradehub-license/9"},
}


def as_bytes(document: dict[str, Any] | bytes) -> bytes:
    """What a license file holds for *document*."""
    if isinstance(document, bytes):
        return document
    return json.dumps(document).encode()

"""The vendor's tool for Private Trade Hub licenses (format ``tradehub-license/1``).

A self-contained implementation of the format that the hubs verify offline (hub
contract section 7, docs/licensing.md): :mod:`tradehub_license.keys` creates and reads
the Ed25519 keys, :mod:`tradehub_license.description` turns a YAML description into a
payload, :mod:`tradehub_license.document` signs and verifies license files, and
:mod:`tradehub_license.cli` is the ``tradehub-license`` command.

Other tools can use the functions directly::

    from tradehub_license import build_payload, load_private_key, sign, dumps

    payload = build_payload({"customer_id": "acme", ...}, now=now_utc())
    text = dumps(sign(payload, [load_private_key(Path("keys/tamyla-2026-1.key"))]))
"""

from tradehub_license.description import build_payload, load_description
from tradehub_license.document import (
    FORMAT,
    HUB_NAMES,
    License,
    dumps,
    encode_payload,
    now_utc,
    sign,
    verify,
)
from tradehub_license.errors import InputError, LicenseRefused
from tradehub_license.keys import generate, load_private_key, load_trusted_keys

__version__ = "1.0.0"

__all__ = [
    "FORMAT",
    "HUB_NAMES",
    "InputError",
    "License",
    "LicenseRefused",
    "build_payload",
    "dumps",
    "encode_payload",
    "generate",
    "load_description",
    "load_private_key",
    "load_trusted_keys",
    "now_utc",
    "sign",
    "verify",
]

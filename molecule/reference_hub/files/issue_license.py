"""Issue a test license for the reference hub scenario, as the vendor would.

Generates an Ed25519 signing key (once), writes its public key as ``<key_id>.pem`` for
the host's trusted-keys directory, and signs a license for one customer and hub with
the signing helper of the reference hub package (``tradehub_reference_hub.license``),
so that the test exercises the vendor's own signing code. Runs on the controller,
writing only into the directory it is given (the scenario's ephemeral directory), so
that no key ever lands in the repository.

Prints one JSON line: the paths written and whether anything changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tradehub_reference_hub.license import public_key_pem, sign_license

SIGNING_KEY_FILE = "signing-key.pem"
LICENSE_FILE = "license.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Read the command line; every option is needed to say who the license is for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="output directory")
    parser.add_argument("--key-id", required=True, help="key id of the signing key")
    parser.add_argument("--customer-id", required=True)
    parser.add_argument("--customer-name", required=True)
    parser.add_argument("--hub", action="append", required=True, help="licensed hub")
    parser.add_argument("--days", type=int, default=365, help="validity in days")
    return parser.parse_args(argv)


def load_or_create_key(directory: Path) -> tuple[Ed25519PrivateKey, bool]:
    """Return the signing key, creating it on first use so reruns keep one identity."""
    path = directory / SIGNING_KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SystemExit(f"{path} is not an Ed25519 private key; remove it")
        return key, False
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return key, True


def build_payload(args: argparse.Namespace, now: datetime) -> dict[str, object]:
    """Describe the license (contract section 7) for the customer and hubs asked for."""
    stamp = now.replace(microsecond=0)
    return {
        "license_id": f"test-{args.customer_id}-{stamp:%Y%m%dT%H%M%SZ}",
        "customer_id": args.customer_id,
        "customer_name": args.customer_name,
        "hubs": {hub: {"edition": "standard", "limits": {}} for hub in args.hub},
        "issued_at": stamp.isoformat(),
        "not_before": (stamp - timedelta(hours=1)).isoformat(),
        "expires_at": (stamp + timedelta(days=args.days)).isoformat(),
        "grace_days": 14,
        "deployment_id": None,
        "features": {},
    }


def main(argv: list[str]) -> int:
    """Write the public key and, unless one exists, a freshly signed license."""
    args = parse_args(argv)
    args.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key, key_created = load_or_create_key(args.dir)
    public_pem = public_key_pem(key)
    public_path = args.dir / f"{args.key_id}.pem"
    public_changed = not public_path.exists() or public_path.read_bytes() != public_pem
    if public_changed:
        public_path.write_bytes(public_pem)
    license_path = args.dir / LICENSE_FILE
    license_created = key_created or not license_path.exists()
    if license_created:
        payload = build_payload(args, datetime.now(UTC))
        document = sign_license(key, args.key_id, payload)
        license_path.write_text(json.dumps(document, indent=2) + "\n")
    result = {
        "public_key": str(public_path),
        "license": str(license_path),
        "changed": key_created or public_changed or license_created,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

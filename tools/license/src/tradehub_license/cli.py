"""``tradehub-license``: the vendor's command line for Private Trade Hub licenses.

    tradehub-license keygen --key-id ID --out DIR
    tradehub-license issue DESCRIPTION.yml --key DIR/ID.key [--key ...] [--out FILE]
    tradehub-license inspect LICENSE [--trusted-keys DIR] [--customer-id ID]
                                     [--hub NAME ...] [--deployment-id ID] [--json]

Exit codes: 0 done (``inspect``: the license passes every check asked for), 1 the
license is refused (the reason is printed, with a stable code), 2 the command could not
be carried out (bad arguments, unreadable or invalid input). docs/licensing.md
describes the format and the workflow.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from tradehub_license import __version__, description, document, keys
from tradehub_license.errors import InputError, LicenseRefused

PROG = "tradehub-license"
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Create signing keys, issue and inspect Private Trade Hub "
        f"licenses ({document.FORMAT}).",
        epilog="Exit codes: 0 done, 1 license refused, 2 error in the input.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keygen = commands.add_parser(
        "keygen",
        help="create a signing key pair: ID.key (private) and ID.pem (public)",
        description="Create an Ed25519 signing key pair in DIR: ID.key (PKCS#8 PEM, "
        "mode 0600; keep it offline) and ID.pem (the public key customers install "
        "among their trusted keys). Existing files are never overwritten.",
    )
    keygen.add_argument(
        "--key-id",
        required=True,
        help="the key's id: lower-case letters, digits, '.' and '-' (e.g. tamyla-2026-1)",
    )
    keygen.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="directory to write to"
    )

    issue = commands.add_parser(
        "issue",
        help="sign a license from a YAML description",
        description="Build the license payload from DESCRIPTION.yml, sign it with every "
        "--key (one signature each: sign with the old and the new key while rotating "
        "keys) and write the license file.",
    )
    issue.add_argument("description", type=Path, metavar="DESCRIPTION.yml")
    issue.add_argument(
        "--key",
        required=True,
        action="append",
        type=Path,
        metavar="PRIVATE.key",
        help="a signing key written by keygen; its key id is the file name without "
        ".key (repeat for several signatures)",
    )
    issue.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the license here (replacing it) instead of to standard output",
    )

    inspect = commands.add_parser(
        "inspect",
        help="show a license and check it",
        description="Show a license's payload and signatures and check it: the "
        "signatures against the trusted keys (when given), the customer, hubs and "
        "deployment given, and the validity window now. Exit 0 when every check "
        "passes, 1 with the reason when the license is refused.",
    )
    inspect.add_argument(
        "license", type=Path, metavar="LICENSE", help="the license file ('-': stdin)"
    )
    inspect.add_argument(
        "--trusted-keys",
        type=Path,
        metavar="DIR",
        help="directory of trusted <key_id>.pem public keys (or one such file); "
        "without it the signatures are listed but not verified",
    )
    inspect.add_argument("--customer-id", metavar="ID", help="the customer expected")
    inspect.add_argument(
        "--hub",
        action="append",
        default=[],
        choices=document.HUB_NAMES,
        metavar="NAME",
        help="a hub the license must cover (repeat for several)",
    )
    inspect.add_argument(
        "--deployment-id",
        metavar="ID",
        help="the deployment it will run in; refused if bound to another one",
    )
    inspect.add_argument(
        "--at",
        metavar="TIME",
        help="evaluate the validity at this RFC 3339 time instead of now",
    )
    inspect.add_argument(
        "--json", action="store_true", help="print the result as one JSON object"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (see the module's documentation)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        if args.command == "keygen":
            return _keygen(args)
        if args.command == "issue":
            return _issue(args)
        return _inspect(args)
    except InputError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


# ------------------------------------------------------------------------ keygen


def _keygen(args: argparse.Namespace) -> int:
    pair = keys.generate(args.key_id, args.out)
    print(
        f"wrote {pair.private_path} (private signing key, mode 0600: keep it offline, "
        "never in version control)"
    )
    print(
        f"wrote {pair.public_path} (public key: customers install it as a trusted key)"
    )
    return EXIT_OK


# ------------------------------------------------------------------------- issue


def _write_atomically(path: Path, text: str) -> None:
    """Replace *path* in one step, so that no reader ever sees half a license."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"--out {path}: directory {directory} does not exist")
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InputError(f"cannot write --out {path}: {exc.strerror}") from None


def _issue(args: argparse.Namespace) -> int:
    signing_keys = [keys.load_private_key(path) for path in args.key]
    for path in args.key:
        warning = keys.private_key_warning(path)
        if warning:
            print(f"{PROG} issue: warning: {warning}", file=sys.stderr)
    data = description.load_description(args.description)
    try:
        payload = description.build_payload(data, now=document.now_utc())
    except InputError as exc:
        problems = str(exc).replace("\n", "\n  ")
        raise InputError(
            f"{args.description} is not a valid license description:\n  {problems}"
        ) from None
    signed = document.sign(payload, signing_keys)
    text = document.dumps(signed)
    if args.out is not None:
        _write_atomically(args.out, text)
    else:
        sys.stdout.write(text)
    lic = document.license_from_payload(payload)
    deployment = (
        f"bound to deployment {lic.deployment_id}"
        if lic.deployment_id
        else "any deployment"
    )
    where = f"; written to {args.out}" if args.out is not None else ""
    print(
        f"issued license {lic.license_id} for {lic.customer_id} "
        f"({', '.join(sorted(lic.hubs))}), valid {payload['not_before']} to "
        f"{payload['expires_at']} + {lic.grace_days} grace days, {deployment}; "
        f"signed by {', '.join(key_id for key_id, _ in signing_keys)}{where}",
        file=sys.stderr,
    )
    return EXIT_OK


# ----------------------------------------------------------------------- inspect


def _read_license(path: Path) -> bytes:
    limit = document.MAX_DOCUMENT_BYTES + 1  # one more, so read_document sees it
    if str(path) == "-":
        return sys.stdin.buffer.read(limit)
    try:
        with path.open("rb") as handle:
            return handle.read(limit)
    except FileNotFoundError:
        raise InputError(f"license file {path} not found") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a license file") from None
    except OSError as exc:
        raise InputError(f"cannot read license file {path}: {exc.strerror}") from None


def _inspect(args: argparse.Namespace) -> int:
    if args.at is not None:
        try:
            now = document.parse_time(args.at)
        except ValueError:
            raise InputError(
                f"--at {args.at!r} is not an RFC 3339 time with a zone, "
                "e.g. 2027-05-01T00:00:00Z"
            ) from None
    else:
        now = document.now_utc()
    trusted = None
    key_notes: list[str] = []
    if args.trusted_keys is not None:
        trusted, key_notes = keys.load_trusted_keys(args.trusted_keys)
    raw = _read_license(args.license)
    try:
        result = document.verify(
            raw,
            trusted,
            customer_id=args.customer_id,
            hubs=args.hub,
            deployment_id=args.deployment_id,
            now=now,
        )
    except LicenseRefused as exc:
        if args.json:
            _print_json({"ok": False, "code": exc.code, "reason": exc.message})
        print(f"{PROG} inspect: refused [{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    warnings = list(key_notes)
    if result.license is not None and result.license.unknown_fields:
        warnings.append(
            "payload fields this format does not define (ignored by hubs): "
            + ", ".join(result.license.unknown_fields)
        )
    if args.json:
        if result.window is not None and result.window.state == "in-grace":
            warnings.append(result.window.text)
        _print_json(_json_report(args, result, trusted is not None, warnings, now))
    else:  # the validity line already says when it is in grace
        _print_report(sys.stdout, args, result, trusted is not None, warnings, now)
    if result.refusal is not None:
        refusal = result.refusal
        print(
            f"{PROG} inspect: refused [{refusal.code}]: {refusal.message}",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    return EXIT_OK


def _print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _license_json(lic: document.License) -> dict[str, Any]:
    return {
        "license_id": lic.license_id,
        "customer_id": lic.customer_id,
        "customer_name": lic.customer_name,
        "hubs": lic.hubs,
        "issued_at": document.format_time(lic.issued_at),
        "not_before": document.format_time(lic.not_before),
        "expires_at": document.format_time(lic.expires_at),
        "grace_days": lic.grace_days,
        "grace_ends_at": document.format_time(lic.grace_ends_at),
        "deployment_id": lic.deployment_id,
        "features": lic.features,
    }


def _json_report(
    args: argparse.Namespace,
    result: document.Verification,
    keys_given: bool,
    warnings: list[str],
    now: dt.datetime,
) -> dict[str, Any]:
    window = result.window
    return {
        "ok": result.ok,
        "code": result.refusal.code if result.refusal else None,
        "reason": result.refusal.message if result.refusal else None,
        "at": document.format_time(now),
        "license": _license_json(result.license) if result.license else None,
        "signatures_verified": keys_given,
        "signed_by": result.signed_by,
        "signatures": [
            {
                "key_id": check.key_id,
                "algorithm": check.algorithm,
                "status": check.status,
                "detail": check.detail,
            }
            for check in result.signatures
        ],
        "window": (
            {
                "state": window.state,
                "days_left": window.days_left,
                "grace_days_left": window.grace_days_left,
                "text": window.text,
            }
            if window
            else None
        ),
        "checked": {
            "customer_id": args.customer_id,
            "hubs": args.hub,
            "deployment_id": args.deployment_id,
        },
        "warnings": warnings,
    }


def _print_report(
    out: TextIO,
    args: argparse.Namespace,
    result: document.Verification,
    keys_given: bool,
    warnings: list[str],
    now: dt.datetime,
) -> None:
    def line(label: str, text: str) -> None:
        out.write(f"{label:<12}{text}\n")

    lic = result.license
    if lic is not None:
        line("license", lic.license_id)
        line("customer", f"{lic.customer_id} ({lic.customer_name})")
        width = max(len(entry["edition"]) for entry in lic.hubs.values())
        for index, hub in enumerate(sorted(lic.hubs)):
            entry = lic.hubs[hub]
            limits = ", ".join(f"{k}={v}" for k, v in sorted(entry["limits"].items()))
            text = f"{hub:<11} {entry['edition']:<{width}}  {limits}".rstrip()
            line("hubs" if index == 0 else "", text)
        line("issued", document.format_time(lic.issued_at))
        line("not before", document.format_time(lic.not_before))
        line(
            "expires",
            f"{document.format_time(lic.expires_at)} + {lic.grace_days} grace days "
            f"(until {document.format_time(lic.grace_ends_at)})",
        )
        line("deployment", lic.deployment_id or "any (not bound)")
        flags = ", ".join(
            f"{name}={'on' if on else 'off'}"
            for name, on in sorted(lic.features.items())
        )
        line("features", flags or "none")
    for index, check in enumerate(result.signatures):
        status = check.status
        if status == document.NOT_CHECKED:
            status += " (give --trusted-keys)"
        if check.detail:
            status += f": {check.detail}"
        line("signatures" if index == 0 else "", f"{check.key_id or '?'}  {status}")
    if result.window is not None:
        line("at", document.format_time(now))
        line("validity", result.window.text)
    for warning in warnings:
        line("warning", warning)
    if result.refusal is not None:
        line("result", f"REFUSED [{result.refusal.code}]: {result.refusal.message}")
        return
    checked = []
    if args.customer_id is not None:
        checked.append(f"customer {args.customer_id}")
    if args.hub:
        checked.append(f"hubs {', '.join(args.hub)}")
    if args.deployment_id is not None:
        checked.append(f"deployment {args.deployment_id}")
    text = (
        f"OK: signed by trusted key {result.signed_by}"
        if keys_given
        else "OK, but signatures not verified (no --trusted-keys)"
    )
    if checked:
        text += "; matches " + ", ".join(checked)
    line("result", text)

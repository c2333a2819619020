"""The license file, format ``tradehub-license/1``: its rules, signing and verifying.

A license file is a JSON object with three members::

    {"format": "tradehub-license/1",
     "payload": "<base64 of the payload bytes>",
     "signatures": [{"key_id": "...", "algorithm": "ed25519", "signature": "<base64>"}]}

The payload bytes are a UTF-8 JSON object (the fields are checked by
:func:`payload_problems`). Signatures cover those bytes exactly as they are in the file,
so a verifier never re-encodes the payload; this tool writes it in the canonical
encoding of :func:`encode_payload`. docs/licensing.md is the full description, and the
hubs (contract section 7) verify the same way, in the same order as :func:`verify`.

Nothing in this module returns or formats key material.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from tradehub_license.errors import InputError, LicenseRefused

FORMAT = "tradehub-license/1"
ALGORITHM = "ed25519"
HUB_NAMES = (
    "sourcing",
    "content",
    "contacts",
    "campaigns",
    "demand",
    "shipping",
    "services",
)
#: Larger files are refused unread, as the hubs do: a license is a few kilobytes.
MAX_DOCUMENT_BYTES = 1 << 20
SIGNATURE_BYTES = 64

#: Every payload field, in the order the documentation and ``inspect`` present them.
PAYLOAD_FIELDS = (
    "license_id",
    "customer_id",
    "customer_name",
    "hubs",
    "issued_at",
    "not_before",
    "expires_at",
    "grace_days",
    "deployment_id",
    "features",
)
#: Fields a verifier defaults when absent (``grace_days`` 0, unbound, no features).
OPTIONAL_FIELDS = ("grace_days", "deployment_id", "features")

# A key id is also a file name (<key_id>.pem), hence no slash and no leading dot.
KEY_ID_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")
# The collection's rule for tradehub_customer_id, which the hubs compare with.
CUSTOMER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
LICENSE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# What a hub accepts in TRADEHUB_DEPLOYMENT_ID: printable ASCII without spaces.
DEPLOYMENT_ID_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
# Editions, limit names and feature names.
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_DAY = dt.timedelta(days=1)


# --------------------------------------------------------------------------- times


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC to the second, as the tool writes every time: ``...T...Z``."""
    utc = moment.astimezone(dt.UTC).replace(microsecond=0)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> dt.datetime:
    """Read an RFC 3339 date-time with a zone (``Z`` or ``+hh:mm``); ValueError if not."""
    if not isinstance(text, str) or not RFC3339_RE.match(text):
        raise ValueError(text)
    return dt.datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text.upper()))


def now_utc() -> dt.datetime:
    """The current time in UTC, to the second (the resolution of a license)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# ----------------------------------------------------------------- payload fields


@dataclass(frozen=True)
class License:
    """A payload whose fields passed :func:`payload_problems`."""

    license_id: str
    customer_id: str
    customer_name: str
    hubs: dict[str, dict[str, Any]]
    issued_at: dt.datetime
    not_before: dt.datetime
    expires_at: dt.datetime
    grace_days: int
    deployment_id: str | None
    features: dict[str, bool]
    #: Payload members this format does not define: verifiers ignore them.
    unknown_fields: tuple[str, ...] = ()

    @property
    def grace_ends_at(self) -> dt.datetime:
        return self.expires_at + dt.timedelta(days=self.grace_days)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _name_problems(where: str, names: Iterable[object], what: str) -> list[str]:
    return [
        f"{where}: {what} name {name!r} must be a lower-case letter followed by up "
        "to 63 lower-case letters, digits, '_' or '-'"
        for name in names
        if not isinstance(name, str) or not NAME_RE.match(name)
    ]


def _pattern_rule(
    name: str, pattern: re.Pattern[str], rule: str
) -> Callable[[object], list[str]]:
    def check(value: object) -> list[str]:
        if isinstance(value, str) and pattern.match(value):
            return []
        return [f"field {name!r} must be {rule} (found {value!r})"]

    return check


def _customer_name_problems(value: object) -> list[str]:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        return [
            "field 'customer_name' must be a non-empty string of up to 200 "
            f"characters (found {value!r})"
        ]
    if _CONTROL_RE.search(value):
        return ["field 'customer_name' must not contain control characters"]
    return []


def hub_entry_problems(hub: str, entry: object) -> list[str]:
    """Problems of one ``hubs`` member: ``{"edition": name, "limits": {name: int}}``."""
    where = f"field 'hubs': {hub}"
    if not isinstance(entry, Mapping):
        return [f"{where} must be an object with 'edition' and 'limits'"]
    problems = [
        f"{where}: unknown member {key!r}; only 'edition' and 'limits' are allowed"
        for key in entry
        if key not in ("edition", "limits")
    ]
    edition = entry.get("edition")
    if not isinstance(edition, str) or not NAME_RE.match(edition):
        problems.append(
            f"{where}: edition must be a lower-case name such as 'standard' "
            f"(found {edition!r})"
        )
    limits = entry.get("limits")
    if not isinstance(limits, Mapping):
        problems.append(
            f"{where}: limits must be an object of limit name -> integer >= 0, "
            f"{{}} for none (found {limits!r})"
        )
        return problems
    problems += _name_problems(f"{where}: limits", limits, "limit")
    problems += [
        f"{where}: limit {name} must be an integer >= 0 (found {value!r})"
        for name, value in limits.items()
        if not _is_int(value) or value < 0
    ]
    return problems


def _hubs_problems(value: object) -> list[str]:
    if not isinstance(value, Mapping) or not value:
        return [
            "field 'hubs' must be a non-empty object of hub name -> "
            f'{{"edition": ..., "limits": {{...}}}} (found {value!r})'
        ]
    problems = []
    for hub, entry in value.items():
        if hub in HUB_NAMES:
            problems += hub_entry_problems(hub, entry)
        else:
            problems.append(unknown_hub_problem(hub))
    return problems


def unknown_hub_problem(hub: object) -> str:
    """The message for a hub name that is not one of the seven, with a likely fix."""
    close = difflib.get_close_matches(str(hub), HUB_NAMES, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"field 'hubs': unknown hub {hub!r}; {hint}the hubs are " + ", ".join(
        HUB_NAMES
    )


def _time_rule(name: str) -> Callable[[object], list[str]]:
    def check(value: object) -> list[str]:
        try:
            parse_time(value)
        except ValueError:
            return [
                f"field {name!r} must be an RFC 3339 date-time with a time zone, "
                f"such as '2026-05-01T00:00:00Z' (found {value!r})"
            ]
        return []

    return check


def _grace_days_problems(value: object) -> list[str]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return []
    return [f"field 'grace_days' must be an integer >= 0 (found {value!r})"]


def _deployment_id_problems(value: object) -> list[str]:
    if value is None or (isinstance(value, str) and DEPLOYMENT_ID_RE.match(value)):
        return []
    return [
        "field 'deployment_id' must be null (valid in any deployment) or the "
        "deployment's id: 1 to 200 printable ASCII characters without spaces "
        f"(found {value!r})"
    ]


def _features_problems(value: object) -> list[str]:
    if not isinstance(value, Mapping):
        return [
            f"field 'features' must be an object of name -> true/false (found {value!r})"
        ]
    problems = _name_problems("field 'features'", value, "feature")
    problems += [
        f"field 'features': {name} must be true or false (found {flag!r})"
        for name, flag in value.items()
        if not isinstance(flag, bool)
    ]
    return problems


#: The rule of each payload field: a function returning its problems (empty: valid).
FIELD_RULES: dict[str, Callable[[object], list[str]]] = {
    "license_id": _pattern_rule(
        "license_id",
        LICENSE_ID_RE,
        "1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit",
    ),
    "customer_id": _pattern_rule(
        "customer_id",
        CUSTOMER_ID_RE,
        "the customer's tradehub_customer_id: 2 to 63 lower-case letters, digits "
        "and '-', starting with a letter or digit",
    ),
    "customer_name": _customer_name_problems,
    "hubs": _hubs_problems,
    "issued_at": _time_rule("issued_at"),
    "not_before": _time_rule("not_before"),
    "expires_at": _time_rule("expires_at"),
    "grace_days": _grace_days_problems,
    "deployment_id": _deployment_id_problems,
    "features": _features_problems,
}


def payload_problems(payload: Mapping[str, Any]) -> list[str]:
    """Every way *payload* breaks the rules of the format; empty when it is valid.

    Each message names the field and says what it must be, so that it serves both the
    vendor writing a license (``issue``) and anyone reading one (``inspect``).
    """
    problems: list[str] = []
    for name in PAYLOAD_FIELDS:
        if name in payload:
            problems += FIELD_RULES[name](payload[name])
        elif name not in OPTIONAL_FIELDS:
            problems.append(f"field {name!r} is missing")
    try:
        start = parse_time(payload.get("not_before"))
        end = parse_time(payload.get("expires_at"))
    except ValueError:
        return problems  # already reported, or missing
    if end <= start:
        problems.append(
            f"field 'expires_at' ({payload['expires_at']}) must be later than "
            f"'not_before' ({payload['not_before']})"
        )
    return problems


def license_from_payload(payload: Mapping[str, Any]) -> License:
    """The :class:`License` of a payload; LicenseRefused ``bad-payload`` if invalid."""
    problems = payload_problems(payload)
    if problems:
        raise LicenseRefused("bad-payload", "payload: " + "; ".join(problems))
    return License(
        license_id=payload["license_id"],
        customer_id=payload["customer_id"],
        customer_name=payload["customer_name"],
        hubs={
            hub: {"edition": entry["edition"], "limits": dict(entry["limits"])}
            for hub, entry in payload["hubs"].items()
        },
        issued_at=parse_time(payload["issued_at"]),
        not_before=parse_time(payload["not_before"]),
        expires_at=parse_time(payload["expires_at"]),
        grace_days=payload.get("grace_days", 0),
        deployment_id=payload.get("deployment_id"),
        features=dict(payload.get("features", {})),
        unknown_fields=tuple(sorted(set(payload) - set(PAYLOAD_FIELDS))),
    )


def parse_payload(payload_bytes: bytes) -> License:
    """Decode the signed bytes (UTF-8 JSON object) and check their fields."""
    try:
        payload = json.loads(payload_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LicenseRefused(
            "bad-payload", "payload is not UTF-8 JSON: the file was damaged or edited"
        ) from None
    if not isinstance(payload, dict):
        raise LicenseRefused("bad-payload", "payload is not a JSON object")
    return license_from_payload(payload)


# ------------------------------------------------------------------------ signing


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The canonical payload bytes: compact JSON, keys sorted, UTF-8, not ASCII-escaped."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def validate_key_id(key_id: str) -> str:
    """Return *key_id* if it may name a key (and its ``<key_id>.pem`` file)."""
    if not KEY_ID_RE.match(key_id):
        raise InputError(
            f"key id {key_id!r} is not valid: use 1 to 64 lower-case letters, digits, "
            "'.' and '-', starting with a letter or digit (e.g. 'tamyla-2026-1')"
        )
    return key_id


def sign(
    payload: Mapping[str, Any], keys: Sequence[tuple[str, Ed25519PrivateKey]]
) -> dict[str, Any]:
    """Return the license document of *payload*, with one signature per ``(key_id, key)``.

    The payload must be valid (InputError listing every problem otherwise). Several
    keys give several signatures over the same bytes, so that hubs trusting either the
    old or the new key accept the license while the vendor rotates its keys.
    """
    problems = payload_problems(payload)
    if problems:
        raise InputError("the payload is not valid:\n  " + "\n  ".join(problems))
    if not keys:
        raise InputError("no signing key given: a license needs at least one signature")
    key_ids = [validate_key_id(key_id) for key_id, _ in keys]
    duplicates = sorted({k for k in key_ids if key_ids.count(k) > 1})
    if duplicates:
        raise InputError(
            "key id given more than once: " + ", ".join(duplicates) + "; sign with "
            "each key once (the key id is the key file's name without '.key')"
        )
    payload_bytes = encode_payload(payload)
    signatures = []
    for key_id, key in keys:
        signature = key.sign(payload_bytes)
        # A key that cannot verify its own signature would make a license no hub takes.
        key.public_key().verify(signature, payload_bytes)
        signatures.append(
            {
                "key_id": key_id,
                "algorithm": ALGORITHM,
                "signature": base64.b64encode(signature).decode("ascii"),
            }
        )
    return {
        "format": FORMAT,
        "payload": base64.b64encode(payload_bytes).decode("ascii"),
        "signatures": signatures,
    }


def dumps(document: Mapping[str, Any]) -> str:
    """The license file's text, as the tool writes it (indented, newline at the end)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# -------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class Document:
    """A license file whose outer shape is right; nothing is verified yet."""

    payload_bytes: bytes
    signatures: list[Any]


def read_document(raw: bytes) -> Document:
    """Check the file's outer shape: steps 1 to 5 of the verification order."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise LicenseRefused(
            "not-json", f"license file is larger than {MAX_DOCUMENT_BYTES} bytes"
        )
    if not raw.strip():
        raise LicenseRefused(
            "empty", "license file is empty: copy the whole file the vendor sent"
        )
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise LicenseRefused(
            "not-json", "license file is not UTF-8 text: it is damaged"
        ) from None
    except json.JSONDecodeError as exc:
        raise LicenseRefused(
            "not-json",
            f"license file is not valid JSON ({exc.msg}: line {exc.lineno} column "
            f"{exc.colno}): it "
            "is cut short or damaged; copy the whole file the vendor sent",
        ) from None
    if not isinstance(document, dict):
        raise LicenseRefused("not-object", "license file is not a JSON object")
    if document.get("format") != FORMAT:
        raise LicenseRefused(
            "wrong-format",
            f"license format is {document.get('format')!r}, not {FORMAT!r}",
        )
    encoded = document.get("payload")
    try:
        if not isinstance(encoded, str) or not encoded:
            raise ValueError
        payload_bytes = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise LicenseRefused(
            "bad-payload", "member 'payload' is missing or not a base64 string"
        ) from None
    signatures = document.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise LicenseRefused(
            "no-signatures", "member 'signatures' is missing or empty: it is not signed"
        )
    return Document(payload_bytes=payload_bytes, signatures=signatures)


#: The outcome of one signature (``SignatureCheck.status``).
VERIFIED = "verified"
NOT_CHECKED = "not checked"
UNKNOWN_KEY = "unknown key"
INVALID = "does not verify"
MALFORMED = "malformed"


@dataclass(frozen=True)
class SignatureCheck:
    """One member of ``signatures`` and what became of it."""

    key_id: str | None
    algorithm: str | None
    status: str
    detail: str = ""


def check_signatures(
    document: Document, trusted: Mapping[str, Ed25519PublicKey] | None
) -> list[SignatureCheck]:
    """Verify each signature whose key id is trusted; *trusted* None checks none."""
    results = []
    for entry in document.signatures:
        if not isinstance(entry, dict):
            results.append(SignatureCheck(None, None, MALFORMED, "not an object"))
            continue
        key_id = entry.get("key_id") if isinstance(entry.get("key_id"), str) else None
        algorithm = entry.get("algorithm")
        algorithm = algorithm if isinstance(algorithm, str) else None
        if key_id is None:
            results.append(SignatureCheck(None, algorithm, MALFORMED, "no key_id"))
        elif algorithm != ALGORITHM:
            results.append(
                SignatureCheck(
                    key_id, algorithm, MALFORMED, f"algorithm is not {ALGORITHM!r}"
                )
            )
        elif trusted is None:
            results.append(SignatureCheck(key_id, algorithm, NOT_CHECKED))
        elif key_id not in trusted:
            results.append(
                SignatureCheck(key_id, algorithm, UNKNOWN_KEY, f"no {key_id}.pem")
            )
        else:
            results.append(_verify_one(document, entry, key_id, trusted[key_id]))
    return results


def _verify_one(
    document: Document, entry: Mapping[str, Any], key_id: str, key: Ed25519PublicKey
) -> SignatureCheck:
    try:
        signature = base64.b64decode(entry.get("signature", ""), validate=True)
    except (binascii.Error, ValueError, TypeError):
        return SignatureCheck(key_id, ALGORITHM, MALFORMED, "signature is not base64")
    if len(signature) != SIGNATURE_BYTES:
        return SignatureCheck(
            key_id,
            ALGORITHM,
            MALFORMED,
            f"signature is {len(signature)} bytes, not {SIGNATURE_BYTES}",
        )
    try:
        key.verify(signature, document.payload_bytes)
    except InvalidSignature:
        return SignatureCheck(
            key_id,
            ALGORITHM,
            INVALID,
            "the payload was changed after signing, or this was not signed with the "
            f"private key of the trusted {key_id}.pem",
        )
    return SignatureCheck(key_id, ALGORITHM, VERIFIED)


def signature_verdict(
    checks: Sequence[SignatureCheck], trusted: Mapping[str, Ed25519PublicKey]
) -> str:
    """The key id of the first verified signature, or LicenseRefused saying why none."""
    for check in checks:
        if check.status == VERIFIED and check.key_id:
            return check.key_id
    tried = [
        c for c in checks if c.status in (INVALID, MALFORMED) and c.key_id in trusted
    ]
    if tried:
        raise LicenseRefused(
            "bad-signature",
            "; ".join(
                f"signature by trusted key {c.key_id} {c.status}: {c.detail}"
                for c in tried
            ),
        )
    named = sorted({c.key_id for c in checks if c.key_id}) or ["none"]
    raise LicenseRefused(
        "unknown-key",
        f"no signature by a trusted key (signed with: {', '.join(named)}; trusted: "
        f"{', '.join(sorted(trusted)) or 'none'}): install the vendor's public key "
        "<key_id>.pem among the trusted keys, or ask the vendor to sign with a key "
        "you trust",
    )


@dataclass(frozen=True)
class Window:
    """Where a moment falls in a license's validity.

    ``state`` is ``valid``, ``in-grace`` (after ``expires_at``, within the grace days;
    still accepted, with a warning), ``expired`` or ``not-yet-valid``.
    """

    state: str
    days_left: int
    grace_days_left: int | None
    text: str

    @property
    def accepted(self) -> bool:
        return self.state in ("valid", "in-grace")


def window(lic: License, now: dt.datetime) -> Window:
    """Evaluate the validity window at *now*; whole days are rounded down, as hubs do."""
    days_left = math.floor((lic.expires_at - now) / _DAY)
    expires = format_time(lic.expires_at)
    if now < lic.not_before:
        return Window(
            "not-yet-valid",
            days_left,
            None,
            f"not valid before {format_time(lic.not_before)}",
        )
    if now <= lic.expires_at:
        return Window(
            "valid", days_left, None, f"valid until {expires}, {days_left} days left"
        )
    if now <= lic.grace_ends_at:
        grace_left = math.floor((lic.grace_ends_at - now) / _DAY)
        return Window(
            "in-grace",
            days_left,
            grace_left,
            f"expired on {expires}; in its grace period, {grace_left} of "
            f"{lic.grace_days} grace days left: renew the license",
        )
    return Window(
        "expired",
        days_left,
        0,
        f"expired on {expires} and its {lic.grace_days} grace days are over "
        f"(since {format_time(lic.grace_ends_at)})",
    )


def check_binding(
    lic: License,
    *,
    customer_id: str | None = None,
    hubs: Sequence[str] = (),
    deployment_id: str | None = None,
) -> None:
    """Check the customer, hubs and deployment asked for; None/empty skips a check."""
    if customer_id is not None and lic.customer_id != customer_id:
        raise LicenseRefused(
            "other-customer",
            f"license {lic.license_id} is for customer {lic.customer_id!r}, "
            f"not {customer_id!r}",
        )
    uncovered = [hub for hub in hubs if hub not in lic.hubs]
    if uncovered:
        raise LicenseRefused(
            "hub-not-covered",
            f"license {lic.license_id} does not cover hub "
            f"{', '.join(uncovered)} (covers: {', '.join(sorted(lic.hubs))})",
        )
    if (
        deployment_id is not None
        and lic.deployment_id is not None
        and lic.deployment_id != deployment_id
    ):
        raise LicenseRefused(
            "other-deployment",
            f"license {lic.license_id} is bound to deployment {lic.deployment_id!r}, "
            f"not {deployment_id!r}",
        )


@dataclass
class Verification:
    """All that :func:`verify` found; ``refusal`` is None when the license passes."""

    license: License | None = None
    signatures: list[SignatureCheck] = field(default_factory=list)
    signed_by: str | None = None
    window: Window | None = None
    refusal: LicenseRefused | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


def verify(
    raw: bytes,
    trusted: Mapping[str, Ed25519PublicKey] | None,
    *,
    customer_id: str | None = None,
    hubs: Sequence[str] = (),
    deployment_id: str | None = None,
    now: dt.datetime,
) -> Verification:
    """Verify a license file in the documented order, keeping what can be shown.

    The outer shape is checked first (LicenseRefused is raised: there is nothing to
    show). Then, collecting rather than raising so that ``inspect`` can still print
    the payload: the signatures (only when *trusted* is given), the payload's fields,
    the customer, hubs and deployment asked for, and the validity window at *now*.
    The first failure in that order is the ``refusal``.
    """
    document = read_document(raw)
    result = Verification(signatures=check_signatures(document, trusted))
    refusals: list[LicenseRefused] = []
    if trusted is not None:
        try:
            result.signed_by = signature_verdict(result.signatures, trusted)
        except LicenseRefused as exc:
            refusals.append(exc)
    try:
        result.license = parse_payload(document.payload_bytes)
    except LicenseRefused as exc:
        refusals.append(exc)
    if result.license is not None:
        try:
            check_binding(
                result.license,
                customer_id=customer_id,
                hubs=hubs,
                deployment_id=deployment_id,
            )
        except LicenseRefused as exc:
            refusals.append(exc)
        result.window = window(result.license, now)
        if not result.window.accepted:
            refusals.append(
                LicenseRefused(
                    result.window.state,
                    f"license {result.license.license_id} {result.window.text}",
                )
            )
    result.refusal = refusals[0] if refusals else None
    return result

"""The license description: the small YAML file ``issue`` builds a payload from.

Example (docs/licensing.md has the full list)::

    customer_id: acme-trading
    customer_name: Acme Trading GmbH
    hubs: [sourcing, content, contacts]     # or a mapping, with editions and limits
    days: 365                               # or expires_at: 2027-05-01
    grace_days: 14                          # default 14
    deployment_id: 5d0c7c1e-...             # optional: bind to one deployment
    features: {bulk_export: true}           # optional

Every problem is reported at once, each naming the field and the fix. Times may be
written as RFC 3339 date-times with a zone or as dates (midnight UTC); they are stored
in UTC to the second.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tradehub_license.document import (
    FIELD_RULES,
    HUB_NAMES,
    format_time,
    parse_time,
    payload_problems,
    unknown_hub_problem,
)
from tradehub_license.errors import InputError

DEFAULT_GRACE_DAYS = 14
DEFAULT_EDITION = "standard"
#: The description's fields; all but these four are optional.
REQUIRED = ("customer_id", "customer_name", "hubs")
FIELDS = (
    "license_id",
    "customer_id",
    "customer_name",
    "hubs",
    "not_before",
    "expires_at",
    "days",
    "grace_days",
    "deployment_id",
    "features",
)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: A description is a few lines; anything much larger is a wrong file.
_MAX_DESCRIPTION_BYTES = 256 * 1024


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_description(path: Path) -> dict[str, Any]:
    """Read the YAML description; InputError naming the file when it cannot be used."""
    try:
        if path.stat().st_size > _MAX_DESCRIPTION_BYTES:
            raise InputError(f"{path} is too large for a license description")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"{path} not found: give the license description (YAML)"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{path} is not valid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(
            f"{path} must be a YAML mapping with customer_id, customer_name, hubs and "
            "days or expires_at (see docs/licensing.md)"
        )
    return data


def _moment(name: str, value: object, problems: list[str]) -> dt.datetime | None:
    """A description time: RFC 3339 text, a YAML timestamp with a zone, or a date."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            problems.append(
                f"field {name!r} ({value}) has no time zone: add one, e.g. "
                f"'{value:%Y-%m-%dT%H:%M:%S}Z' for UTC"
            )
            return None
        return value
    if isinstance(value, str) and _DATE_RE.match(value):
        with contextlib.suppress(ValueError):  # an impossible date is reported below
            value = dt.date.fromisoformat(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    try:
        return parse_time(value)
    except ValueError:
        problems.append(
            f"field {name!r} must be a date (2027-05-01, midnight UTC) or an RFC 3339 "
            f"date-time with a time zone (2027-05-01T00:00:00Z) (found {value!r})"
        )
        return None


def _hubs(value: object, problems: list[str]) -> dict[str, Any] | None:
    """The ``hubs`` object of the payload from a list of names or a mapping."""
    if isinstance(value, list):
        if not value:
            problems.append("field 'hubs' is empty: name at least one hub")
            return None
        entries: dict[str, Any] = {}
        for hub in value:
            if not isinstance(hub, str) or hub not in HUB_NAMES:
                problems.append(unknown_hub_problem(hub))
            elif hub in entries:
                problems.append(f"field 'hubs': {hub} is listed twice")
            else:
                entries[hub] = {"edition": DEFAULT_EDITION, "limits": {}}
        return entries
    if isinstance(value, dict):
        entries = {}
        for hub, entry in value.items():
            if entry is None:
                entry = {}
            if isinstance(entry, dict):
                entry = {"edition": DEFAULT_EDITION, "limits": {}, **entry}
            entries[hub] = entry
        return entries
    problems.append(
        "field 'hubs' must be a list of hub names ([sourcing, content]) or a mapping "
        "of hub name -> {edition: ..., limits: {...}} "
        f"(found {value!r}); the hubs are {', '.join(HUB_NAMES)}"
    )
    return None


def build_payload(
    description: Mapping[str, Any], *, now: dt.datetime
) -> dict[str, Any]:
    """Turn a description into a complete, valid payload issued at *now*.

    Raises InputError listing every problem found, each naming the field and the fix.
    """
    problems: list[str] = []
    for name in description:
        if name not in FIELDS:
            close = difflib.get_close_matches(str(name), FIELDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                f"unknown field {name!r}; {hint}the fields are {', '.join(FIELDS)}"
            )
    for name in REQUIRED:
        if description.get(name) is None:
            problems.append(f"field {name!r} is missing")
    for name in ("customer_id", "deployment_id", "license_id"):
        value = description.get(name)
        if isinstance(value, bool | int | float | dt.date):
            problems.append(
                f"field {name!r} is read by YAML as {value!r}, not as text: quote "
                f'it, e.g. {name}: "..."'
            )
    if description.get("deployment_id") == "":
        problems.append(
            "field 'deployment_id' is empty: remove it (or set null) for a license "
            "valid in any deployment, or give the id the customer sent"
        )

    issued_at = now.astimezone(dt.UTC).replace(microsecond=0)
    not_before = issued_at
    if description.get("not_before") is not None:
        not_before = _moment("not_before", description["not_before"], problems)

    expires_at: dt.datetime | None = None
    has_expiry = description.get("expires_at") is not None
    has_days = description.get("days") is not None
    if has_expiry and has_days:
        problems.append(
            "fields 'expires_at' and 'days' are both given: keep one of them"
        )
    elif has_expiry:
        expires_at = _moment("expires_at", description["expires_at"], problems)
    elif has_days:
        days = description["days"]
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            problems.append(f"field 'days' must be an integer >= 1 (found {days!r})")
        elif not_before is not None:
            expires_at = not_before + dt.timedelta(days=days)
    else:
        problems.append(
            "the license needs an end: give 'days' (e.g. days: 365) or 'expires_at' "
            "(e.g. expires_at: 2027-05-01)"
        )
    if expires_at is not None and expires_at <= issued_at:
        problems.append(
            f"field 'expires_at' ({format_time(expires_at)}) is not in the future: "
            "give a later date, or 'days'"
        )

    hubs = (
        _hubs(description["hubs"], problems)
        if description.get("hubs") is not None
        else None
    )
    customer_id = description.get("customer_id")
    license_id = description.get("license_id")
    if license_id is None and not FIELD_RULES["customer_id"](customer_id):
        license_id = f"{customer_id}-{issued_at:%Y%m%d}-{secrets.token_hex(3)}"
    payload: dict[str, Any] = {
        "license_id": license_id,
        "customer_id": customer_id,
        "customer_name": description.get("customer_name"),
        "hubs": hubs,
        "issued_at": format_time(issued_at),
        "not_before": format_time(not_before) if not_before else None,
        "expires_at": format_time(expires_at) if expires_at else None,
        "grace_days": description.get("grace_days", DEFAULT_GRACE_DAYS),
        "deployment_id": description.get("deployment_id") or None,
        "features": description.get("features") or {},
    }
    if problems:
        # Add the format's own rules for the fields that could be read at all.
        for name, value in payload.items():
            if value is not None and not any(f"{name!r}" in p for p in problems):
                problems += FIELD_RULES[name](value)
    else:
        problems = payload_problems(payload)
    if problems:
        raise InputError("\n".join(problems))
    return payload

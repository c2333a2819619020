"""Configuration from ``TRADEHUB_*`` environment variables (contract §3).

Everything is parsed and checked before any connection is opened, so that a typo in
hub.env stops ``serve`` and ``migrate`` with exit code 2 and a message that names the
variable and what it expects. Passwords inside URLs never appear in those messages.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

HUB_NAMES = (
    "sourcing",
    "content",
    "contacts",
    "campaigns",
    "demand",
    "shipping",
    "services",
)
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_POOL_SIZE = 10
DEFAULT_KEYS_DIR = "/etc/tradehub/trusted-keys"
DEFAULT_MAX_BODY_BYTES = 1_048_576
DEFAULT_SHUTDOWN_GRACE_SECONDS = 25.0

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_ID_RE = re.compile(r"^[\x21-\x7e]{1,200}$")


class ConfigError(Exception):
    """One or more variables are missing or invalid; each message names its variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    """The validated configuration of one hub process."""

    hub: str
    customer_id: str
    listen_host: str
    listen_port: int
    database_url: str = field(repr=False)
    database_schema: str
    database_pool_size: int
    event_bus_url: str = field(repr=False)
    license_file: Path
    license_keys_dir: Path
    deployment_id: str | None
    log_format: str
    log_level: str
    max_body_bytes: int
    shutdown_grace_seconds: float

    @property
    def listen(self) -> str:
        """The listen address as written in ``TRADEHUB_LISTEN``."""
        if ":" in self.listen_host:
            return f"[{self.listen_host}]:{self.listen_port}"
        return f"{self.listen_host}:{self.listen_port}"

    def secrets(self) -> list[str]:
        """Passwords found in the URLs, so that log output can be scrubbed of them."""
        found = [url_password(self.database_url), url_password(self.event_bus_url)]
        return [secret for secret in found if secret]

    def summary(self) -> dict[str, object]:
        """The configuration as it may be logged: URLs with their passwords redacted."""
        return {
            "customer_id": self.customer_id,
            "listen": self.listen,
            "database_url": redact_url(self.database_url),
            "database_schema": self.database_schema,
            "database_pool_size": self.database_pool_size,
            "event_bus_url": redact_url(self.event_bus_url),
            "license_file": str(self.license_file),
            "license_keys_dir": str(self.license_keys_dir),
            "deployment_id": self.deployment_id,
            "max_body_bytes": self.max_body_bytes,
            "shutdown_grace_seconds": self.shutdown_grace_seconds,
        }


def redact_url(url: str) -> str:
    """Return *url* with any password (in the userinfo or the query) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostinfo = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key == "password" for key, _ in pairs):
            query = "&".join(
                f"{key}=***" if key == "password" else f"{key}={value}"
                for key, value in pairs
            )
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
    if query:
        rebuilt += f"?{query}"
    return rebuilt


def url_password(url: str) -> str | None:
    """Return the password inside *url*, if any, without raising on malformed input."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return None
    if password:
        return password
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password" and value:
            return value
    return None


def load_hub_name(env: Mapping[str, str]) -> str:
    """Read and check ``TRADEHUB_HUB_NAME`` alone (``tradehub-hub version`` needs no more)."""
    problems: list[str] = []
    hub = _hub_name(env, problems)
    if problems:
        raise ConfigError(problems)
    return hub


def load_config(env: Mapping[str, str]) -> Config:
    """Parse every ``TRADEHUB_*`` variable of contract §3; unknown ones are ignored.

    All problems are collected so that an operator fixes hub.env in one pass.
    """
    problems: list[str] = []
    hub = _hub_name(env, problems)
    customer_id = _identifier(env, "TRADEHUB_CUSTOMER_ID", problems, required=True)
    host, port = _listen(env, problems)
    database_url = _database_url(env, problems)
    schema = _get(env, "TRADEHUB_DATABASE_SCHEMA") or hub
    if schema and (not _SCHEMA_RE.match(schema) or schema.startswith("pg_")):
        problems.append(
            f"TRADEHUB_DATABASE_SCHEMA: {schema!r} is not a usable schema name; "
            "expected lower case letters, digits and underscores, at most 63 "
            "characters, not starting with a digit or 'pg_'"
        )
    pool_size = _integer(
        env, "TRADEHUB_DATABASE_POOL_SIZE", DEFAULT_POOL_SIZE, 1, 1000, problems
    )
    event_bus_url = _event_bus_url(env, problems)
    license_file = Path(
        _get(env, "TRADEHUB_LICENSE_FILE") or f"/etc/tradehub/{hub}/license.json"
    )
    keys_dir = Path(_get(env, "TRADEHUB_LICENSE_KEYS_DIR") or DEFAULT_KEYS_DIR)
    deployment_id = _identifier(env, "TRADEHUB_DEPLOYMENT_ID", problems, required=False)
    log_format = _choice(env, "TRADEHUB_LOG_FORMAT", "json", LOG_FORMATS, problems)
    log_level = _choice(env, "TRADEHUB_LOG_LEVEL", "info", LOG_LEVELS, problems)
    max_body = _integer(
        env,
        "TRADEHUB_MAX_BODY_BYTES",
        DEFAULT_MAX_BODY_BYTES,
        1,
        1 << 30,
        problems,
    )
    grace = _seconds(env, "TRADEHUB_SHUTDOWN_GRACE_SECONDS", problems)
    if problems:
        raise ConfigError(problems)
    return Config(
        hub=hub,
        customer_id=customer_id or "",
        listen_host=host,
        listen_port=port,
        database_url=database_url,
        database_schema=schema,
        database_pool_size=pool_size,
        event_bus_url=event_bus_url,
        license_file=license_file,
        license_keys_dir=keys_dir,
        deployment_id=deployment_id,
        log_format=log_format,
        log_level=log_level,
        max_body_bytes=max_body,
        shutdown_grace_seconds=grace,
    )


def _get(env: Mapping[str, str], name: str) -> str | None:
    """Return the variable's value; an empty value counts as unset."""
    value = env.get(name)
    return value if value else None


def _hub_name(env: Mapping[str, str], problems: list[str]) -> str:
    value = _get(env, "TRADEHUB_HUB_NAME")
    expected = ", ".join(HUB_NAMES)
    if value is None:
        problems.append(f"TRADEHUB_HUB_NAME: not set; expected one of {expected}")
        return ""
    if value not in HUB_NAMES:
        problems.append(
            f"TRADEHUB_HUB_NAME: {value!r} is not a hub; expected one of {expected}"
        )
        return ""
    return value


def _identifier(
    env: Mapping[str, str], name: str, problems: list[str], *, required: bool
) -> str | None:
    value = _get(env, name)
    if value is None:
        if required:
            problems.append(f"{name}: not set; expected the id given in the license")
        return None
    if not _ID_RE.match(value):
        problems.append(
            f"{name}: expected 1 to 200 printable ASCII characters without spaces"
        )
        return None
    return value


def _listen(env: Mapping[str, str], problems: list[str]) -> tuple[str, int]:
    value = _get(env, "TRADEHUB_LISTEN") or DEFAULT_LISTEN
    expects = "expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080"
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})", value) or re.fullmatch(
        r"([^:\[\]]+):([0-9]{1,5})", value
    )
    if not match:
        hint = " (put IPv6 addresses in brackets)" if value.count(":") > 1 else ""
        problems.append(f"TRADEHUB_LISTEN: {value!r} is malformed; {expects}{hint}")
        return "", 0
    host, port_text = match.group(1), match.group(2)
    port = int(port_text)
    if not 1 <= port <= 65535:
        problems.append(
            f"TRADEHUB_LISTEN: port {port} is out of range; expected 1 to 65535"
        )
    if value.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            problems.append(f"TRADEHUB_LISTEN: {host!r} is not an IPv6 address")
    elif not _HOSTNAME_RE.match(host):
        problems.append(f"TRADEHUB_LISTEN: {host!r} is not a host name or address")
    return host, port


def _check_hosts(netloc: str) -> str | None:
    """Check every host[:port] of a (possibly multi-host) URL authority."""
    hostinfo = netloc.rsplit("@", 1)[-1]
    if not hostinfo:
        return None
    for item in hostinfo.split(","):
        if item.startswith("["):
            end = item.find("]")
            if end < 0:
                return "an IPv6 host is missing its closing bracket"
            port_text = item[end + 1 :].removeprefix(":")
        else:
            port_text = item.rpartition(":")[2] if ":" in item else ""
        if port_text and (not port_text.isdigit() or not 1 <= int(port_text) <= 65535):
            return "a port is not a number from 1 to 65535"
    return None


def _database_url(env: Mapping[str, str], problems: list[str]) -> str:
    name = "TRADEHUB_DATABASE_URL"
    example = "postgresql://user:password@host:5432/dbname?sslmode=require"
    value = _get(env, name)
    if value is None:
        problems.append(f"{name}: not set; expected a libpq URI like {example}")
        return ""
    # The value may hold a password: messages describe the problem, never the value.
    try:
        parts = urlsplit(value)
    except ValueError:
        problems.append(f"{name}: malformed URI (value not shown); expected {example}")
        return ""
    if parts.scheme not in ("postgresql", "postgres"):
        problems.append(
            f"{name}: expected a URI starting with postgresql:// like {example}"
        )
        return ""
    host_problem = _check_hosts(parts.netloc)
    if host_problem:
        problems.append(f"{name}: {host_problem} (value not shown)")
        return ""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(value)
    except ProgrammingError:
        problems.append(
            f"{name}: libpq cannot parse it (value not shown); expected {example}"
        )
        return ""
    return value


def _event_bus_url(env: Mapping[str, str], problems: list[str]) -> str:
    name = "TRADEHUB_EVENT_BUS_URL"
    example = "redis://user:password@host:6379/0 (or rediss:// for TLS)"
    value = _get(env, name)
    if value is None:
        problems.append(f"{name}: not set; expected a Redis URL like {example}")
        return ""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        problems.append(
            f"{name}: malformed URL or port out of range (value not shown); "
            f"expected {example}"
        )
        return ""
    if parts.scheme not in ("redis", "rediss"):
        problems.append(f"{name}: expected a URL starting with redis:// like {example}")
        return ""
    if not parts.hostname:
        problems.append(f"{name}: the URL names no host; expected {example}")
        return ""
    if port == 0:
        problems.append(f"{name}: port 0 is out of range; expected 1 to 65535")
        return ""
    database = parts.path.strip("/")
    if database and not database.isdigit():
        problems.append(
            f"{name}: the path must be a database number like /0; expected {example}"
        )
        return ""
    return value


def _integer(
    env: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int,
    problems: list[str],
) -> int:
    value = _get(env, name)
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]+", value) or not low <= int(value) <= high:
        problems.append(
            f"{name}: {value!r} is invalid; expected an integer from {low} to {high}"
        )
        return default
    return int(value)


def _seconds(env: Mapping[str, str], name: str, problems: list[str]) -> float:
    value = _get(env, name)
    if value is None:
        return DEFAULT_SHUTDOWN_GRACE_SECONDS
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value) or float(value) > 3600:
        problems.append(
            f"{name}: {value!r} is invalid; expected a number of seconds from 0 to 3600"
        )
        return DEFAULT_SHUTDOWN_GRACE_SECONDS
    return float(value)


def _choice(
    env: Mapping[str, str],
    name: str,
    default: str,
    choices: tuple[str, ...],
    problems: list[str],
) -> str:
    value = _get(env, name)
    if value is None:
        return default
    if value.lower() not in choices:
        problems.append(
            f"{name}: {value!r} is invalid; expected one of {', '.join(choices)}"
        )
        return default
    return value.lower()

# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe the operational endpoints of the hubs (docs/hub-contract.md, section 4).

Pure standard library, so that the module runs on any managed host and the logic can be
unit-tested without Ansible. Every request of every hub runs at the same time, so that
checking seven hubs costs about as much as the slowest single request.
"""

from __future__ import annotations

import datetime
import http.client
import json
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

ENDPOINTS = ("healthz", "readyz", "version")

# The largest body a probe reads: the contract's documents are a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024


class HubHealthError(Exception):
    """Bad input: raised before any request is sent."""


@dataclass(frozen=True)
class HubTarget:
    """Where one hub is reached.

    ``url`` is the hub's base URL (``https://content.customer.com`` through the gateway,
    ``http://10.0.0.7:8080`` directly). ``connect_to`` (``host:port``) sends the request
    to another address than the URL's host, keeping the URL's host name for the ``Host``
    header and TLS SNI: the way to reach a gateway whose names are not in DNS yet.
    """

    name: str
    url: str
    connect_to: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def base_path(self) -> str:
        return urlsplit(self.url).path.rstrip("/")

    def address(self) -> tuple[str, int]:
        """The socket address to connect to."""
        if not self.connect_to:
            return self.host, self.port
        host, port = self.connect_to.rsplit(":", 1)
        return host.strip("[]"), int(port)


@dataclass
class Response:
    """One HTTP exchange, or the reason there was none."""

    code: int | None = None
    body: Any = None
    latency_ms: float = 0.0
    error: str | None = None
    cert_not_after: datetime.datetime | None = None


@dataclass
class HubReport:
    """What the module returns for one hub."""

    name: str
    url: str
    status: str = "unknown"
    reason: str = ""
    http_status: int | None = None
    latency_ms: float = 0.0
    version: str | None = None
    schema_version: int | None = None
    failing_checks: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    cert_not_after: str | None = None
    cert_days_left: int | None = None

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "ready": self.ready,
            "reason": self.reason,
            "http_status": self.http_status,
            "latency_ms": round(self.latency_ms, 1),
            "version": self.version,
            "schema_version": self.schema_version,
            "failing_checks": self.failing_checks,
            "checks": self.checks,
            "cert_not_after": self.cert_not_after,
            "cert_days_left": self.cert_days_left,
        }


def build_targets(
    hubs: list[dict[str, Any]], connect_to: str | None = None
) -> list[HubTarget]:
    """Validate the module's ``hubs`` option and turn it into targets."""
    if not hubs:
        raise HubHealthError("hubs: give at least one hub, as {name: ..., url: ...}")
    targets = []
    seen = set()
    for index, hub in enumerate(hubs):
        name = hub.get("name")
        url = hub.get("url") or ""
        where = "hubs[%d]" % index
        if not name:
            raise HubHealthError("%s.name: every hub needs a name" % where)
        if name in seen:
            raise HubHealthError("%s.name: hub %r is listed twice" % (where, name))
        seen.add(name)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HubHealthError(
                "%s.url: expected an http:// or https:// URL with a host for hub %r, "
                "got %r" % (where, name, url)
            )
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise HubHealthError(
                "%s.url: the port of %r is not a number from 1 to 65535" % (where, url)
            ) from None
        target_connect_to = hub.get("connect_to") or connect_to
        if target_connect_to:
            host, sep, port = target_connect_to.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise HubHealthError(
                    "connect_to: expected host:port, got %r" % target_connect_to
                )
        targets.append(HubTarget(name, url, target_connect_to))
    return targets


def _ssl_context(validate_certs: bool, ca_path: str | None) -> ssl.SSLContext:
    if not validate_certs:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_path)


def _der_length(data: bytes, offset: int) -> tuple[int, int]:
    """Length of the DER element whose length octets start at offset, and where its
    content starts."""
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7F
    return int.from_bytes(data[offset + 1 : offset + 1 + count], "big"), (
        offset + 1 + count
    )


def _der_children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, content start, content end) of each element between start and end."""
    children = []
    offset = start
    while offset < end:
        tag = data[offset]
        length, content = _der_length(data, offset + 1)
        children.append((tag, content, content + length))
        offset = content + length
    return children


def certificate_not_after(der: bytes) -> datetime.datetime:
    """The notAfter time of a DER-encoded X.509 certificate.

    ``ssl`` only decodes a certificate that it verified; this reads the validity of any
    certificate, so that days left are known with ``validate_certs: false`` too.
    """
    cert_start, cert_end = _der_children(der, 0, len(der))[0][1:]
    tbs_start, tbs_end = _der_children(der, cert_start, cert_end)[0][1:]
    fields = _der_children(der, tbs_start, tbs_end)
    if fields[0][0] == 0xA0:  # explicit version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity
    validity_start, validity_end = fields[3][1:]
    not_after_tag, start, end = _der_children(der, validity_start, validity_end)[1]
    text = der[start:end].decode("ascii")
    fmt = "%y%m%d%H%M%SZ" if not_after_tag == 0x17 else "%Y%m%d%H%M%SZ"
    return datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc)


def _request(
    target: HubTarget, endpoint: str, timeout: float, context: ssl.SSLContext
) -> Response:
    """GET one endpoint of one hub; never raises."""
    started = time.monotonic()
    response = Response()
    sock = None
    try:
        sock = socket.create_connection(target.address(), timeout=timeout)
        if target.scheme == "https":
            sock = context.wrap_socket(sock, server_hostname=target.host)
            der = sock.getpeercert(binary_form=True)
            if der:
                response.cert_not_after = certificate_not_after(der)
        connection = http.client.HTTPConnection(target.host, target.port, timeout)
        connection.sock = sock
        connection.request(
            "GET",
            "%s/%s" % (target.base_path, endpoint),
            headers={"Accept": "application/json", "Host": _host_header(target)},
        )
        reply = connection.getresponse()
        raw = reply.read(MAX_BODY_BYTES)
        response.code = reply.status
        try:
            response.body = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            response.body = None
            if reply.status == 200:
                response.error = "/%s answered 200 with a body that is not JSON" % (
                    endpoint
                )
    except (socket.timeout, TimeoutError):  # noqa: UP041 - distinct before Python 3.10
        response.error = "no answer from %s within %ss" % (_where(target), timeout)
    except ssl.SSLCertVerificationError as exc:
        response.error = "TLS certificate of %s rejected: %s" % (
            target.host,
            exc.verify_message or exc,
        )
    except ConnectionRefusedError:
        response.error = "connection refused by %s" % _where(target)
    except (OSError, http.client.HTTPException) as exc:
        response.error = "%s: %s" % (_where(target), exc or type(exc).__name__)
    finally:
        if sock is not None:
            sock.close()
    response.latency_ms = (time.monotonic() - started) * 1000
    return response


def _host_header(target: HubTarget) -> str:
    host = "[%s]" % target.host if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else "%s:%d" % (host, target.port)


def _where(target: HubTarget) -> str:
    host, port = target.address()
    return "%s:%d" % (host, port)


def assess(
    target: HubTarget,
    responses: dict[str, Response],
    now: datetime.datetime,
    ignore_checks: tuple[str, ...] = (),
) -> HubReport:
    """Turn the three responses of one hub into its report.

    A hub whose only failing readiness checks are in *ignore_checks* counts as ready,
    and its reason names them.
    """
    report = HubReport(name=target.name, url=target.url)
    healthz, readyz, version = (responses[e] for e in ENDPOINTS)
    report.latency_ms = max(r.latency_ms for r in responses.values())
    report.http_status = readyz.code
    certificate = next(
        (r.cert_not_after for r in responses.values() if r.cert_not_after), None
    )
    if certificate is not None:
        report.cert_not_after = certificate.isoformat()
        report.cert_days_left = (certificate - now).days
    if isinstance(version.body, dict) and version.code == 200:
        report.version = version.body.get("version")
        report.schema_version = version.body.get("schema_version")

    if healthz.error or healthz.code != 200:
        report.status = "down"
        report.reason = healthz.error or "/healthz answered %s" % healthz.code
        return report
    if isinstance(readyz.body, dict):
        report.checks = readyz.body.get("checks") or {}
        report.failing_checks = list(readyz.body.get("failing") or [])
    ignored = bool(report.failing_checks) and set(report.failing_checks) <= set(
        ignore_checks
    )
    if (readyz.error or readyz.code != 200) and not ignored:
        report.status = "not_ready"
        if readyz.error:
            report.reason = readyz.error
        elif report.failing_checks:
            report.reason = "/readyz answered %s, failing checks: %s" % (
                readyz.code,
                ", ".join(report.failing_checks),
            )
        else:
            report.reason = "/readyz answered %s" % readyz.code
        return report
    report.status = "ready"
    warnings = [
        "%s: %s" % (name, check.get("detail", ""))
        for name, check in sorted(report.checks.items())
        if isinstance(check, dict) and check.get("warning")
    ]
    if ignored:
        warnings.insert(
            0, "ignored failing checks: " + ", ".join(report.failing_checks)
        )
    report.reason = "; ".join(warnings)
    return report


def probe(
    targets: list[HubTarget],
    timeout: float = 5.0,
    validate_certs: bool = True,
    ca_path: str | None = None,
    ignore_checks: tuple[str, ...] = (),
) -> dict[str, HubReport]:
    """Probe every endpoint of every hub at once; one report per hub."""
    context = _ssl_context(validate_certs, ca_path)
    jobs = [(t, e) for t in targets for e in ENDPOINTS]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {
            (t.name, e): pool.submit(_request, t, e, timeout, context) for t, e in jobs
        }
        results = {key: future.result() for key, future in futures.items()}
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        t.name: assess(
            t, {e: results[(t.name, e)] for e in ENDPOINTS}, now, ignore_checks
        )
        for t in targets
    }


def wait_until_ready(
    targets: list[HubTarget],
    timeout: float = 5.0,
    validate_certs: bool = True,
    ca_path: str | None = None,
    wait_timeout: float = 300.0,
    interval: float = 2.0,
    ignore_checks: tuple[str, ...] = (),
    clock=time.monotonic,
    sleep=time.sleep,
) -> tuple[dict[str, HubReport], int]:
    """Probe until every hub is ready or wait_timeout passes.

    Hubs already ready are not probed again. Returns the last report of every hub and
    the number of rounds.
    """
    deadline = clock() + wait_timeout
    reports: dict[str, HubReport] = {}
    pending = list(targets)
    rounds = 0
    while True:
        rounds += 1
        reports.update(
            probe(pending, timeout, validate_certs, ca_path, tuple(ignore_checks))
        )
        pending = [t for t in pending if not reports[t.name].ready]
        if not pending or clock() + interval > deadline:
            return reports, rounds
        sleep(interval)


def summarize(reports: dict[str, HubReport]) -> str:
    """One sentence naming each hub that is not ready and why."""
    bad = [r for r in reports.values() if not r.ready]
    if not bad:
        return "all %d hubs are ready" % len(reports)
    return "%d of %d hubs not ready: %s" % (
        len(bad),
        len(reports),
        "; ".join("%s (%s): %s" % (r.name, r.status, r.reason) for r in bad),
    )

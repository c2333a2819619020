"""Small real HTTP(S) servers that answer the contract's operational endpoints.

They stand in for a hub in the tests of hub_health, where what matters is how the probe
reacts to each kind of answer (ready, failing checks, slow, refused, certificate near
expiry), not the hub's business logic. Each server listens on a free loopback port.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Behaviour:
    """How a contract server answers."""

    hub: str = "content"
    version: str = "1.0.0"
    failing: list[str] = field(default_factory=list)
    delay: float = 0.0
    warning: str | None = None

    def readyz(self) -> tuple[int, dict]:
        checks = {
            name: {"ok": name not in self.failing}
            for name in ("database", "event_bus", "schema", "license")
        }
        for name in self.failing:
            checks[name]["detail"] = "%s is unavailable" % name
        if self.warning:
            checks["license"].update(detail=self.warning, warning=True)
        status = 503 if self.failing else 200
        body = {
            "status": "not_ready" if self.failing else "ready",
            "hub": self.hub,
            "failing": list(self.failing),
            "checks": checks,
        }
        return status, body


class _Handler(BaseHTTPRequestHandler):
    server: ContractServer

    def do_GET(self) -> None:
        behaviour = self.server.behaviour
        self.server.requests.append((self.path, self.headers.get("Host")))
        if behaviour.delay:
            time.sleep(behaviour.delay)
        if self.path == "/healthz":
            status, body = 200, {"status": "ok", "hub": behaviour.hub}
        elif self.path == "/readyz":
            status, body = behaviour.readyz()
        elif self.path == "/version":
            status, body = (
                200,
                {
                    "hub": behaviour.hub,
                    "version": behaviour.version,
                    "schema_version": 1,
                    "contract": 1,
                },
            )
        else:
            status, body = 404, {"error": {"code": "not_found", "message": self.path}}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:
        """Keep test output quiet."""


class ContractServer(ThreadingHTTPServer):
    """A threaded server on 127.0.0.1; use as a context manager."""

    daemon_threads = True

    def __init__(self, behaviour: Behaviour, tls: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour = behaviour
        self.requests: list[tuple[str, str | None]] = []
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def __enter__(self) -> ContractServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


def refused_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Pki:
    """A throw-away CA and a server certificate it signed, written to a directory."""

    ca_path: Path
    context: ssl.SSLContext
    not_after: datetime.datetime


def make_pki(directory: Path, hostnames: list[str], days: int) -> Pki:
    """Create a CA and a certificate for hostnames valid for ``days`` more days."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tradehub test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = (now + datetime.timedelta(days=days, hours=1)).replace(microsecond=0)
    names: list[x509.GeneralName] = []
    for hostname in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(hostname)))
        except ValueError:
            names.append(x509.DNSName(hostname))
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path = directory / "server.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / "server.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return Pki(ca_path=ca_path, context=context, not_after=not_after)

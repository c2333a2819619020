"""Hub roles, databases, licenses and environments on the real test services.

A :class:`Lab` prepares what the collection prepares on a customer's servers: a login
role and a Redis user per hub (limited to its ``tradehub:<hub>:`` keys), a schema owned
by that role in a database of its own, a signed license and the trusted key, and the
hub.env variables. Test suites that need a hub's data (health probes, data migration)
reuse it.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tradehub_reference_hub.config import HUB_NAMES
from tradehub_reference_hub.license import public_key_pem, sign_license

from tests.support.hub import run_hub_command
from tests.support.services import PostgresServer, RedisServer

CUSTOMER_ID = "cust-0042"
TRUSTED_KEY_ID = "tamyla-test-1"


def utc(days: float = 0) -> str:
    """An RFC 3339 time *days* from now."""
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


class LicenseSigner:
    """The vendor's side of licensing, with keys made for this test session only."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir
        keys_dir.mkdir(parents=True, exist_ok=True)
        self.trusted = Ed25519PrivateKey.generate()
        self.untrusted = Ed25519PrivateKey.generate()
        (keys_dir / f"{TRUSTED_KEY_ID}.pem").write_bytes(public_key_pem(self.trusted))

    @staticmethod
    def payload(**overrides: Any) -> dict[str, Any]:
        """A license for CUSTOMER_ID covering all seven hubs for a year."""
        payload: dict[str, Any] = {
            "license_id": f"lic-{uuid.uuid4().hex[:8]}",
            "customer_id": CUSTOMER_ID,
            "customer_name": "Example Trading GmbH",
            "hubs": {hub: {"edition": "standard", "limits": {}} for hub in HUB_NAMES},
            "issued_at": utc(-1),
            "not_before": utc(-1),
            "expires_at": utc(365),
            "grace_days": 14,
            "deployment_id": None,
            "features": {"bulk_import": True},
        }
        payload.update(overrides)
        return payload

    def document(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        return sign_license(self.trusted, TRUSTED_KEY_ID, payload or self.payload())

    @staticmethod
    def write(path: Path, document: Mapping[str, Any] | bytes) -> Path:
        data = (
            document if isinstance(document, bytes) else json.dumps(document).encode()
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path


@dataclass
class HubDatabase:
    """One test database holding one hub's schema."""

    hub: str
    dbname: str
    schema: str
    url: str
    postgres: PostgresServer

    def admin(self) -> psycopg.Connection:
        """A superuser connection to this database, for looking behind the hub."""
        return self.postgres.connect(self.dbname)

    def count_rows(self, table: str) -> int:
        with self.admin() as conn:
            row = conn.execute(
                psycopg.sql.SQL("SELECT count(*) FROM {}").format(
                    psycopg.sql.Identifier(self.schema, table)
                )
            ).fetchone()
        assert row is not None
        return int(row[0])


class Lab:
    """Makes databases, environments and license files for hubs under test."""

    def __init__(
        self,
        postgres: PostgresServer,
        redis_server: RedisServer,
        signer: LicenseSigner,
        workdir: Path,
    ) -> None:
        self.postgres = postgres
        self.redis_server = redis_server
        self.signer = signer
        self.workdir = workdir
        self.passwords = {hub: f"{hub}-{secrets.token_hex(8)}" for hub in HUB_NAMES}
        for hub, password in self.passwords.items():
            postgres.create_role(hub, password)
            redis_server.create_hub_user(hub, password)
        self.license_file = signer.write(workdir / "license.json", signer.document())

    def database(self, hub: str, schema: str | None = None) -> HubDatabase:
        """A new database with the hub's schema, owned by the hub's role."""
        dbname = f"t_{uuid.uuid4().hex[:12]}"
        schema = schema or hub
        self.postgres.create_database(dbname)
        self.postgres.create_schema(dbname, schema, hub)
        url = self.postgres.url(dbname, user=hub, password=self.passwords[hub])
        return HubDatabase(hub, dbname, schema, url, self.postgres)

    def env(self, db: HubDatabase, **overrides: str) -> dict[str, str]:
        """The hub.env the collection would write for *db*'s hub."""
        env = {
            "TRADEHUB_HUB_NAME": db.hub,
            "TRADEHUB_CUSTOMER_ID": CUSTOMER_ID,
            "TRADEHUB_DATABASE_URL": db.url,
            "TRADEHUB_EVENT_BUS_URL": self.redis_server.url(
                db.hub, self.passwords[db.hub]
            ),
            "TRADEHUB_LICENSE_FILE": str(self.license_file),
            "TRADEHUB_LICENSE_KEYS_DIR": str(self.signer.keys_dir),
            "TRADEHUB_SHUTDOWN_GRACE_SECONDS": "10",
            # A variable from a newer collection: hubs must ignore it.
            "TRADEHUB_FUTURE_SETTING": "ignored",
        }
        if db.schema != db.hub:
            env["TRADEHUB_DATABASE_SCHEMA"] = db.schema
        env.update(overrides)
        return env

    def migrate(self, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        return run_hub_command("migrate", env)

    def migrated(self, env: Mapping[str, str]) -> dict[str, Any]:
        done = self.migrate(env)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def redis(self) -> redis.Redis:
        return self.redis_server.client()

    def events(self, hub: str) -> list[tuple[str, dict[str, str]]]:
        with self.redis() as client:
            return client.xrange(f"tradehub:{hub}:events")

    def clear_events(self, hub: str) -> None:
        with self.redis() as client:
            client.delete(f"tradehub:{hub}:events")

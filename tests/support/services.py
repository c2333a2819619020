"""Real PostgreSQL and Redis servers on free loopback ports, for tests.

Each server lives in a temporary directory of its own and can be stopped and started
again by a test (to see how a hub reacts to an outage) on the same port. Nothing here
touches the machine's own postgresql or redis-server services.

PostgreSQL's initdb refuses to run as root, so when the tests run as root the cluster
belongs to the ``postgres`` system user and its commands run through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import psycopg
import redis
from psycopg import sql

PG_BINDIR_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")
LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A test service could not be set up; the message says what to install or fix."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0, host: str = LOOPBACK) -> None:
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        if time.monotonic() > deadline:
            raise ServiceError(f"nothing listens on {host}:{port} after {timeout} s")
        time.sleep(0.05)


def _pg_bindir() -> Path:
    for candidate in PG_BINDIR_CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise ServiceError(
        "PostgreSQL server binaries not found: install the 'postgresql' package "
        "(scripts/setup-host.sh --packages-only)"
    )


class PostgresServer:
    """A throw-away PostgreSQL cluster listening on 127.0.0.1 with password auth.

    ``superuser`` is ``postgres`` with a random password; durability is switched off
    because the cluster lives for one test session only.
    """

    def __init__(self, port: int | None = None, bindir: Path | None = None) -> None:
        self.bindir = bindir or _pg_bindir()
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(16)
        self.host = LOOPBACK
        self.superuser = "postgres"
        self.base = Path(tempfile.mkdtemp(prefix="tradehub-pg-"))
        self.datadir = self.base / "data"
        self.logfile = self.base / "postgres.log"
        self._owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError(
                    "running as root, but there is no 'postgres' user for initdb: "
                    "install the 'postgresql' package"
                ) from None
            os.chown(self.base, self._owner.pw_uid, self._owner.pw_gid)
        self.base.chmod(0o700)

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._owner is not None:
            command = ["runuser", "-u", self._owner.pw_name, "--", *command]
        with tempfile.TemporaryFile() as out:
            completed = subprocess.run(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                cwd=self.base,
                check=False,
            )
            if completed.returncode != 0:
                out.seek(0)
                text = out.read().decode(errors="replace")
                raise ServiceError(
                    f"{args[0]} failed ({completed.returncode}):\n{text}"
                )

    def init(self) -> PostgresServer:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._owner is not None:
            os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.datadir),
                "-U",
                self.superuser,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            )
        finally:
            pwfile.unlink()
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# test cluster: loopback only, no durability\n"
                f"listen_addresses = '{self.host}'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.base}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 200\n"
                "log_min_messages = warning\n"
            )
        return self

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "start"
        )

    def stop(self) -> None:
        """Stop at once (``-m fast``): clients see their connections drop."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    @property
    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()

    def cleanup(self) -> None:
        if self.running:
            with contextlib.suppress(ServiceError, subprocess.TimeoutExpired):
                self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def url(
        self,
        dbname: str = "postgres",
        user: str | None = None,
        password: str | None = None,
    ) -> str:
        """A libpq URI; the superuser's by default."""
        user = user or self.superuser
        password = self.password if password is None else password
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        """A superuser connection in autocommit mode."""
        return psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=5)

    def create_role(self, name: str, password: str) -> None:
        """Create (or reset) a login role without any special privilege."""
        with self.connect() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", [name]
            ).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(
                    verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    "PASSWORD {}"
                ).format(sql.Identifier(name), sql.Literal(password))
            )

    def create_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )

    def create_schema(self, dbname: str, schema: str, owner: str) -> None:
        """What the collection does for a hub: a schema owned by the hub's role."""
        with self.connect(dbname) as conn:
            conn.execute(
                sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                    sql.Identifier(schema), sql.Identifier(owner)
                )
            )


class RedisServer:
    """A redis-server on 127.0.0.1 with an admin password and no persistence."""

    def __init__(self, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError(
                "redis-server not found: install the 'redis-server' package "
                "(scripts/setup-host.sh --packages-only)"
            )
        self.binary = binary
        self.port = port or free_port()
        self.host = LOOPBACK
        self.password = secrets.token_urlsafe(16)
        self.base = Path(tempfile.mkdtemp(prefix="tradehub-redis-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self) -> None:
        self._log = (self.base / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                self.host,
                "--port",
                str(self.port),
                "--requirepass",
                self.password,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.base),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            if self._process.poll() is not None:
                text = (self.base / "redis.log").read_text(errors="replace")
                raise ServiceError(f"redis-server exited at start:\n{text}")
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise ServiceError(
                        "redis-server did not answer PING in 10 s"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def url(
        self, user: str = "default", password: str | None = None, db: int = 0
    ) -> str:
        """A Redis URL; the admin (``default``) user's by default."""
        password = self.password if password is None else password
        return f"redis://{user}:{password}@{self.host}:{self.port}/{db}"

    def client(self) -> redis.Redis:
        """An admin client (the ``default`` user)."""
        return redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            decode_responses=True,
            socket_timeout=5,
        )

    def create_hub_user(self, hub: str, password: str) -> None:
        """What the collection does for a hub: a user limited to ``tradehub:<hub>:*``."""
        with self.client() as client:
            client.execute_command(
                "ACL",
                "SETUSER",
                hub,
                "reset",
                "on",
                f">{password}",
                f"~tradehub:{hub}:*",
                "resetchannels",
                "+@connection",
                "+@stream",
                "+@read",
                "+@write",
                "-@dangerous",
            )


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Init and start a cluster; stop it and delete its files afterwards."""
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.cleanup()


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()

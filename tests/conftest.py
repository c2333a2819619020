"""Session-wide real services for the test suites: PostgreSQL and Redis on loopback.

They start once per test session, on the first test that asks for them, and are
stopped and deleted at its end. A test may stop PostgreSQL to simulate an outage;
it is started again after that test whatever the outcome.

On top of them, ``lab`` prepares hub roles, schemas, Redis users, a signed license and
hub.env variables the way the collection does, and ``start_hub`` runs the reference
hub's ``tradehub-hub serve`` as a real process (stopped after the test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.support.hub import HubProcess
from tests.support.lab import Lab, LicenseSigner
from tests.support.services import PostgresServer, RedisServer, ServiceError


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 cluster on 127.0.0.1 with password authentication."""
    server = PostgresServer()
    try:
        server.init()
        server.start()
    except ServiceError as exc:
        server.cleanup()
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server on 127.0.0.1 whose ``default`` user needs a password."""
    server = RedisServer()
    try:
        server.start()
    except ServiceError as exc:
        server.cleanup()
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.cleanup()


@pytest.fixture(autouse=True)
def _restart_stopped_postgres(request: pytest.FixtureRequest) -> Iterator[None]:
    """Start the session cluster again if a test stopped it and did not restart it."""
    yield
    if "postgres" in request.fixturenames:
        server: PostgresServer = request.getfixturevalue("postgres")
        if not server.running:
            server.start()


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> LicenseSigner:
    """The vendor's signing keys for this session; the public one is trusted."""
    return LicenseSigner(tmp_path_factory.mktemp("trusted-keys"))


@pytest.fixture(scope="session")
def lab(
    postgres: PostgresServer,
    redis_server: RedisServer,
    signer: LicenseSigner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Lab:
    """Roles and Redis users for the seven hubs, and a license covering them all."""
    return Lab(postgres, redis_server, signer, tmp_path_factory.mktemp("lab"))


@pytest.fixture
def start_hub(tmp_path: Path) -> Iterator[Callable[[Mapping[str, str]], HubProcess]]:
    """Start ``tradehub-hub serve`` processes; each is stopped after the test."""
    started: list[HubProcess] = []

    def start(env: Mapping[str, str]) -> HubProcess:
        hub = HubProcess(env, tmp_path)
        started.append(hub)
        return hub.start()

    yield start
    for hub in started:
        hub.stop()

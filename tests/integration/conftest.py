"""Fixtures shared by the integration tests of the data migration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.migration import HubsDatabase, hubs_database
from tests.support.services import PostgresServer


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[HubsDatabase]:
    """A fresh database with the hubs' schemas and roles, dropped after the test."""
    with hubs_database(postgres) as db:
        yield db

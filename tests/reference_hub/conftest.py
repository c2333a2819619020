"""Fixtures of the reference hub's own tests; the shared ones are in tests/conftest.py.

Each test gets a database of its own in which the hub's schema is created the way the
collection creates it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from tests.support.hub import HubProcess
from tests.support.lab import HubDatabase, Lab


@pytest.fixture
def ready_content_hub(
    lab: Lab, start_hub: Callable[[Mapping[str, str]], HubProcess]
) -> tuple[HubProcess, HubDatabase]:
    """A migrated, licensed content hub, ready to serve."""
    db = lab.database("content")
    env = lab.env(db)
    lab.migrated(env)
    lab.clear_events("content")
    return start_hub(env), db

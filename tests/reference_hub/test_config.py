"""Configuration errors stop ``serve`` and ``migrate`` with exit 2 before any connection.

These run the installed ``tradehub-hub`` command, as systemd or Kubernetes would.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.support.hub import run_hub_command

SECRET = "pa55-w0rd-never-shown"


@pytest.fixture
def trap() -> Iterator[socket.socket]:
    """A listening socket that records whether anyone connected to it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def base_env(trap: socket.socket) -> dict[str, str]:
    port = trap.getsockname()[1]
    return {
        "TRADEHUB_HUB_NAME": "content",
        "TRADEHUB_CUSTOMER_ID": "cust-0042",
        "TRADEHUB_DATABASE_URL": f"postgresql://content:{SECRET}@127.0.0.1:{port}/hubs",
        "TRADEHUB_EVENT_BUS_URL": f"redis://content:{SECRET}@127.0.0.1:{port}/0",
        "TRADEHUB_LISTEN": "127.0.0.1:18080",
    }


def nobody_connected(trap: socket.socket) -> bool:
    try:
        conn, _ = trap.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


CASES = [
    pytest.param(
        {"TRADEHUB_DATABASE_URL": None},
        "TRADEHUB_DATABASE_URL",
        id="database-url-missing",
    ),
    pytest.param(
        {"TRADEHUB_DATABASE_URL": f"mysql://content:{SECRET}@127.0.0.1/hubs"},
        "TRADEHUB_DATABASE_URL",
        id="database-url-not-postgresql",
    ),
    pytest.param(
        {"TRADEHUB_DATABASE_URL": f"postgresql://content:{SECRET}@127.0.0.1:70000/db"},
        "TRADEHUB_DATABASE_URL",
        id="database-url-bad-port",
    ),
    pytest.param(
        {"TRADEHUB_HUB_NAME": "billing"}, "TRADEHUB_HUB_NAME", id="hub-unknown"
    ),
    pytest.param({"TRADEHUB_HUB_NAME": "Content"}, "TRADEHUB_HUB_NAME", id="hub-case"),
    pytest.param({"TRADEHUB_HUB_NAME": None}, "TRADEHUB_HUB_NAME", id="hub-missing"),
    pytest.param(
        {"TRADEHUB_LISTEN": "127.0.0.1:70000"},
        "TRADEHUB_LISTEN",
        id="listen-port-range",
    ),
    pytest.param(
        {"TRADEHUB_LISTEN": "127.0.0.1"}, "TRADEHUB_LISTEN", id="listen-no-port"
    ),
    pytest.param(
        {"TRADEHUB_LISTEN": "::1:8080"}, "TRADEHUB_LISTEN", id="listen-v6-brackets"
    ),
    pytest.param(
        {"TRADEHUB_LISTEN": "[zz::1]:8080"}, "TRADEHUB_LISTEN", id="listen-bad-v6"
    ),
    pytest.param(
        {"TRADEHUB_EVENT_BUS_URL": f"http://content:{SECRET}@127.0.0.1:6379/0"},
        "TRADEHUB_EVENT_BUS_URL",
        id="event-bus-scheme",
    ),
    pytest.param(
        {"TRADEHUB_DATABASE_SCHEMA": "Content-Schema"},
        "TRADEHUB_DATABASE_SCHEMA",
        id="schema-name",
    ),
    pytest.param(
        {"TRADEHUB_DATABASE_POOL_SIZE": "0"},
        "TRADEHUB_DATABASE_POOL_SIZE",
        id="pool-size",
    ),
    pytest.param(
        {"TRADEHUB_MAX_BODY_BYTES": "lots"}, "TRADEHUB_MAX_BODY_BYTES", id="max-body"
    ),
    pytest.param(
        {"TRADEHUB_LOG_FORMAT": "xml"}, "TRADEHUB_LOG_FORMAT", id="log-format"
    ),
    pytest.param({"TRADEHUB_LOG_LEVEL": "loud"}, "TRADEHUB_LOG_LEVEL", id="log-level"),
    pytest.param(
        {"TRADEHUB_SHUTDOWN_GRACE_SECONDS": "-1"},
        "TRADEHUB_SHUTDOWN_GRACE_SECONDS",
        id="grace",
    ),
    pytest.param({"TRADEHUB_CUSTOMER_ID": None}, "TRADEHUB_CUSTOMER_ID", id="customer"),
]


@pytest.mark.parametrize("command", ["serve", "migrate"])
@pytest.mark.parametrize(("change", "variable"), CASES)
def test_bad_configuration_exits_2_naming_the_variable(
    trap: socket.socket, command: str, change: dict[str, str | None], variable: str
) -> None:
    env = base_env(trap)
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value

    done = run_hub_command(command, env, timeout=30)

    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert variable in done.stderr
    assert SECRET not in output
    assert nobody_connected(trap), "the hub connected before checking its configuration"


def test_all_problems_are_reported_at_once(trap: socket.socket) -> None:
    env = base_env(trap)
    env.update(TRADEHUB_LISTEN="nowhere", TRADEHUB_HUB_NAME="billing")
    del env["TRADEHUB_EVENT_BUS_URL"]

    done = run_hub_command("serve", env, timeout=30)

    assert done.returncode == 2
    for variable in ("TRADEHUB_LISTEN", "TRADEHUB_HUB_NAME", "TRADEHUB_EVENT_BUS_URL"):
        assert variable in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_version_prints_one_json_line_without_io(trap: socket.socket) -> None:
    env = {"TRADEHUB_HUB_NAME": "shipping", "TRADEHUB_UNKNOWN_FUTURE": "x"}

    done = run_hub_command("version", env, timeout=30)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "hub": "shipping",
        "version": "1.0.0",
        "schema_version": 1,
        "contract": 1,
    }


def test_version_refuses_an_unknown_hub() -> None:
    done = run_hub_command("version", {"TRADEHUB_HUB_NAME": "billing"}, timeout=30)

    assert done.returncode == 2
    assert "TRADEHUB_HUB_NAME" in done.stderr

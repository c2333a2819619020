"""playbooks/provision_aws.yml refuses bad input before any AWS API call.

Each run points the role at an HTTP server on loopback that records every request it
gets; a bad setting must fail the run in a check task, naming the variable, with that
server never asked anything. The AWS example inventory is read as Ansible reads it.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.integration.test_inventories import (
    ALL_HUBS,
    BIN,
    ROOT,
    ansible_env,
    inventory,
)

GOOD = {
    "tradehub_customer_id": "acme",
    "tradehub_domain": "acme-trading.example",
    "tradehub_hubs": ALL_HUBS,
    "aws_infrastructure_region": "eu-west-1",
    "aws_infrastructure_availability_zones": ["eu-west-1a", "eu-west-1b"],
    "aws_infrastructure_allowed_cidrs": ["203.0.113.0/24"],
}


class Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def _record(self) -> None:
        Recorder.requests.append("%s %s" % (self.command, self.path))
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _record

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def provision(tmp_path: Path, endpoint: str, **settings: Any) -> dict[str, Any]:
    variables = {
        **GOOD,
        "aws_infrastructure_endpoint_url": endpoint,
        "aws_infrastructure_outputs_file": str(tmp_path / "aws_outputs.yml"),
        **settings,
    }
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(BIN / "python"),
    }
    hosts = {
        "all": {
            "vars": variables,
            "children": {"tradehub_aws": {"hosts": {"localhost": host}}},
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(hosts))
    completed = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(tmp_path / "hosts.yml"),
            str(ROOT / "playbooks" / "provision_aws.yml"),
        ],
        capture_output=True,
        text=True,
        env=ansible_env(
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_NOCOLOR="1",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        ),
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert completed.returncode != 0, completed.stdout
    return json.loads(completed.stdout)


def failures(output: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (task["task"]["name"], result["msg"])
        for play in output["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
        if result.get("failed")
    ]


@pytest.mark.parametrize(
    ("settings", "variable", "shown"),
    [
        pytest.param(
            {"aws_infrastructure_availability_zones": ["eu-west-1a"]},
            "aws_infrastructure_availability_zones",
            "eu-west-1a",
            id="one-zone",
        ),
        pytest.param(
            {"aws_infrastructure_availability_zones": ["eu-west-1a", "us-east-1b"]},
            "aws_infrastructure_availability_zones",
            "us-east-1b",
            id="zone-of-another-region",
        ),
        pytest.param(
            {"aws_infrastructure_vpc_cidr": "10.40.0.0/33"},
            "aws_infrastructure_vpc_cidr",
            "10.40.0.0/33",
            id="malformed-vpc",
        ),
        pytest.param(
            {
                "aws_infrastructure_public_subnet_cidrs": [
                    "10.40.0.0/20",
                    "10.40.16.0/20",
                ],
                "aws_infrastructure_private_subnet_cidrs": [
                    "10.40.8.0/24",
                    "10.40.144.0/20",
                ],
            },
            "aws_infrastructure_private_subnet_cidrs",
            "10.40.0.0/20 and 10.40.8.0/24",
            id="overlapping-subnets",
        ),
        pytest.param(
            {
                "aws_infrastructure_public_subnet_cidrs": [
                    "10.40.0.0/20",
                    "10.41.0.0/20",
                ],
                "aws_infrastructure_private_subnet_cidrs": [
                    "10.40.128.0/20",
                    "10.40.144.0/20",
                ],
            },
            "aws_infrastructure_public_subnet_cidrs",
            "Outside the VPC: 10.41.0.0/20",
            id="subnet-outside-the-vpc",
        ),
        pytest.param(
            {"aws_infrastructure_allowed_cidrs": []},
            "aws_infrastructure_allowed_cidrs",
            "[]",
            id="no-allowed-network",
        ),
        pytest.param(
            {"aws_infrastructure_allowed_cidrs": ["203.0.113.7/24"]},
            "aws_infrastructure_allowed_cidrs",
            "203.0.113.7/24",
            id="allowed-network-with-host-bits",
        ),
        pytest.param(
            {"tradehub_domain": "acme trading"},
            "tradehub_domain",
            "acme trading",
            id="invalid-domain",
        ),
        pytest.param(
            {"aws_infrastructure_region": "Ireland"},
            "aws_infrastructure_region",
            "Ireland",
            id="invalid-region",
        ),
    ],
)
def test_bad_input_fails_before_any_api_call(
    tmp_path: Path, endpoint: str, settings: dict, variable: str, shown: str
) -> None:
    output = provision(tmp_path, endpoint, **settings)

    failed = failures(output)
    assert len(failed) == 1, failed
    task, message = failed[0]
    assert task.split(" : ")[-1].startswith("Check"), task
    assert variable in message
    assert shown in message
    assert Recorder.requests == []
    assert not (tmp_path / "aws_outputs.yml").exists()


def test_good_input_passes_the_checks_and_then_calls_the_endpoint(
    tmp_path: Path, endpoint: str
) -> None:
    # The same run with good settings gets past every check and asks the endpoint,
    # which answers 500: proof that the checks above are what stopped those runs.
    output = provision(tmp_path, endpoint, aws_infrastructure_wait_timeout=5)

    task, _ = failures(output)[0]
    assert not task.split(" : ")[-1].startswith("Check"), task
    assert Recorder.requests != []


def test_aws_example_puts_the_controller_in_tradehub_aws() -> None:
    listing = inventory(ROOT / "inventories" / "aws_example")
    assert listing["tradehub_aws"]["hosts"] == ["localhost"]

    host = listing["_meta"]["hostvars"]["localhost"]
    assert host["ansible_connection"] == "local"
    assert host["tradehub_hubs"] == ALL_HUBS
    assert len(host["aws_infrastructure_availability_zones"]) >= 2
    assert host["aws_infrastructure_allowed_cidrs"]
    assert "aws_infrastructure_endpoint_url" not in host

"""playbooks/provision_aws.yml before it builds anything: checks, zones, check mode.

Bad input must fail the run in a check task, naming the variable, before any API call:
those runs point the role at an HTTP server on loopback that records every request it
gets, and that server must never be asked anything. Against moto on loopback (an empty
account each time), a hosted zone the role did not make, or a given zone of another
domain, stops the run before anything is created, and check mode on an empty account
says what a run would do and creates nothing. The AWS example inventory is read as
Ansible reads it. The full provisioning, idempotence and destroy are the ``aws``
Molecule scenario's.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
import yaml

from tests.integration.test_inventories import (
    ALL_HUBS,
    BIN,
    ROOT,
    ansible_env,
    inventory,
)
from tests.support.aws import FAKE_CREDENTIALS, moto_server

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


def run_provision(
    tmp_path: Path, endpoint: str, *args: str, **settings: Any
) -> tuple[int, dict[str, Any]]:
    """Run provision_aws.yml on a throw-away inventory; its return code and JSON output."""
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
            *args,
        ],
        capture_output=True,
        text=True,
        env=ansible_env(
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_NOCOLOR="1",
            **FAKE_CREDENTIALS,
        ),
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    return completed.returncode, json.loads(completed.stdout)


def provision(tmp_path: Path, endpoint: str, **settings: Any) -> dict[str, Any]:
    """A run that must fail; its JSON output."""
    returncode, output = run_provision(tmp_path, endpoint, **settings)
    assert returncode != 0, output
    return output


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


@pytest.fixture
def moto() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def client(endpoint: str, service: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def nothing_created(endpoint: str) -> None:
    vpcs = client(endpoint, "ec2").describe_vpcs()["Vpcs"]
    assert [v["VpcId"] for v in vpcs if not v["IsDefault"]] == []
    assert client(endpoint, "kms").list_keys()["Keys"] == []
    assert client(endpoint, "s3").list_buckets()["Buckets"] == []


def test_a_zone_the_role_did_not_make_stops_the_run_before_anything_is_created(
    tmp_path: Path, moto: str
) -> None:
    zone = client(moto, "route53").create_hosted_zone(
        Name=GOOD["tradehub_domain"], CallerReference="the customer's own zone"
    )["HostedZone"]
    zone_id = zone["Id"].rsplit("/", 1)[-1]

    output = provision(tmp_path, moto)

    [(task, message)] = failures(output)
    assert task.endswith("Refuse to take over a hosted zone the role did not make")
    assert "aws_infrastructure_route53_zone_id" in message
    assert zone_id in message
    nothing_created(moto)
    assert len(client(moto, "route53").list_hosted_zones()["HostedZones"]) == 1


def test_a_given_zone_of_another_domain_is_refused(tmp_path: Path, moto: str) -> None:
    zone = client(moto, "route53").create_hosted_zone(
        Name="elsewhere.example", CallerReference="another domain"
    )["HostedZone"]
    zone_id = zone["Id"].rsplit("/", 1)[-1]

    output = provision(tmp_path, moto, aws_infrastructure_route53_zone_id=zone_id)

    [(task, message)] = failures(output)
    assert task.endswith("Check that the given hosted zone exists and is the domain's")
    assert "aws_infrastructure_route53_zone_id %s" % zone_id in message
    assert "elsewhere.example." in message
    nothing_created(moto)


def test_check_mode_on_an_empty_account_says_it_would_create_everything(
    tmp_path: Path, moto: str
) -> None:
    returncode, output = run_provision(tmp_path, moto, "--check")

    assert returncode == 0, failures(output)
    messages = [
        result.get("msg", "")
        for play in output["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
    ]
    assert any("a run would create all of it" in str(m) for m in messages), messages
    assert output["stats"]["localhost"]["changed"] == 0
    nothing_created(moto)
    assert not (tmp_path / "aws_outputs.yml").exists()

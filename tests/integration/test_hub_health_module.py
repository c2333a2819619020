"""tamyla.tradehub.hub_health run by ansible-playbook, as a consultant runs it."""

from __future__ import annotations

from tests.support.contract_server import Behaviour, ContractServer, make_pki
from tests.support.playbook import run_playbook


def run_task(args: dict, *extra: str) -> dict:
    """Run one hub_health task on localhost; return its result."""
    task = {"name": "Check the hubs", "tamyla.tradehub.hub_health": args}
    tasks = run_playbook([{**task, "ignore_errors": True}], *extra)
    return tasks[0]["hosts"]["localhost"]


def test_ready_hubs_pass_and_report_in_check_mode(tmp_path):
    pki = make_pki(tmp_path / "pki", ["content.customer.test"], days=20)
    with (
        ContractServer(Behaviour(hub="content"), tls=pki.context) as content,
        ContractServer(Behaviour(hub="contacts", version="1.2.0")) as contacts,
    ):
        result = run_task(
            {
                "hubs": [
                    {
                        "name": "content",
                        "url": "https://content.customer.test",
                        "connect_to": "127.0.0.1:%d" % content.port,
                    },
                    {"name": "contacts", "url": contacts.url},
                ],
                "ca_path": str(pki.ca_path),
                "timeout": 3,
            },
            "--check",
        )

    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert result["ready"] == ["contacts", "content"]
    assert result["not_ready"] == []
    assert result["hubs"]["contacts"]["version"] == "1.2.0"
    assert result["hubs"]["content"]["cert_days_left"] == 20
    assert any("expires in 20 days" in w for w in result["warnings"])


def test_unready_hub_fails_the_task_naming_it():
    with ContractServer(Behaviour(hub="demand", failing=["database"])) as demand:
        result = run_task(
            {"hubs": [{"name": "demand", "url": demand.url}], "timeout": 2}
        )

    assert result["failed"] is True
    assert result["msg"] == (
        "1 of 1 hubs not ready: demand (not_ready): "
        "/readyz answered 503, failing checks: database"
    )
    assert result["hubs"]["demand"]["failing_checks"] == ["database"]


def test_bad_url_fails_before_probing():
    result = run_task({"hubs": [{"name": "demand", "url": "demand:8080"}]})
    assert result["failed"] is True
    assert result["msg"].startswith("hubs[0].url: expected an http:// or https:// URL")

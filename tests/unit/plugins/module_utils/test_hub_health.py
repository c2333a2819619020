"""hub_health's probe logic against real HTTP(S) servers on loopback."""

from __future__ import annotations

import time

import pytest
from ansible_collections.tamyla.tradehub.plugins.module_utils import hub_health
from ansible_collections.tamyla.tradehub.plugins.module_utils.hub_health import (
    HubHealthError,
    build_targets,
    probe,
    summarize,
    wait_until_ready,
)

from tests.support.contract_server import (
    Behaviour,
    ContractServer,
    make_pki,
    refused_port,
)


def targets_for(**urls: str) -> list[hub_health.HubTarget]:
    return build_targets([{"name": name, "url": url} for name, url in urls.items()])


def test_healthy_hub_is_ready_with_its_version():
    with ContractServer(Behaviour(hub="content", version="2.3.4")) as server:
        reports = probe(targets_for(content=server.url), timeout=2)

    report = reports["content"]
    assert report.status == "ready"
    assert report.http_status == 200
    assert report.version == "2.3.4"
    assert report.schema_version == 1
    assert report.failing_checks == []
    assert report.cert_days_left is None
    assert sorted(path for path, _ in server.requests) == [
        "/healthz",
        "/readyz",
        "/version",
    ]


def test_failing_checks_are_named():
    behaviour = Behaviour(hub="shipping", failing=["database", "license"])
    with ContractServer(behaviour) as server:
        report = probe(targets_for(shipping=server.url), timeout=2)["shipping"]

    assert report.status == "not_ready"
    assert report.http_status == 503
    assert report.failing_checks == ["database", "license"]
    assert report.checks["database"]["ok"] is False
    assert "failing checks: database, license" in report.reason


def test_slow_hub_times_out_without_delaying_the_others():
    with (
        ContractServer(Behaviour(hub="demand", delay=3)) as slow,
        ContractServer(Behaviour(hub="content")) as fast,
    ):
        started = time.monotonic()
        reports = probe(targets_for(demand=slow.url, content=fast.url), timeout=0.5)
        elapsed = time.monotonic() - started

    assert reports["content"].status == "ready"
    assert reports["demand"].status == "down"
    assert "no answer from 127.0.0.1:%d within 0.5s" % slow.port in (
        reports["demand"].reason
    )
    # Six requests at once: the timeout bounds the whole probe, not each in turn.
    assert elapsed < 1.5


def test_refused_connection_is_reported_as_down():
    port = refused_port()
    report = probe(targets_for(campaigns="http://127.0.0.1:%d" % port), timeout=1)[
        "campaigns"
    ]
    assert report.status == "down"
    assert report.reason == "connection refused by 127.0.0.1:%d" % port
    assert report.http_status is None


def test_tls_certificate_days_left_are_reported(tmp_path):
    pki = make_pki(tmp_path, ["content.customer.test"], days=10)
    with ContractServer(Behaviour(), tls=pki.context) as server:
        target = build_targets(
            [{"name": "content", "url": "https://content.customer.test"}],
            connect_to="127.0.0.1:%d" % server.port,
        )
        report = probe(target, timeout=2, ca_path=str(pki.ca_path))["content"]

    assert report.status == "ready"
    assert report.cert_days_left == 10
    assert report.cert_not_after == pki.not_after.isoformat()
    # connect_to keeps the hub's own name in the Host header
    assert {host for _, host in server.requests} == {"content.customer.test"}


def test_tls_certificate_from_unknown_ca_is_rejected_unless_told(tmp_path):
    pki = make_pki(tmp_path, ["127.0.0.1"], days=200)
    with ContractServer(Behaviour(), tls=pki.context) as server:
        strict = probe(targets_for(content=server.url), timeout=2)["content"]
        relaxed = probe(
            targets_for(content=server.url), timeout=2, validate_certs=False
        )["content"]

    assert strict.status == "down"
    assert "TLS certificate of 127.0.0.1 rejected" in strict.reason
    assert relaxed.status == "ready"
    assert relaxed.cert_days_left == 200


def test_tls_host_name_must_match(tmp_path):
    pki = make_pki(tmp_path, ["content.customer.test"], days=90)
    with ContractServer(Behaviour(), tls=pki.context) as server:
        target = build_targets(
            [{"name": "sourcing", "url": "https://sourcing.customer.test"}],
            connect_to="127.0.0.1:%d" % server.port,
        )
        report = probe(target, timeout=2, ca_path=str(pki.ca_path))["sourcing"]
    assert report.status == "down"
    assert "rejected" in report.reason


def test_ready_with_warning_keeps_the_warning():
    behaviour = Behaviour(warning="license expired 2 days ago, in grace for 5 days")
    with ContractServer(behaviour) as server:
        report = probe(targets_for(content=server.url), timeout=2)["content"]
    assert report.status == "ready"
    assert report.reason == "license: license expired 2 days ago, in grace for 5 days"


def test_wait_probes_only_the_hubs_not_ready_until_they_are():
    behaviour = Behaviour(hub="services", failing=["schema"])
    with (
        ContractServer(behaviour) as late,
        ContractServer(Behaviour(hub="content")) as early,
    ):
        rounds_seen = []

        def sleep(_seconds: float) -> None:
            rounds_seen.append(len(late.requests))
            if len(rounds_seen) == 2:
                behaviour.failing = []

        reports, rounds = wait_until_ready(
            targets_for(services=late.url, content=early.url),
            timeout=2,
            wait_timeout=60,
            interval=0,
            sleep=sleep,
        )

    assert rounds == 3
    assert reports["services"].status == "ready"
    assert len(early.requests) == 3  # ready at once, never probed again
    assert len(late.requests) == 9


def test_wait_gives_up_at_the_deadline():
    with ContractServer(Behaviour(failing=["event_bus"])) as server:
        started = time.monotonic()
        reports, rounds = wait_until_ready(
            targets_for(content=server.url), timeout=1, wait_timeout=1.0, interval=0.3
        )
    assert reports["content"].status == "not_ready"
    assert rounds >= 2
    assert time.monotonic() - started < 3


def test_summary_names_each_unready_hub_and_why():
    with ContractServer(Behaviour(hub="demand", failing=["database"])) as server:
        reports = probe(
            targets_for(demand=server.url, shipping="http://127.0.0.1:%d" % 1),
            timeout=1,
        )
    text = summarize(reports)
    assert text.startswith("2 of 2 hubs not ready: ")
    assert "demand (not_ready): /readyz answered 503, failing checks: database" in text
    assert "shipping (down): connection refused by 127.0.0.1:1" in text


@pytest.mark.parametrize(
    "hubs, connect_to, message",
    [
        ([], None, "hubs: give at least one hub"),
        ([{"name": "", "url": "http://x"}], None, "hubs[0].name"),
        ([{"name": "a", "url": "ftp://x"}], None, "hubs[0].url: expected an http"),
        ([{"name": "a", "url": "http://x:99999"}], None, "hubs[0].url: the port"),
        (
            [{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}],
            None,
            "hubs[1].name: hub 'a' is listed twice",
        ),
        (
            [{"name": "a", "url": "http://x"}],
            "nohost",
            "connect_to: expected host:port",
        ),
    ],
)
def test_bad_input_is_refused_before_any_request(hubs, connect_to, message):
    with pytest.raises(HubHealthError, match=message.replace("[", r"\[")):
        build_targets(hubs, connect_to)


def test_only_ignored_failing_checks_count_as_ready():
    with ContractServer(Behaviour(hub="content", failing=["license"])) as server:
        target = hub_health.build_targets(
            [{"name": "content", "url": server.url}], None
        )
        ignored = hub_health.probe(target, timeout=3, ignore_checks=("license",))
        counted = hub_health.probe(target, timeout=3)

    assert ignored["content"].ready
    assert ignored["content"].reason == "ignored failing checks: license"
    assert not counted["content"].ready
    assert counted["content"].failing_checks == ["license"]


def test_other_failing_checks_are_not_ignored():
    with ContractServer(
        Behaviour(hub="content", failing=["license", "database"])
    ) as server:
        target = hub_health.build_targets(
            [{"name": "content", "url": server.url}], None
        )
        reports = hub_health.probe(target, timeout=3, ignore_checks=("license",))

    assert reports["content"].status == "not_ready"

#!/usr/bin/python
# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: hub_health
short_description: Check that the hubs of a Private Trade Hub are alive and ready
version_added: "0.1.0"
description:
  - Probes C(/healthz), C(/readyz) and C(/version) of every hub given, all at the same
    time, through the gateway or directly, as the hub contract defines them.
  - Reports per hub its status, HTTP code, latency, version, failing readiness checks and,
    over HTTPS, the days left on its TLS certificate.
  - Fails, naming each hub that is not ready and why, unless O(fail_on_unready=false).
  - With O(wait=true), probes again until every hub is ready or O(wait_timeout) passes;
    hubs already ready are not probed again.
  - Changes nothing, so it runs the same way in check mode.
author:
  - Tamyla tradehub maintainers (@tamyla)
options:
  hubs:
    description:
      - The hubs to probe.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The hub's name, used as the key of RV(hubs).
        type: str
        required: true
      url:
        description:
          - The hub's base URL, without the endpoint, for example
            V(https://content.customer.com) through the gateway or
            V(http://10.0.0.7:8080) directly.
        type: str
        required: true
      connect_to:
        description:
          - Overrides O(connect_to) for this hub.
        type: str
  connect_to:
    description:
      - Sends every request to this C(host:port) instead of the address of the URL's
        host, keeping the URL's host name in the C(Host) header and in TLS SNI.
      - Useful to probe a gateway through its private address, or before the DNS names
        of the hubs exist.
    type: str
  timeout:
    description:
      - Seconds each request may take, connection and TLS handshake included.
    type: float
    default: 5
  wait:
    description:
      - Probe again until every hub is ready or O(wait_timeout) passes.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to keep probing when O(wait=true).
    type: float
    default: 300
  wait_interval:
    description:
      - Seconds between two rounds of probes when O(wait=true).
    type: float
    default: 2
  validate_certs:
    description:
      - Verify the TLS certificate of HTTPS hubs against O(ca_path) or the system's
        trusted certificates, and its host name.
      - The days left on the certificate are reported either way.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the certificate authorities to trust, for example the internal CA
        that the gateway role creates when the customer gives no certificate.
    type: path
  fail_on_unready:
    description:
      - Fail when a hub is not ready. With V(false) the module only reports.
    type: bool
    default: true
  ignore_checks:
    description:
      - Readiness checks whose failure does not count, for example V(license) to wait
        for hubs that are installed but not licensed yet. A hub failing only these
        checks is reported ready, and the reason in RV(hubs) names them.
    type: list
    elements: str
    default: []
  cert_warning_days:
    description:
      - Warn when a TLS certificate expires in fewer days than this.
    type: int
    default: 30
notes:
  - Every request of every hub runs at once, so that checking seven hubs takes about as
    long as the slowest single request.
  - The module runs wherever the task runs; delegate it to C(localhost) to probe the
    gateway from the controller, or run it on a hub host to probe the hubs directly.
  - The certificate's days left are read from the certificate the server presents, even
    when O(validate_certs=false).
seealso:
  - name: The hub contract
    description: What C(/healthz), C(/readyz) and C(/version) answer.
    link: https://github.com/tamyla/tradehub/blob/main/docs/hub-contract.md
attributes:
  check_mode:
    description: Can run in check mode and return the same result as without it.
    support: full
  diff_mode:
    description: Returns no diff; the module changes nothing.
    support: none
"""

EXAMPLES = r"""
- name: Check every hub through the gateway, waiting up to five minutes
  tamyla.tradehub.hub_health:
    hubs:
      - name: sourcing
        url: https://sourcing.customer.com
      - name: content
        url: https://content.customer.com
    wait: true
    wait_timeout: 300
    ca_path: /etc/tradehub/ca/ca.crt
  delegate_to: localhost

- name: Check two hubs directly on their hosts
  tamyla.tradehub.hub_health:
    hubs:
      - name: content
        url: http://127.0.0.1:8081
      - name: contacts
        url: http://127.0.0.1:8082

- name: Reach the gateway by its private address before DNS exists
  tamyla.tradehub.hub_health:
    hubs:
      - name: shipping
        url: https://shipping.customer.com
    connect_to: 10.20.0.10:443
    ca_path: /etc/tradehub/ca/ca.crt
  register: health

- name: Report without failing
  tamyla.tradehub.hub_health:
    hubs:
      - name: demand
        url: https://demand.customer.com
    fail_on_unready: false
  register: health
"""

RETURN = r"""
hubs:
  description: One entry per hub, keyed by its name.
  returned: always
  type: dict
  contains:
    url:
      description: The base URL probed.
      type: str
      sample: https://content.customer.com
    status:
      description:
        - V(ready) when C(/healthz) and C(/readyz) answer 200.
        - V(not_ready) when the process is alive but C(/readyz) does not answer 200.
        - V(down) when C(/healthz) does not answer 200 (refused, timed out, TLS error).
      type: str
      sample: ready
    ready:
      description: Whether the status is V(ready).
      type: bool
    reason:
      description: Why the hub is not ready, or the warnings of a ready hub.
      type: str
      sample: "/readyz answered 503, failing checks: database"
    http_status:
      description: The HTTP status of C(/readyz), null when it did not answer.
      type: int
      sample: 503
    latency_ms:
      description: The slowest of the hub's three requests, in milliseconds.
      type: float
      sample: 12.4
    version:
      description: The hub artifact's version from C(/version).
      type: str
      sample: 1.0.0
    schema_version:
      description: The schema version the artifact needs, from C(/version).
      type: int
      sample: 1
    failing_checks:
      description: The readiness checks that fail.
      type: list
      elements: str
      sample: [database, license]
    checks:
      description: Every readiness check as C(/readyz) reports it.
      type: dict
      sample: {"database": {"ok": false, "detail": "connection refused"}}
    cert_not_after:
      description: When the TLS certificate expires (ISO 8601), null over HTTP.
      type: str
      sample: "2027-12-03T12:00:00+00:00"
    cert_days_left:
      description: Whole days until the TLS certificate expires, null over HTTP.
      type: int
      sample: 364
ready:
  description: The names of the ready hubs.
  returned: always
  type: list
  elements: str
  sample: [content, contacts]
not_ready:
  description: The names of the hubs that are not ready.
  returned: always
  type: list
  elements: str
  sample: [shipping]
rounds:
  description: How many rounds of probes ran (more than one only with O(wait=true)).
  returned: always
  type: int
  sample: 1
elapsed:
  description: Seconds the module spent probing.
  returned: always
  type: float
  sample: 0.21
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tamyla.tradehub.plugins.module_utils.hub_health import (
    HubHealthError,
    build_targets,
    summarize,
    wait_until_ready,
)


def run_module(module):
    params = module.params
    try:
        targets = build_targets(params["hubs"], params["connect_to"])
    except HubHealthError as exc:
        module.fail_json(msg=str(exc))

    started = time.monotonic()
    reports, rounds = wait_until_ready(
        targets,
        timeout=params["timeout"],
        validate_certs=params["validate_certs"],
        ca_path=params["ca_path"],
        wait_timeout=params["wait_timeout"] if params["wait"] else 0,
        interval=params["wait_interval"],
        ignore_checks=tuple(params["ignore_checks"]),
    )
    result = dict(
        changed=False,
        hubs={name: report.as_dict() for name, report in reports.items()},
        ready=sorted(name for name, report in reports.items() if report.ready),
        not_ready=sorted(name for name, report in reports.items() if not report.ready),
        rounds=rounds,
        elapsed=round(time.monotonic() - started, 3),
    )
    for name, report in sorted(reports.items()):
        days = report.cert_days_left
        if days is not None and days < params["cert_warning_days"]:
            module.warn(
                "The TLS certificate of hub %s expires in %d days (%s)"
                % (name, days, report.cert_not_after)
            )
        if report.ready and report.reason:
            module.warn("Hub %s is ready with a warning: %s" % (name, report.reason))

    result["msg"] = summarize(reports)
    if result["not_ready"] and params["fail_on_unready"]:
        module.fail_json(**result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            hubs=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    url=dict(type="str", required=True),
                    connect_to=dict(type="str"),
                ),
            ),
            connect_to=dict(type="str"),
            timeout=dict(type="float", default=5),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="float", default=300),
            wait_interval=dict(type="float", default=2),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            fail_on_unready=dict(type="bool", default=True),
            ignore_checks=dict(type="list", elements="str", default=[]),
            cert_warning_days=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()

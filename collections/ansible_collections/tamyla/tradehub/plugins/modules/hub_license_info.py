#!/usr/bin/python
# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: hub_license_info
short_description: Report the license active for each hub of a host
version_added: "0.1.0"
description:
  - Reads the license installed for each hub of the host, verifies it against the
    trusted public keys as the hub does, and reports per hub whether it is active,
    what it covers and how many days it has left.
  - Changes nothing and never fails because of a license; a missing or refused
    license is reported with its reason.
author:
  - Tamyla tradehub maintainers (@tamyla)
options:
  hubs:
    description:
      - The hubs to report on. By default every hub with a configuration directory
        under O(config_dir).
    type: list
    elements: str
  customer_id:
    description:
      - When given, a license for another customer is reported as not active.
    type: str
  deployment_id:
    description:
      - The id of this deployment. When given, a license bound to another deployment
        is reported as not active; when omitted, the binding is not checked and
        RV(licenses) shows the deployment a license is bound to.
    type: str
extends_documentation_fragment:
  - tamyla.tradehub.license_host
seealso:
  - module: tamyla.tradehub.hub_license
attributes:
  check_mode:
    description: Runs the same way in check mode.
    support: full
  diff_mode:
    description: Returns no diff; the module changes nothing.
    support: none
"""

EXAMPLES = r"""
- name: Read the license of every hub of the host
  tamyla.tradehub.hub_license_info:
    customer_id: acme-trading
  become: true
  register: licenses

- name: Warn a month before a license expires
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.days_left }} days left"
  loop: "{{ licenses.licenses | dict2items }}"
  when: item.value.active and item.value.days_left < 30
"""

RETURN = r"""
licenses:
  description: Per hub, its license.
  returned: always
  type: dict
  sample:
    content:
      active: true
      status: valid
      reason: ""
      license_id: acme-trading-2026-12
      expires_at: "2027-12-31T00:00:00Z"
      days_left: 392
      edition: standard
      limits: {products: 100000}
  contains:
    active:
      description: Whether the hub accepts the license now (valid or within its grace days).
      type: bool
    status:
      description: >-
        V(valid), V(in_grace), V(expired), V(not_yet_valid), V(missing), or V(refused)
        when the file does not verify or does not fit this customer, hub or deployment.
      type: str
    reason:
      description: Why the license is not active, or what to do about it; empty when valid.
      type: str
    path:
      description: The license file.
      type: str
    license_id:
      description: The license's id, when it verifies.
      type: str
    customer_id:
      description: The customer it is issued to, when it verifies.
      type: str
    expires_at:
      description: Its expiry (RFC 3339, UTC), when it verifies.
      type: str
    days_left:
      description: Whole days until its expiry; negative within the grace days.
      type: int
    grace_days_left:
      description: Grace days left when in grace.
      type: int
    edition:
      description: The edition of this hub that the license grants.
      type: str
    limits:
      description: The limits of this hub that the license sets.
      type: dict
    features:
      description: The feature flags the license grants.
      type: dict
    deployment_id:
      description: The deployment the license is bound to, or null.
      type: str
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.tamyla.tradehub.plugins.module_utils import license as lic
from ansible_collections.tamyla.tradehub.plugins.module_utils.catalog import HUBS
from ansible_collections.tamyla.tradehub.plugins.module_utils.license_store import (
    FileStore,
    StoreError,
)


def report(store, keys, hub, customer_id, deployment_id, now):
    """What a hub would make of its installed license at *now*."""
    entry = {"path": store.path(hub), "active": False, "reason": ""}
    try:
        raw = store.read(hub)
    except StoreError as exc:
        return dict(entry, status="refused", reason=str(exc))
    if raw is None:
        return dict(
            entry,
            status="missing",
            reason="no license installed: run playbooks/license.yml",
        )
    if isinstance(keys, lic.LicenseError):
        return dict(entry, status="refused", reason=str(keys))
    try:
        verified = lic.parse(raw, keys)
    except lic.LicenseError as exc:
        return dict(entry, status="refused", reason=str(exc))
    coverage = verified.hubs.get(hub)
    summary = verified.summary(now)
    entry.update(
        status=summary["status"],
        license_id=verified.license_id,
        customer_id=verified.customer_id,
        expires_at=summary["expires_at"],
        days_left=summary["days_left"],
        grace_days_left=summary["grace_days_left"],
        edition=coverage.get("edition") if isinstance(coverage, dict) else None,
        limits=coverage.get("limits", {}) if isinstance(coverage, dict) else {},
        features=verified.features,
        deployment_id=verified.deployment_id,
    )
    try:
        # What the caller did not give is not checked.
        warnings = lic.check(
            verified,
            customer_id or verified.customer_id,
            [hub],
            deployment_id or verified.deployment_id,
            now,
        )
    except lic.LicenseError as exc:
        if entry["status"] in (lic.VALID, lic.IN_GRACE):
            entry["status"] = "refused"
        entry["reason"] = str(exc)
        return entry
    entry["active"] = True
    entry["reason"] = " ".join(warnings)
    return entry


def main():
    module = AnsibleModule(
        argument_spec={
            "hubs": {"type": "list", "elements": "str"},
            "customer_id": {"type": "str"},
            "deployment_id": {"type": "str"},
            "config_dir": {"type": "path", "default": "/etc/tradehub"},
            "trusted_keys_dir": {"type": "path", "no_log": False},
        },
        supports_check_mode=True,
    )
    if not lic.HAS_CRYPTOGRAPHY:
        module.fail_json(
            msg=missing_required_lib("cryptography"), exception=traceback.format_exc()
        )
    config_dir = module.params["config_dir"]
    hubs = module.params["hubs"]
    if hubs is None:
        hubs = [hub for hub in HUBS if os.path.isdir(os.path.join(config_dir, hub))]
    unknown = [hub for hub in hubs if hub not in HUBS]
    if unknown:
        module.fail_json(
            msg=f"hubs: {', '.join(unknown)}: expected names among {', '.join(HUBS)}"
        )
    try:
        keys = lic.load_trusted_keys(
            module.params["trusted_keys_dir"] or f"{config_dir}/trusted-keys"
        )
    except lic.LicenseError as exc:
        keys = exc
    store = FileStore(config_dir)
    now = lic.now_utc()
    licenses = {
        hub: report(
            store,
            keys,
            hub,
            module.params["customer_id"],
            module.params["deployment_id"],
            now,
        )
        for hub in sorted(set(hubs))
    }
    module.exit_json(changed=False, licenses=licenses)


if __name__ == "__main__":
    main()

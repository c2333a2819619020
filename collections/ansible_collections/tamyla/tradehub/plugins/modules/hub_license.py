#!/usr/bin/python
# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: hub_license
short_description: Activate a signed hub license on the hosts that run the hubs
version_added: "0.1.0"
description:
  - Verifies a license issued by the vendor, offline, then installs it for every hub
    given, where the hub reads it, and makes the running hubs read it again.
  - "Verification, before anything changes: the Ed25519 signature against the trusted
    public keys installed on the host (one signature by a trusted key is enough, so the
    vendor can rotate keys), the customer id, that every hub in O(hubs) is covered, the
    validity window with its grace days, and the deployment the license may be bound to."
  - A license that fails any check is refused with the reason, and the host is left
    exactly as it was.
  - On a Linux host the license of hub C(NAME) is C(<config_dir>/NAME/license.json),
    owned by the hub's system user C(tradehub-NAME), mode C(0400); a running hub's
    systemd unit is then reloaded (SIGHUP), as the hub contract defines.
  - The same license again changes nothing. With O(state=absent) the license files are
    removed and the hubs stop being ready.
  - The format and the vendor's tool are described in C(docs/licensing.md).
author:
  - Tamyla tradehub maintainers (@tamyla)
options:
  hubs:
    description:
      - The hubs of this host to license, by name. Each must be installed already
        (the hub role creates its configuration directory and system user).
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) verifies and installs the license; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  content:
    description:
      - The license file's text, exactly as the vendor issued it, for example
        C("{{ lookup('ansible.builtin.file', 'license.json') }}").
      - Required with O(state=present).
    type: str
  customer_id:
    description:
      - The id of the customer this deployment belongs to; the license must name it.
      - Required with O(state=present).
    type: str
  deployment_id:
    description:
      - The id of this deployment. Needed only when the license is bound to a
        deployment, and must then be the id it names.
    type: str
  reload:
    description:
      - Reload the systemd unit of each running hub whose license changed, so that it
        reads the license at once.
    type: bool
    default: true
extends_documentation_fragment:
  - tamyla.tradehub.license_host
notes:
  - The signature, the key ids' keys and the license text are never returned; the
    result and the diff show the license id, the hubs covered and the expiry.
  - Within its grace period a license is still installed, with a warning.
seealso:
  - module: tamyla.tradehub.hub_license_info
  - name: Licensing
    description: The license format, the vendor's tool and the checks.
    link: https://github.com/tamyla/tradehub/blob/main/docs/licensing.md
attributes:
  check_mode:
    description: Verifies the license and reports what would change, without writing.
    support: full
  diff_mode:
    description: Shows the license id, hubs and expiry installed before and after, per hub.
    support: full
"""

EXAMPLES = r"""
- name: Activate the customer's license on every hub of the host
  tamyla.tradehub.hub_license:
    hubs: [sourcing, content, contacts]
    content: "{{ lookup('ansible.builtin.file', inventory_dir ~ '/license/license.json') }}"
    customer_id: acme-trading
    deployment_id: acme-trading-production
  become: true

- name: Remove the license of one hub
  tamyla.tradehub.hub_license:
    hubs: [campaigns]
    state: absent
  become: true
"""

RETURN = r"""
license:
  description: The license that was verified, without its signatures.
  returned: when O(state=present)
  type: dict
  contains:
    license_id:
      description: The license's id.
      type: str
      sample: acme-trading-2026-12
    customer_id:
      description: The customer it is issued to.
      type: str
    customer_name:
      description: The customer's name.
      type: str
    hubs:
      description: The hubs it covers, sorted.
      type: list
      elements: str
      sample: [contacts, content, sourcing]
    coverage:
      description: Per hub covered, its edition and limits, as the vendor issued them.
      type: dict
      sample: {content: {edition: standard, limits: {products: 100000}}}
    issued_at:
      description: When the vendor issued it (RFC 3339, UTC).
      type: str
    not_before:
      description: The start of its validity (RFC 3339, UTC).
      type: str
    expires_at:
      description: The end of its validity, before the grace days (RFC 3339, UTC).
      type: str
      sample: "2027-12-31T00:00:00Z"
    grace_days:
      description: Days after RV(license.expires_at) during which the hubs stay ready.
      type: int
    deployment_id:
      description: The deployment it is bound to, or null.
      type: str
    features:
      description: The feature flags it grants.
      type: dict
    key_id:
      description: The id of the trusted key whose signature verified.
      type: str
    status:
      description: V(valid), or V(in_grace) after its expiry and within the grace days.
      type: str
    days_left:
      description: Whole days until RV(license.expires_at); negative within the grace days.
      type: int
    grace_days_left:
      description: Whole grace days left when in grace, else null.
      type: int
changed_hubs:
  description: The hubs whose license file was written or removed (or would be, in check mode).
  returned: always
  type: list
  elements: str
reloaded_hubs:
  description: The running hubs that were reloaded to read their new license.
  returned: always
  type: list
  elements: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.tamyla.tradehub.plugins.module_utils import license as lic
from ansible_collections.tamyla.tradehub.plugins.module_utils.catalog import HUBS
from ansible_collections.tamyla.tradehub.plugins.module_utils.license_store import (
    FileStore,
    StoreError,
)


def _verify(module, store, hubs):
    """Verify the license for this host; fail, changing nothing, when it does not fit."""
    params = module.params
    # An empty content is a license file to refuse, not a missing option.
    if params["content"] is None or not params["customer_id"]:
        module.fail_json(msg="content and customer_id are required with state=present")
    raw = params["content"].encode("utf-8")
    keys_dir = params["trusted_keys_dir"] or f"{params['config_dir']}/trusted-keys"
    try:
        keys = lic.load_trusted_keys(keys_dir)
        verified = lic.parse(raw, keys)
        now = lic.now_utc()
        warnings = lic.check(
            verified, params["customer_id"], hubs, params["deployment_id"], now
        )
    except lic.LicenseError as exc:
        module.fail_json(msg=f"license refused: {exc}", changed=False)
    for warning in warnings:
        module.warn(warning)
    return raw, verified, now


def main():
    module = AnsibleModule(
        argument_spec={
            "hubs": {"type": "list", "elements": "str", "required": True},
            "state": {
                "type": "str",
                "choices": ["present", "absent"],
                "default": "present",
            },
            "content": {"type": "str"},
            "customer_id": {"type": "str"},
            "deployment_id": {"type": "str"},
            "config_dir": {"type": "path", "default": "/etc/tradehub"},
            "trusted_keys_dir": {"type": "path", "no_log": False},
            "reload": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    if not lic.HAS_CRYPTOGRAPHY:
        module.fail_json(
            msg=missing_required_lib("cryptography"), exception=traceback.format_exc()
        )
    hubs = sorted(set(module.params["hubs"]))
    unknown = [hub for hub in hubs if hub not in HUBS]
    if unknown or not hubs:
        module.fail_json(
            msg=f"hubs: {', '.join(unknown) or 'empty'}: expected names among {', '.join(HUBS)}"
        )
    store = FileStore(module.params["config_dir"], run_command=module.run_command)
    present = module.params["state"] == "present"
    try:
        for hub in hubs:
            store.check_hub(hub)
        if present:
            raw, verified, now = _verify(module, store, hubs)
            changing = [hub for hub in hubs if not store.is_current(hub, raw)]
        else:
            raw = None
            changing = [hub for hub in hubs if store.read(hub) is not None]
        diff = [
            {
                "before_header": store.path(hub),
                "after_header": store.path(hub),
                "before": _diff_text(store.read(hub)),
                "after": _diff_text(raw),
            }
            for hub in changing
        ]
        reloaded = []
        if not module.check_mode:
            for hub in changing:
                if present:
                    store.write(hub, raw)
                else:
                    store.remove(hub)
                if module.params["reload"] and store.reload(hub):
                    reloaded.append(hub)
    except StoreError as exc:
        module.fail_json(msg=str(exc), changed=False)
    result = {
        "changed": bool(changing),
        "changed_hubs": changing,
        "reloaded_hubs": reloaded,
    }
    if present:
        result["license"] = verified.summary(now)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


def _diff_text(raw):
    """License id, hubs and expiry, one per line, so that a diff shows what changes."""
    if raw is None:
        return "no license\n"
    return "".join(
        f"{name}: {value}\n" for name, value in sorted(lic.describe(raw).items())
    )


if __name__ == "__main__":
    main()

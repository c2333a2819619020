# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
name: hub_urls
short_description: The URLs of hubs, for tamyla.tradehub.hub_health
version_added: "0.1.0"
author:
  - Tamyla tradehub maintainers (@tamyla)
description:
  - Turns a list of hub names into the list of C({name, url}) that the O(tamyla.tradehub.hub_health#module:hubs)
    option takes, either through the gateway (C(https://<hub>.<domain>)) or directly
    (C(http://<address>:<hub port>)).
options:
  _input:
    description: Hub names.
    type: list
    elements: str
    required: true
  domain:
    description: The customer's domain; the URLs go through the gateway over HTTPS.
    type: str
  address:
    description: The address the hubs listen on; the URLs reach each hub directly.
    type: str
"""

EXAMPLES = r"""
- name: Probe the hubs through the gateway
  tamyla.tradehub.hub_health:
    hubs: "{{ ['content', 'contacts'] | tamyla.tradehub.hub_urls(domain='customer.com') }}"

- name: Probe the hubs of this host directly
  tamyla.tradehub.hub_health:
    hubs: "{{ ['content'] | tamyla.tradehub.hub_urls(address='10.0.0.7') }}"
"""

RETURN = r"""
_value:
  description: One C({name, url}) per hub.
  type: list
  elements: dict
  sample: [{"name": "content", "url": "https://content.customer.com"}]
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.tamyla.tradehub.plugins.module_utils.catalog import HUBS


def hub_urls(names, domain=None, address=None):
    if bool(domain) == bool(address):
        raise AnsibleFilterError("hub_urls: give either domain or address, not both")
    unknown = [name for name in names if name not in HUBS]
    if unknown:
        raise AnsibleFilterError(
            "hub_urls: unknown hubs %s; known: %s"
            % (", ".join(unknown), ", ".join(HUBS))
        )
    if domain:
        return [{"name": n, "url": "https://%s.%s" % (n, domain)} for n in names]
    host = "[%s]" % address if ":" in address else address
    return [{"name": n, "url": "http://%s:%d" % (host, HUBS[n]["port"])} for n in names]


class FilterModule:
    def filters(self):
        return {"hub_urls": hub_urls}

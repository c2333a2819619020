# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
name: cidr_split
short_description: Split an IPv4 network into equal subnets
version_added: "0.1.0"
author:
  - Tamyla tradehub maintainers (@tamyla)
description:
  - Lists every subnet of a network with a longer prefix, in address order; a role
    picks from them the subnets it derives when the inventory gives none.
options:
  _input:
    description: The network to split, in CIDR notation.
    type: str
    required: true
  prefix:
    description: The prefix length of the subnets, at least that of the network.
    type: int
    required: true
"""

EXAMPLES = r"""
- name: The first two /20 networks of a VPC
  ansible.builtin.debug:
    msg: "{{ ('10.40.0.0/16' | tamyla.tradehub.cidr_split(20))[:2] }}"
"""

RETURN = r"""
_value:
  description: The subnets, in CIDR notation.
  type: list
  elements: str
  sample: ["10.40.0.0/20", "10.40.16.0/20"]
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.tamyla.tradehub.plugins.module_utils.network_plan import (
    split_network,
)


def cidr_split(network, prefix):
    try:
        return split_network(network, int(prefix))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("cidr_split: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"cidr_split": cidr_split}

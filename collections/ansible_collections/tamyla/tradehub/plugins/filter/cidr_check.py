# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
name: cidr_check
short_description: What is wrong with a list of IPv4 networks
version_added: "0.1.0"
author:
  - Tamyla tradehub maintainers (@tamyla)
description:
  - Checks a list of IPv4 networks in CIDR notation without any library beyond Python's
    own C(ipaddress), so that roles can refuse bad input before any API call.
  - Returns the entries that are not networks (a host part set, such as C(10.0.0.1/16),
    counts as invalid), the pairs that overlap, and the entries outside a parent network.
options:
  _input:
    description: Networks in CIDR notation, such as C(10.40.0.0/20).
    type: list
    elements: raw
    required: true
  within:
    description: A network every entry must lie inside; no check when omitted.
    type: str
"""

EXAMPLES = r"""
- name: Refuse subnets that overlap or leave the VPC
  ansible.builtin.assert:
    that:
      - _problems.invalid == []
      - _problems.overlapping == []
      - _problems.outside == []
  vars:
    _problems: "{{ ['10.40.0.0/20', '10.40.16.0/20'] | tamyla.tradehub.cidr_check(within='10.40.0.0/16') }}"
"""

RETURN = r"""
_value:
  description: The problems found, each an empty list when there is none.
  type: dict
  contains:
    invalid:
      description: Entries that are not IPv4 networks in CIDR notation.
      type: list
    overlapping:
      description: Pairs of entries that share addresses, each as C("a and b").
      type: list
      elements: str
    outside:
      description: Entries not wholly inside O(within).
      type: list
  sample: {"invalid": ["10.40.0.1/20"], "overlapping": [], "outside": []}
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.tamyla.tradehub.plugins.module_utils.network_plan import (
    check_networks,
)


def cidr_check(values, within=None):
    if not isinstance(values, list):
        raise AnsibleFilterError(
            "cidr_check: expected a list of networks, got %s" % type(values).__name__
        )
    return check_networks(values, within=within)


class FilterModule:
    def filters(self):
        return {"cidr_check": cidr_check}

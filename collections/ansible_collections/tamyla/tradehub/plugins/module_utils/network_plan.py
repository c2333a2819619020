# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks and arithmetic on IPv4 networks for the cloud roles' preflight.

The roles validate every CIDR an inventory gives before any cloud API is called, so a
typo fails the run naming the variable instead of half-building a network. Only the
standard library is used, so the checks need nothing installed on the controller.
"""

from __future__ import annotations

import ipaddress


def parse_network(value: object) -> ipaddress.IPv4Network | None:
    """The IPv4 network written as ``a.b.c.d/n`` with no host bits set, else None."""
    if not isinstance(value, str) or "/" not in value:
        return None
    try:
        return ipaddress.IPv4Network(value.strip(), strict=True)
    except ValueError:
        return None


def check_networks(values: list, within: str | None = None) -> dict[str, list]:
    """What is wrong with a list of networks: invalid entries, overlaps, strays.

    ``outside`` lists the entries not inside ``within`` (empty when no parent is given).
    """
    return {
        "invalid": invalid_networks(values),
        "overlapping": overlapping_pairs(values),
        "outside": networks_outside(values, within) if within else [],
    }


def invalid_networks(values: list) -> list:
    """The entries of ``values`` that are not IPv4 networks in CIDR notation."""
    return [value for value in values if parse_network(value) is None]


def overlapping_pairs(values: list) -> list[str]:
    """Every pair of networks in ``values`` that share an address, as "a and b".

    Entries that do not parse are skipped: invalid_networks reports them.
    """
    networks = [(value, parse_network(value)) for value in values]
    valid = [(value, net) for value, net in networks if net is not None]
    pairs = []
    for index, (left, left_net) in enumerate(valid):
        for right, right_net in valid[index + 1 :]:
            if left_net.overlaps(right_net):
                pairs.append("%s and %s" % (left, right))
    return pairs


def networks_outside(values: list, parent: str) -> list:
    """The entries of ``values`` that do not lie wholly inside the ``parent`` network."""
    parent_net = parse_network(parent)
    if parent_net is None:
        return list(values)
    outside = []
    for value in values:
        net = parse_network(value)
        if net is None or not net.subnet_of(parent_net):
            outside.append(value)
    return outside


def split_network(parent: str, new_prefix: int) -> list[str]:
    """Every subnet of ``parent`` with the prefix length ``new_prefix``, in order."""
    parent_net = parse_network(parent)
    if parent_net is None:
        raise ValueError("%r is not an IPv4 network in CIDR notation" % (parent,))
    if not parent_net.prefixlen <= new_prefix <= 32:
        raise ValueError(
            "cannot split %s into /%d networks: the prefix must be between %d and 32"
            % (parent, new_prefix, parent_net.prefixlen)
        )
    return [str(net) for net in parent_net.subnets(new_prefix=new_prefix)]

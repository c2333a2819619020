"""The network checks the cloud roles run before any API call, and their filters."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.tamyla.tradehub.plugins.filter.cidr_check import cidr_check
from ansible_collections.tamyla.tradehub.plugins.filter.cidr_split import cidr_split
from ansible_collections.tamyla.tradehub.plugins.module_utils.network_plan import (
    check_networks,
    networks_outside,
    overlapping_pairs,
    parse_network,
    split_network,
)


@pytest.mark.parametrize(
    "value",
    ["10.0.0.1/16", "10.0.0.0", "10.0.0.0/33", "300.0.0.0/8", "fd00::/8", "", None, 7],
)
def test_anything_but_an_ipv4_network_is_refused(value):
    assert parse_network(value) is None
    assert check_networks([value])["invalid"] == [value]


def test_good_networks_have_no_problem():
    problems = check_networks(["10.40.0.0/20", "10.40.16.0/20"], within="10.40.0.0/16")
    assert problems == {"invalid": [], "overlapping": [], "outside": []}


def test_every_overlapping_pair_is_named():
    assert overlapping_pairs(
        ["10.0.0.0/16", "10.0.1.0/24", "10.1.0.0/16", "10.0.0.0/8"]
    ) == [
        "10.0.0.0/16 and 10.0.1.0/24",
        "10.0.0.0/16 and 10.0.0.0/8",
        "10.0.1.0/24 and 10.0.0.0/8",
        "10.1.0.0/16 and 10.0.0.0/8",
    ]


def test_a_repeated_network_overlaps_itself():
    assert check_networks(["10.0.0.0/24", "10.0.0.0/24"])["overlapping"] == [
        "10.0.0.0/24 and 10.0.0.0/24"
    ]


def test_networks_outside_the_parent_are_named():
    assert networks_outside(
        ["10.40.0.0/20", "10.41.0.0/20", "10.0.0.0/8", "bad"], "10.40.0.0/16"
    ) == ["10.41.0.0/20", "10.0.0.0/8", "bad"]


def test_without_a_parent_nothing_is_outside():
    assert check_networks(["10.41.0.0/20"])["outside"] == []


def test_split_lists_subnets_in_order():
    assert split_network("10.40.0.0/16", 18) == [
        "10.40.0.0/18",
        "10.40.64.0/18",
        "10.40.128.0/18",
        "10.40.192.0/18",
    ]


@pytest.mark.parametrize(("parent", "prefix"), [("10.40.0.0/16", 12), ("nope", 20)])
def test_split_refuses_what_it_cannot_do(parent, prefix):
    with pytest.raises(ValueError):
        split_network(parent, prefix)
    with pytest.raises(AnsibleFilterError, match="cidr_split"):
        cidr_split(parent, prefix)


def test_check_filter_refuses_a_single_string():
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        cidr_check("10.0.0.0/8")


def test_filters_return_what_the_helpers_do():
    assert cidr_split("192.168.0.0/23", "24") == ["192.168.0.0/24", "192.168.1.0/24"]
    assert cidr_check(["10.0.0.0/8", "10.1.0.0/16"], within="10.0.0.0/8") == {
        "invalid": [],
        "overlapping": ["10.0.0.0/8 and 10.1.0.0/16"],
        "outside": [],
    }

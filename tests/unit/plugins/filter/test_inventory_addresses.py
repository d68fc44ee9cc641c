"""inventory_addresses reads inventory variables only, in group order."""
import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.cloudvirt.platform.plugins.filter.inventory_addresses import inventory_addresses

HOSTVARS = {
    "node1": {"ansible_host": "10.0.0.1"},
    "node2": {"ansible_host": "10.0.0.2", "consul_advertise_address": "192.168.0.2"},
    "node3": {},
    "node4": {"ansible_host": ""},
}


def test_prefers_the_role_variable_then_ansible_host_then_the_name():
    hosts = ["node1", "node2", "node3", "node4"]
    assert inventory_addresses(hosts, HOSTVARS, "consul_advertise_address") == [
        "10.0.0.1", "192.168.0.2", "node3", "node4"]


def test_without_a_role_variable_uses_ansible_host():
    assert inventory_addresses(["node2"], HOSTVARS) == ["10.0.0.2"]


def test_unknown_host_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="node9 is not in the inventory"):
        inventory_addresses(["node9"], HOSTVARS)


def test_rejects_a_string():
    with pytest.raises(AnsibleFilterError, match="list of host names"):
        inventory_addresses("node1", HOSTVARS)

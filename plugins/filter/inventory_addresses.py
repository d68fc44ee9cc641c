# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that read cluster addresses from inventory variables only (never gathered facts),
so plays limited to one host still know where every server is."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: inventory_addresses
short_description: Addresses of inventory hosts, from inventory variables only
version_added: 0.1.0
description:
  - For each host name, returns the first defined of the given variable, C(ansible_host),
    or the host name itself.
  - Reads no gathered facts, so it gives the same answer under C(--limit).
options:
  _input:
    description: Host names (usually C(groups['consul_servers'])).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: raw
    required: true
  var:
    description: A per-host variable that overrides C(ansible_host) when set in the inventory.
    type: str
    default: ''
"""

EXAMPLES = r"""
- name: Addresses of the Consul servers
  ansible.builtin.debug:
    msg: "{{ groups['consul_servers'] | cloudvirt.platform.inventory_addresses(hostvars, 'consul_advertise_address') }}"
"""

RETURN = r"""
_value:
  description: One address per host, in the input order.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError


def inventory_addresses(hosts, hostvars, var=''):
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError('inventory_addresses expects a list of host names, got %s' % type(hosts).__name__)
    addresses = []
    for host in hosts:
        try:
            hvars = hostvars[host]
        except KeyError:
            raise AnsibleFilterError('inventory_addresses: host %s is not in the inventory' % host)
        address = None
        for name in ([var] if var else []) + ['ansible_host']:
            try:
                value = hvars[name]
            except KeyError:
                continue
            if value not in (None, ''):
                address = value
                break
        addresses.append(str(address if address is not None else host))
    return addresses


class FilterModule(object):
    def filters(self):
        return {'inventory_addresses': inventory_addresses}

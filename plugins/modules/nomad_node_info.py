#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nomad_node_info
short_description: Read Nomad client nodes with server-side filtering
description:
  - Reads one node (by ID, name or ID prefix) or lists nodes matching an ID prefix or a Nomad filter
    expression, filtered by Nomad rather than after downloading every node.
version_added: 0.1.0
author:
  - cloudvirt platform team (@cloudvirt)
extends_documentation_fragment:
  - cloudvirt.platform.nomad
attributes:
  check_mode:
    support: full
    description: Read-only module.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
options:
  node:
    description: One node, by full ID, name or unique ID prefix; returns the full node (RV(node)).
    type: str
    aliases: [name, id]
  prefix:
    description: List nodes whose ID starts with this.
    type: str
  filter:
    description:
      - A Nomad filter expression over the node list, e.g. V(Status == "ready" and Datacenter == "dc1").
    type: str
  os:
    description: Include the C(os.*) attributes in the list entries.
    type: bool
    default: false
  resources:
    description: Include the nodes' resources in the list entries.
    type: bool
    default: false
  allocations:
    description: With O(node), also return the allocations on the node.
    type: bool
    default: false
seealso:
  - module: cloudvirt.platform.nomad_node
'''

EXAMPLES = r'''
- name: Nodes that are not ready
  cloudvirt.platform.nomad_node_info:
    filter: 'Status != "ready"'
  register: sick

- name: This host's node and what runs on it
  cloudvirt.platform.nomad_node_info:
    node: "{{ inventory_hostname }}"
    allocations: true
  delegate_to: localhost
'''

RETURN = r'''
node:
  description: The full node, V(null) when nothing matches.
  returned: when O(node) is set
  type: dict
exists:
  description: Whether the node exists.
  returned: when O(node) is set
  type: bool
nodes:
  description: Matching nodes (Nomad's node list entries; with O(node), the full node alone).
  returned: always
  type: list
  elements: dict
allocations:
  description: Allocations on the node.
  returned: when O(node) and O(allocations) are set
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cloudvirt.platform.plugins.module_utils.nomad import (
    NomadError, client_from_module, nomad_argument_spec)


def main():
    argument_spec = nomad_argument_spec()
    argument_spec.update(
        node=dict(type='str', aliases=['name', 'id']),
        prefix=dict(type='str'),
        filter=dict(type='str'),
        os=dict(type='bool', default=False),
        resources=dict(type='bool', default=False),
        allocations=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('node', 'prefix'), ('node', 'filter')])
    client = client_from_module(module)
    p = module.params
    result = dict(changed=False)
    try:
        if p['node']:
            node = client.find_node(p['node'])
            result.update(node=node, exists=node is not None, nodes=[node] if node else [])
            if p['allocations']:
                result['allocations'] = client.node_allocations(node['ID']) if node else []
        else:
            result['nodes'] = client.list_nodes(prefix=p['prefix'], filter_expr=p['filter'], os_attrs=p['os'],
                                                resources=p['resources'])
    except NomadError as exc:
        module.fail_json(msg=exc.msg, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

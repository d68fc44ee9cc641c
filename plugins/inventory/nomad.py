# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: nomad
short_description: Nomad client nodes as inventory hosts
description:
  - One host per Nomad client node, grouped by datacenter, node class, node pool, status and
    scheduling eligibility, with the node's details as host variables.
  - Reads a YAML file whose name ends in C(nomad.yml) or C(nomad.yaml) and sets O(plugin) to V(cloudvirt.platform.nomad).
  - Nodes are listed with one request, filtered by Nomad (O(filter)); results can be cached.
version_added: 0.1.0
author:
  - cloudvirt platform team (@cloudvirt)
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - cloudvirt.platform.nomad.inventory
options:
  plugin:
    description: Marks the file as this plugin's configuration.
    type: str
    required: true
    choices: [cloudvirt.platform.nomad]
  filter:
    description:
      - Nomad filter expression over the node list, e.g. V(Status == "ready") or V(NodePool == "edge").
    type: str
  hostname:
    description:
      - What names the inventory hosts. V(name) is the node name (usually the host name), V(id) the node ID,
        V(address) the node's address.
    type: str
    choices: [name, id, address]
    default: name
  group_prefix:
    description: Prefix of the groups this plugin creates.
    type: str
    default: nomad_
'''

EXAMPLES = r'''
# inventories/prod/nomad.yml
plugin: cloudvirt.platform.nomad
address: https://10.0.0.5:4646
ca_cert: /etc/cloudvirt/pki/ca.pem
client_cert: /etc/cloudvirt/pki/cli.pem
client_key: /etc/cloudvirt/pki/cli-key.pem
# token from NOMAD_TOKEN, or vaulted here
filter: 'Status == "ready"'
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ansible-nomad-inventory
cache_timeout: 300
keyed_groups:
  - key: nomad_attributes['os.name'] | default('unknown')
    prefix: os

# Groups created: nomad_dc_<datacenter>, nomad_class_<class> (nomad_class_none without one),
# nomad_pool_<pool>, nomad_status_<status>, nomad_eligible / nomad_ineligible, nomad_draining.
'''

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible_collections.cloudvirt.platform.plugins.module_utils.nomad import NomadClient, NomadError


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'cloudvirt.platform.nomad'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(('nomad.yml', 'nomad.yaml'))

    def _client(self):
        params = dict((name, self.get_option(name)) for name in (
            'address', 'region', 'token', 'ca_cert', 'client_cert', 'client_key', 'validate_certs', 'timeout'))
        params['namespace'] = None
        return NomadClient.from_params(params)

    def _fetch(self):
        try:
            client = self._client()
            return client.list_nodes(filter_expr=self.get_option('filter'), os_attrs=True)
        except NomadError as exc:
            raise AnsibleError('cloudvirt.platform.nomad inventory: %s' % exc.msg)

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        update_cache = self.get_option('cache') and not cache
        nodes = None
        if use_cache:
            try:
                nodes = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if nodes is None:
            nodes = self._fetch()
        if update_cache:
            self._cache[cache_key] = nodes
        self._populate(nodes)

    def _group(self, name):
        group = self._sanitize_group_name(self.get_option('group_prefix') + name)
        self.inventory.add_group(group)
        return group

    def _populate(self, nodes):
        strict = self.get_option('strict')
        naming = self.get_option('hostname')
        for node in sorted(nodes, key=lambda n: (n.get('Name') or '', n.get('ID'))):
            host = {'name': node.get('Name'), 'id': node.get('ID'), 'address': node.get('Address')}[naming] or node.get('ID')
            self.inventory.add_host(host)
            variables = {
                'nomad_node_id': node.get('ID'),
                'nomad_node_name': node.get('Name'),
                'nomad_datacenter': node.get('Datacenter'),
                'nomad_node_class': node.get('NodeClass') or '',
                'nomad_node_pool': node.get('NodePool'),
                'nomad_status': node.get('Status'),
                'nomad_status_description': node.get('StatusDescription'),
                'nomad_eligibility': node.get('SchedulingEligibility'),
                'nomad_drain': bool(node.get('Drain')),
                'nomad_version': node.get('Version'),
                'nomad_address': node.get('Address'),
                'nomad_attributes': node.get('Attributes') or {},
                'nomad_drivers': sorted(name for name, info in (node.get('Drivers') or {}).items()
                                        if (info or {}).get('Healthy')),
            }
            if node.get('Address'):
                variables['ansible_host'] = node['Address']
            for key, value in variables.items():
                self.inventory.set_variable(host, key, value)
            self.inventory.add_child(self._group('dc_%s' % node.get('Datacenter')), host)
            self.inventory.add_child(self._group('class_%s' % (node.get('NodeClass') or 'none')), host)
            if node.get('NodePool'):
                self.inventory.add_child(self._group('pool_%s' % node['NodePool']), host)
            self.inventory.add_child(self._group('status_%s' % node.get('Status')), host)
            self.inventory.add_child(self._group(node.get('SchedulingEligibility') or 'unknown'), host)
            if node.get('Drain'):
                self.inventory.add_child(self._group('draining'), host)
            hostvars = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option('compose'), hostvars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option('groups'), hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hostvars, host, strict=strict)

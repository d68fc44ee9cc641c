#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nomad_node
short_description: Drain, undrain, mark (in)eligible or purge a Nomad client node
description:
  - Drains a Nomad client node (its allocations migrate to other nodes) and waits until the drain is done,
    reporting the allocations still to move; cancels a drain; sets scheduling eligibility; purges a node that is gone.
  - Idempotent, a drained node stays drained; supports check mode and diff mode.
version_added: 0.1.0
author:
  - cloudvirt platform team (@cloudvirt)
extends_documentation_fragment:
  - cloudvirt.platform.nomad
attributes:
  check_mode:
    support: full
    description: Reports what would change without changing anything.
  diff_mode:
    support: full
    description: Shows the state before and after.
options:
  node:
    description:
      - The node, by full ID, by name (what C(nomad node status) shows), or by a unique ID prefix.
      - With the M(cloudvirt.platform.nomad) inventory, C({{ nomad_node_id }}) names the inventory host's node.
    type: str
    required: true
    aliases: [name, id]
  drain:
    description:
      - V(true) drains the node; it also becomes ineligible. A node already draining or drained is left alone
        (unless O(deadline) or O(ignore_system_jobs) differ from the running drain).
      - V(false) cancels a drain and makes the node eligible again, unless O(eligible=false).
    type: bool
  deadline:
    description:
      - How long allocations may take to migrate before Nomad stops those left, as a Go duration (V(30s), V(10m), V(1h)).
      - V(0) means no deadline.
    type: str
    default: 1h
  force:
    description: Stop all allocations of the node at once instead of migrating them gradually (C(nomad node drain -force)).
    type: bool
    default: false
  ignore_system_jobs:
    description: Leave system jobs' allocations running on the drained node (e.g. log shippers).
    type: bool
    default: false
  reason:
    description: Reason recorded with the drain (shown by C(nomad node status)).
    type: str
  eligible:
    description:
      - Scheduling eligibility. V(false) keeps new allocations off the node without moving the running ones.
      - Cannot be V(true) together with O(drain=true).
    type: bool
  purge:
    description:
      - Remove the node from Nomad's state, for a node that is gone for good. A node that is not found is left alone.
      - Refused while the node is up, since it would register again at once. Stop its Nomad agent first.
    type: bool
    default: false
  wait:
    description: With O(drain=true), wait until the drain is complete.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the drain before failing with the allocations still running.
    type: int
    default: 600
seealso:
  - module: cloudvirt.platform.nomad_node_info
  - name: Nomad node drain
    description: How drains migrate allocations.
    link: https://developer.hashicorp.com/nomad/docs/manage/migrate-workloads
'''

EXAMPLES = r'''
- name: Drain this host's Nomad client before maintenance
  cloudvirt.platform.nomad_node:
    node: "{{ nomad_node_id | default(inventory_hostname) }}"
    drain: true
    deadline: 10m
    ignore_system_jobs: true
    reason: "kernel upgrade"
  delegate_to: localhost

- name: Put it back into service
  cloudvirt.platform.nomad_node:
    node: "{{ inventory_hostname }}"
    drain: false
  delegate_to: localhost

- name: Forget a node that was deleted
  cloudvirt.platform.nomad_node:
    node: 6f1a2b3c
    purge: true
'''

RETURN = r'''
node:
  description: The node after the module ran (before, in check mode). Empty when it does not exist.
  returned: always
  type: dict
  contains:
    id:
      description: Node ID.
      type: str
    name:
      description: Node name.
      type: str
    status:
      description: V(ready), V(down), V(disconnected) or V(initializing).
      type: str
    eligibility:
      description: V(eligible) or V(ineligible).
      type: str
    draining:
      description: A drain is in progress.
      type: bool
remaining_allocations:
  description: Allocations still running on the node that a drain would move (when the module returned).
  returned: when O(drain) is set
  type: list
  elements: str
  sample: ["web.web[0] (web)"]
events:
  description: Progress of the drain.
  returned: when the module waited
  type: list
  elements: str
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.cloudvirt.platform.plugins.module_utils.nomad import (
    run_action, Progress, WaitFailed, client_from_module, nomad_argument_spec, parse_duration)


def node_summary(node):
    if not node:
        return {}
    return dict(id=node.get('ID'), name=node.get('Name'), status=node.get('Status'),
                eligibility=node.get('SchedulingEligibility'), draining=node.get('DrainStrategy') is not None,
                datacenter=node.get('Datacenter'), node_class=node.get('NodeClass'), node_pool=node.get('NodePool'))


class NomadNode(object):
    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.result = dict(changed=False, node={})

    def fail(self, msg):
        self.module.fail_json(msg=msg, **self.result)

    def deadline_ns(self):
        if self.params['force']:
            return -1
        try:
            return int(parse_duration(self.params['deadline']) * 1e9)
        except ValueError as exc:
            self.fail('deadline: %s' % to_native(exc))

    def remaining(self, node_id):
        """Allocations a drain still has to move (system jobs excluded when ignored)."""
        allocs = self.client.node_allocations(node_id)
        left = []
        for alloc in allocs:
            if alloc.get('ClientStatus') not in ('pending', 'running'):
                continue
            if self.params['ignore_system_jobs'] and alloc.get('JobType') in ('system', 'sysbatch'):
                continue
            left.append('%s (%s)' % (alloc.get('Name'), alloc.get('JobID')))
        return sorted(left)

    def run(self):
        p = self.params
        node = self.client.find_node(p['node'])
        if p['purge']:
            return self.purge(node)
        if node is None:
            self.fail('No Nomad node matches %r (by ID, name or ID prefix).' % p['node'])
        self.result['node'] = node_summary(node)
        node_id = node['ID']
        draining = node.get('DrainStrategy') is not None
        eligible = node.get('SchedulingEligibility') == 'eligible'
        want_drain = p['drain']
        want_eligible = p['eligible']
        if want_drain and want_eligible:
            self.fail('drain=true and eligible=true contradict each other: a draining node is ineligible.')
        actions = []
        after_draining, after_eligible = draining, eligible
        if want_drain is True:
            spec = (node.get('DrainStrategy') or {})
            deadline = self.deadline_ns()
            left = self.remaining(node_id)
            self.result['remaining_allocations'] = left
            if draining:
                if spec.get('Deadline') != deadline or bool(spec.get('IgnoreSystemJobs')) != p['ignore_system_jobs']:
                    actions.append('drain')
            elif eligible or left:
                actions.append('drain')
            after_draining, after_eligible = bool(actions) or draining, False
        elif want_drain is False:
            target = want_eligible if want_eligible is not None else True
            if draining:
                actions.append('undrain')
                after_draining, after_eligible = False, target
            elif target != eligible:
                actions.append('eligibility')
                after_eligible = target
        elif want_eligible is not None and want_eligible != eligible:
            if draining and want_eligible:
                self.fail('Node %s is draining; cancel the drain (drain=false) to make it eligible.' % node.get('Name'))
            actions.append('eligibility')
            after_eligible = want_eligible

        changed = bool(actions)
        self.result['changed'] = changed
        if changed and self.module._diff:
            self.result['diff'] = dict(
                before='draining = %s\neligible = %s\n' % (str(draining).lower(), str(eligible).lower()),
                after='draining = %s\neligible = %s\n' % (str(after_draining).lower(), str(after_eligible).lower()),
                before_header='node %s' % node.get('Name'), after_header='node %s' % node.get('Name'))
        if self.module.check_mode:
            return
        for action in actions:
            if action == 'drain':
                body = {'NodeID': node_id, 'DrainSpec': {'Deadline': self.deadline_ns(),
                                                         'IgnoreSystemJobs': p['ignore_system_jobs']}}
                if p['reason']:
                    body['Meta'] = {'message': p['reason']}
                self.client.request('POST', '/v1/node/%s/drain' % node_id, body=body, namespace='')
            elif action == 'undrain':
                body = {'NodeID': node_id, 'DrainSpec': None, 'MarkEligible': bool(after_eligible)}
                if p['reason']:
                    body['Meta'] = {'message': p['reason']}
                self.client.request('POST', '/v1/node/%s/drain' % node_id, body=body, namespace='')
            elif action == 'eligibility':
                self.client.request('POST', '/v1/node/%s/eligibility' % node_id, namespace='',
                                    body={'NodeID': node_id, 'Eligibility': 'eligible' if after_eligible else 'ineligible'})
        if want_drain and p['wait']:
            self.wait_drained(node_id, node.get('Name'))
        self.result['node'] = node_summary(self.client.read_node(node_id))

    def wait_drained(self, node_id, name):
        progress = Progress()
        deadline = time.time() + self.params['wait_timeout']
        index = None
        try:
            while True:
                node, dummy = self.client.blocking_get('/v1/node/%s' % node_id, None, 1, namespace='')
                left = self.remaining(node_id)
                self.result['remaining_allocations'] = left
                draining = node.get('DrainStrategy') is not None
                if not draining:
                    # the drainer is done; stopped allocations may need a moment to exit
                    if not left:
                        progress.add('node %s drained' % name)
                        return
                    progress.add('node %s: drain complete, waiting for %d allocation(s) to stop: %s'
                                 % (name, len(left), ', '.join(left)))
                else:
                    progress.add('node %s draining: %d allocation(s) left%s' % (name, len(left), (': ' + ', '.join(left)) if left else ''))
                if time.time() > deadline:
                    raise WaitFailed('Timed out after %ss waiting for node %s to drain; still running: %s. The drain goes on in '
                                     'Nomad (deadline %s).' % (self.params['wait_timeout'], name, ', '.join(left) or 'none',
                                                               self.params['deadline']))
                # block on the node's allocations: Nomad answers as soon as one changes
                dummy, index = self.client.blocking_get('/v1/node/%s/allocations' % node_id, index, 2, namespace='')
        finally:
            self.result['events'] = progress.events

    def purge(self, node):
        if node is None:
            self.result['msg'] = 'no node matches %r; nothing to purge' % self.params['node']
            return
        self.result['node'] = node_summary(node)
        if node.get('Status') not in ('down',):
            self.fail('Node %s (%s) is %s: purging a live node only makes it register again. Stop its Nomad agent, wait '
                      'until it is down, then purge.' % (node.get('Name'), node['ID'], node.get('Status')))
        self.result['changed'] = True
        if self.module._diff:
            self.result['diff'] = dict(before='node %s: %s\n' % (node.get('Name'), node.get('Status')), after='')
        if not self.module.check_mode:
            self.client.request('POST', '/v1/node/%s/purge' % node['ID'], namespace='')


def main():
    argument_spec = nomad_argument_spec()
    argument_spec.update(
        node=dict(type='str', required=True, aliases=['name', 'id']),
        drain=dict(type='bool'),
        deadline=dict(type='str', default='1h'),
        force=dict(type='bool', default=False),
        ignore_system_jobs=dict(type='bool', default=False),
        reason=dict(type='str'),
        eligible=dict(type='bool'),
        purge=dict(type='bool', default=False),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=600),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[('purge', 'drain'), ('purge', 'eligible')],
    )
    if module.params['drain'] is None and module.params['eligible'] is None and not module.params['purge']:
        module.fail_json(msg='Say what to do with the node: drain, eligible or purge.')
    client = client_from_module(module)
    node = NomadNode(module, client)
    run_action(module, node, node.run)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nomad_job_scale
short_description: Set the count of a Nomad task group and wait for it
description:
  - Scales a task group of a running Nomad job to an absolute count or by a relative amount, through
    Nomad's scaling API, so the change and its reason are recorded in the job's scaling events
    (C(nomad job scale), C(GET /v1/job/:id/scale)).
  - Waits until the new allocations are running (and healthy when the job has a deployment) or the
    surplus ones have stopped.
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
  name:
    description: Job ID.
    type: str
    required: true
  group:
    description:
      - Task group to scale. May be omitted when the job has a single task group.
    type: str
  count:
    description:
      - The count. A number (V(3)) sets it; V(+N) or V(-N) changes the current count by N (not idempotent by nature).
      - Must stay within the group's C(scaling) block C(min)/C(max) when it has one.
    type: str
    required: true
  reason:
    description: Message recorded with the scaling event (C(nomad job scaling-events) shows it).
    type: str
    default: Scaled by Ansible (cloudvirt.platform.nomad_job_scale)
  wait:
    description:
      - Wait until the group runs exactly the new count of allocations (healthy, when Nomad runs a deployment
        for the change) and no surplus allocation is still running.
      - Also applies when the count is already right, to make sure the group converged.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait before failing with what is still pending.
    type: int
    default: 300
seealso:
  - module: cloudvirt.platform.nomad_job
  - name: Nomad job scaling API
    description: The endpoint this module uses.
    link: https://developer.hashicorp.com/nomad/api-docs/jobs#scale-task-group
'''

EXAMPLES = r'''
- name: Run three web allocations
  cloudvirt.platform.nomad_job_scale:
    name: web
    group: web
    count: 3
    reason: "Black Friday"

- name: Add two workers
  cloudvirt.platform.nomad_job_scale:
    name: imagehost
    group: worker
    count: "+2"
    reason: "backlog of {{ queue_depth }} messages"
'''

RETURN = r'''
job_id:
  description: Job ID.
  returned: always
  type: str
group:
  description: The task group.
  returned: always
  type: str
previous_count:
  description: Count before the module ran.
  returned: always
  type: int
  sample: 1
count:
  description: Count after the module ran (the planned count in check mode).
  returned: always
  type: int
  sample: 3
eval_id:
  description: Evaluation created by the scaling.
  returned: when changed and not in check mode
  type: str
job_modify_index:
  description: C(JobModifyIndex) after the scaling.
  returned: when changed and not in check mode
  type: int
running:
  description: Running allocations of the group when the wait ended.
  returned: when the module waited
  type: int
deployment:
  description: The deployment Nomad ran for the change, if any (same keys as in M(cloudvirt.platform.nomad_job)).
  returned: when the module waited for a deployment
  type: dict
events:
  description: Progress while waiting.
  returned: when the module waited
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.cloudvirt.platform.plugins.module_utils.nomad import (
    run_action, Waiter, client_from_module, nomad_argument_spec, resolve_count)


class JobScale(object):
    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.namespace = self.params['namespace'] or 'default'
        self.result = dict(changed=False, job_id=self.params['name'])

    def what(self):
        text = "job '%s'" % self.params['name']
        return text if self.namespace == 'default' else text + " in namespace '%s'" % self.namespace

    def run(self):
        p = self.params
        job = self.client.read_job(p['name'], namespace=self.namespace)
        if job is None:
            self.module.fail_json(msg='%s does not exist; submit it first (cloudvirt.platform.nomad_job).' % self.what(), **self.result)
        if job.get('Type') in ('system', 'sysbatch'):
            self.module.fail_json(msg='%s is a %s job: it runs one allocation per node and cannot be scaled.'
                                  % (self.what(), job['Type']), **self.result)
        groups = dict((g['Name'], g) for g in job.get('TaskGroups') or [])
        name = p['group']
        if name is None:
            if len(groups) != 1:
                self.module.fail_json(msg='%s has task groups %s; say which one with group.'
                                      % (self.what(), ', '.join(sorted(groups))), **self.result)
            name = list(groups)[0]
        if name not in groups:
            self.module.fail_json(msg='%s has no task group %r (it has %s).' % (self.what(), name, ', '.join(sorted(groups))),
                                  **self.result)
        group = groups[name]
        current = group.get('Count') or 0
        try:
            target, dummy = resolve_count(p['count'], current)
        except ValueError as exc:
            self.module.fail_json(msg=to_native(exc), **self.result)
        policy = group.get('Scaling') or {}
        if policy.get('Enabled', True) and policy:
            low, high = policy.get('Min'), policy.get('Max')
            if low is not None and target < low:
                self.module.fail_json(msg='count %d is below the scaling policy minimum %d of group %s.' % (target, low, name),
                                      **self.result)
            if high is not None and target > high:
                self.module.fail_json(msg='count %d is above the scaling policy maximum %d of group %s.' % (target, high, name),
                                      **self.result)
        changed = target != current
        self.result.update(group=name, previous_count=current, count=target, changed=changed)
        if changed and self.module._diff:
            self.result['diff'] = dict(before='group "%s" count = %d\n' % (name, current),
                                       after='group "%s" count = %d\n' % (name, target),
                                       before_header=self.what(), after_header=self.what())
        if job.get('Stop') and changed:
            self.module.warn('%s is stopped: the new count is recorded but nothing runs until the job is started.' % self.what())
        if self.module.check_mode:
            return
        resp = None
        if changed:
            resp = self.client.scale_job(p['name'], name, target, message=p['reason'], namespace=self.namespace)
            self.result.update(eval_id=resp.get('EvalID') or None, job_modify_index=resp.get('JobModifyIndex'))
        if p['wait'] and not job.get('Stop'):
            self.wait(name, target, resp)

    def wait(self, group, target, resp):
        waiter = Waiter(self.client, namespace=self.namespace, timeout=self.params['wait_timeout'])
        what = '%s group %s' % (self.what(), group)
        try:
            if resp and resp.get('EvalID'):
                evaluation = waiter.evaluation(resp['EvalID'], what)
                if evaluation.get('DeploymentID'):
                    dep, dummy = waiter.deployment(evaluation['DeploymentID'], what)
                    self.result['deployment'] = waiter.deployment_summary(dep)

            def accept(allocs):
                mine = [a for a in allocs if a.get('TaskGroup') == group]
                running = [a for a in mine if a.get('DesiredStatus') == 'run' and a.get('ClientStatus') == 'running']
                starting = [a for a in mine if a.get('DesiredStatus') == 'run' and a.get('ClientStatus') == 'pending']
                stopping = [a for a in mine if a.get('DesiredStatus') != 'run' and a.get('ClientStatus') in ('pending', 'running')]
                self.result['running'] = len(running)
                text = 'group %s: %d/%d running' % (group, len(running), target)
                if starting:
                    text += ', %d starting' % len(starting)
                if stopping:
                    text += ', %d stopping' % len(stopping)
                return len(running) == target and not starting and not stopping, text
            fail_index = resp.get('EvalCreateIndex') if resp else None
            waiter.allocations(self.params['name'], what, accept, fail_index=fail_index)
        finally:
            self.result['events'] = waiter.progress.events


def main():
    argument_spec = nomad_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        group=dict(type='str'),
        count=dict(type='str', required=True),
        reason=dict(type='str', default='Scaled by Ansible (cloudvirt.platform.nomad_job_scale)'),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=300),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = client_from_module(module)
    scale = JobScale(module, client)
    run_action(module, scale, scale.run)


if __name__ == '__main__':
    main()

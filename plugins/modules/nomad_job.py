#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nomad_job
short_description: Submit, update or stop a Nomad job and wait until it is healthy
description:
  - Submits a Nomad job from HCL2 (parsed by Nomad, with HCL2 variables) or from its JSON API form,
    only when Nomad's plan says the job changes, and follows the evaluation and deployment until
    they succeed.
  - Check mode returns Nomad's plan without registering anything; diff mode shows the changed
    fields before and after.
  - On failure it names the allocation, the task and its last events (and the last lines of the
    task's stderr when the ACL token may read them), and says when Nomad auto-reverted the job.
  - O(state=absent) stops the job (and purges it with O(purge=true)); a missing job is not an error.
version_added: 0.1.0
author:
  - cloudvirt platform team (@cloudvirt)
extends_documentation_fragment:
  - cloudvirt.platform.nomad
attributes:
  check_mode:
    support: full
    description: Runs Nomad's plan and returns it; nothing is registered or stopped.
  diff_mode:
    support: full
    description: The fields the plan changes, old values before and new values after.
options:
  state:
    description:
      - V(present) submits the job when it differs from what Nomad runs.
      - V(absent) stops the job (C(nomad job stop)); with O(purge=true) also removes it from Nomad.
    type: str
    choices: [present, absent]
    default: present
  name:
    description:
      - Job ID. Enough for O(state=absent).
      - With O(state=present) it must match the ID in the job specification, if given.
    type: str
  content:
    description:
      - The job specification as text, HCL2 or JSON (see O(content_format)).
      - Use C(lookup('ansible.builtin.file', 'web.nomad.hcl')) or C(lookup('ansible.builtin.template', ...)) for controller files.
    type: str
  src:
    description:
      - Path of a job specification file on the host that runs the module, HCL2 or JSON (see O(content_format)).
      - Parse errors name this file and the line.
    type: path
  job:
    description:
      - The job in Nomad's JSON API form (as C(nomad job inspect) prints it, with or without the top-level C(Job) key).
    type: dict
  content_format:
    description:
      - Format of O(content) or O(src). V(auto) takes text starting with C({) as JSON and anything else as HCL2.
      - V(json) is Nomad's JSON API form of a job, not HCL's JSON syntax.
    type: str
    choices: [auto, hcl2, json]
    default: auto
  variables:
    description:
      - Values of the HCL2 C(variable) blocks of the job, like C(nomad job run -var).
      - Strings are passed literally (never evaluated as templates); lists and dicts become HCL lists and objects.
    type: dict
  store_submission:
    description:
      - Store the job source (and the variables) in Nomad with the job, so C(nomad job inspect) and the UI show it.
      - Turn off when O(variables) carry values that users with read access to the job must not see.
    type: bool
    default: true
  wait:
    description:
      - Wait until the evaluation is processed and the deployment succeeds (service jobs), or the new
        allocations run (batch and system jobs), or with O(state=absent) all allocations stopped.
      - With O(state=present) and no change, a running deployment is still waited for, and a failed
        deployment of the current job version fails the task.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait before failing with what is still pending.
    type: int
    default: 300
  promote:
    description:
      - When the deployment has canaries that need a manual promotion, promote them once they are
        healthy and keep waiting. Otherwise the module returns, with a warning, when they are healthy.
    type: bool
    default: false
  enforce_index:
    description:
      - Register the job only if its current C(JobModifyIndex) is this value (V(0) means the job must not
        exist yet), to detect concurrent writers. Nomad enforces it atomically.
      - Only consulted when the job changes.
    type: int
  preserve_counts:
    description:
      - Keep the current count of task groups that exist already (scaled by an operator, an autoscaler or
        M(cloudvirt.platform.nomad_job_scale)), so the count in the specification only applies to new groups.
    type: bool
    default: false
  purge:
    description:
      - With O(state=absent), remove the job from Nomad's state instead of only stopping it (C(nomad job stop -purge)).
      - Also purges a job that is already stopped.
    type: bool
    default: false
seealso:
  - module: cloudvirt.platform.nomad_job_scale
  - module: cloudvirt.platform.nomad_job_info
  - name: Nomad jobs HTTP API
    description: Plan, register and deregister endpoints.
    link: https://developer.hashicorp.com/nomad/api-docs/jobs
'''

EXAMPLES = r'''
- name: Deploy the web job and wait until its deployment is healthy
  cloudvirt.platform.nomad_job:
    address: https://nomad.service.consul:4646
    ca_cert: /etc/cloudvirt/ca.pem
    token: "{{ nomad_deploy_token }}"
    content: "{{ lookup('ansible.builtin.file', 'jobs/web.nomad.hcl') }}"
    variables:
      image: registry.example.com/web:1.4.2
      count: 3
  delegate_to: localhost
  run_once: true

- name: Show what would change (run with --check --diff)
  cloudvirt.platform.nomad_job:
    src: /srv/jobs/web.nomad.hcl
  check_mode: true
  register: plan

- name: Only register if nobody changed the job since we read it
  cloudvirt.platform.nomad_job:
    job: "{{ job_json }}"
    enforce_index: "{{ info.job.JobModifyIndex }}"

- name: Keep counts set by the autoscaler
  cloudvirt.platform.nomad_job:
    src: /srv/jobs/worker.nomad.hcl
    preserve_counts: true

- name: Stop and purge a job (fine if it is already gone)
  cloudvirt.platform.nomad_job:
    name: old-batch
    state: absent
    purge: true
'''

RETURN = r'''
job_id:
  description: ID of the job.
  returned: always
  type: str
  sample: web
namespace:
  description: Namespace of the job.
  returned: always
  type: str
  sample: default
changes:
  description: One line per changed field, from Nomad's plan.
  returned: state=present
  type: list
  elements: str
  sample: ["group web: Count 1 -> 3", "job web group web task server Config: image \"web:1.4.1\" -> \"web:1.4.2\""]
plan:
  description: Summary of Nomad's plan.
  returned: state=present
  type: dict
  contains:
    diff_type:
      description: V(None), V(Added), V(Edited) or V(Deleted).
      type: str
    updates:
      description: Per task group, what the scheduler would do (place, stop, in_place_update, destructive_update, canary...).
      type: dict
    job_modify_index:
      description: C(JobModifyIndex) of the job when planned (V(0) for a new job).
      type: int
    placement_failures:
      description: Task groups the scheduler could not place, with the reason.
      type: list
      elements: str
    warnings:
      description: Warnings from Nomad about the job.
      type: str
  sample: {"diff_type": "Edited", "updates": {"web": {"destructive_update": 3}}, "job_modify_index": 1234}
eval_id:
  description: Evaluation created by the registration or the stop.
  returned: when the job was registered or stopped
  type: str
job_modify_index:
  description: C(JobModifyIndex) after the registration.
  returned: when the job was registered
  type: int
job_version:
  description: Version of the job after the registration.
  returned: when the module waited
  type: int
deployment:
  description: The deployment that was followed.
  returned: when the module waited for a deployment
  type: dict
  contains:
    id:
      description: Deployment ID.
      type: str
    status:
      description: V(successful), V(running) (canaries awaiting promotion), V(failed)...
      type: str
    status_description:
      description: Nomad's description of the status.
      type: str
    requires_promotion:
      description: Canaries wait for a promotion.
      type: bool
    task_groups:
      description: Per group desired_total, placed, healthy, unhealthy, desired_canaries, placed_canaries, promoted, auto_revert, auto_promote.
      type: dict
auto_revert:
  description: Whether a task group of the deployment has C(auto_revert) on.
  returned: when the module waited for a deployment
  type: bool
reverted_to_version:
  description: The version Nomad auto-reverted the job to after a failed deployment.
  returned: on failure, when Nomad auto-reverted
  type: int
failed_allocations:
  description: Allocations that failed, with their tasks and last events.
  returned: on failure while waiting
  type: list
  elements: dict
events:
  description: Progress while waiting (evaluation, deployment health), with seconds since the start.
  returned: when the module waited
  type: list
  elements: str
  sample: ["+0.1s evaluation 1f0c2a4e complete: web place=1", "+2.3s deployment 9a8b7c6d successful: web 1/1 healthy"]
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible_collections.cloudvirt.platform.plugins.module_utils.nomad import (
    ACTIVE_DEPLOYMENT_STATUSES, NomadError, run_action, Waiter, client_from_module, describe_placement_failures,
    explain_parse_error, hcl_variables_file, nomad_argument_spec, render_plan_diff, summarize_updates)


class NomadJob(object):
    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.result = dict(changed=False)
        self.namespace = self.params['namespace']

    # -- input --------------------------------------------------------------------------------

    def _fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    def load(self):
        """The job as an API dict and the submission to store with it."""
        p = self.params
        if p['job'] is not None:
            job = p['job'].get('Job', p['job']) if isinstance(p['job'].get('Job'), dict) else p['job']
            if p['variables']:
                self._fail('variables only apply to HCL2 jobs, not to a job given as a dict.')
            return self._finish(dict(job), None)
        if p['src'] is not None:
            source_name = p['src']
            try:
                with open(p['src'], 'rb') as handle:
                    text = to_text(handle.read(), errors='surrogate_or_strict')
            except (IOError, OSError) as exc:
                self._fail('Cannot read the job file %s: %s' % (p['src'], to_native(exc)))
        else:
            source_name = 'content'
            text = p['content']
        fmt = p['content_format']
        if fmt == 'auto':
            fmt = 'json' if text.lstrip().startswith('{') else 'hcl2'
        if fmt == 'json':
            if p['variables']:
                self._fail('variables only apply to HCL2 jobs, not to JSON (content_format=json).')
            try:
                data = json.loads(text)
            except ValueError as exc:
                self._fail('The job in %s is not valid JSON: %s' % (source_name, to_native(exc)))
            if not isinstance(data, dict):
                self._fail('The job in %s must be a JSON object.' % source_name)
            job = data['Job'] if isinstance(data.get('Job'), dict) else data
            return self._finish(job, {'Source': text, 'Format': 'json'})
        try:
            variables = hcl_variables_file(p['variables'])
        except (TypeError, ValueError) as exc:
            self._fail('variables: %s' % to_native(exc))
        try:
            job = self.client.parse_job(text, variables)
        except NomadError as exc:
            if exc.status == 400:
                msg, line = explain_parse_error(exc.body, text, os.path.basename(source_name))
                self._fail(msg, error_line=line)
            raise
        submission = None
        if p['store_submission']:
            submission = {'Source': text, 'Format': 'hcl2'}
            if variables:
                submission['Variables'] = variables
        return self._finish(job, submission)

    def _finish(self, job, submission):
        if not job.get('ID'):
            if job.get('Name'):
                job['ID'] = job['Name']
            else:
                self._fail('The job specification has no ID.')
        if self.params['name'] and self.params['name'] != job['ID']:
            self._fail("name is %r but the job specification's ID is %r." % (self.params['name'], job['ID']))
        spec_ns = job.get('Namespace')
        if self.namespace and spec_ns and spec_ns != self.namespace:
            self._fail("namespace is %r but the job specification says namespace %r; remove one of them."
                       % (self.namespace, spec_ns))
        self.namespace = self.namespace or spec_ns or 'default'
        job['Namespace'] = self.namespace
        if submission is not None and not self.params['store_submission']:
            submission = None
        self.result.update(job_id=job['ID'], namespace=self.namespace)
        return job, submission

    def what(self, job_id):
        return "job '%s'" % job_id + ('' if self.namespace == 'default' else " in namespace '%s'" % self.namespace)

    # -- present ------------------------------------------------------------------------------

    def present(self):
        p = self.params
        job, submission = self.load()
        job_id = job['ID']
        if p['preserve_counts']:
            self._preserve_counts(job)
        plan = self.client.plan_job(job, namespace=self.namespace)
        diff = plan.get('Diff') or {}
        changed = diff.get('Type', 'None') != 'None'
        before, after, changes = render_plan_diff(diff)
        failures = describe_placement_failures(plan.get('FailedTGAllocs'))
        self.result.update(changed=changed, changes=changes, plan=dict(
            diff_type=diff.get('Type', 'None'),
            updates=summarize_updates(plan.get('Annotations')),
            job_modify_index=plan.get('JobModifyIndex'),
            placement_failures=failures,
            warnings=plan.get('Warnings') or '',
        ))
        if plan.get('Warnings'):
            self.module.warn('Nomad: %s' % plan['Warnings'].strip())
        if changed and self.module._diff:
            self.result['diff'] = dict(
                before=before, after=after,
                before_header="%s (in Nomad)" % self.what(job_id),
                after_header="%s (planned)" % self.what(job_id))
        if changed and p['enforce_index'] is not None and plan.get('JobModifyIndex') != p['enforce_index']:
            self._fail('%s has JobModifyIndex %s, not the expected %s: someone changed it in between. Read it again '
                       'and retry.' % (self.what(job_id), plan.get('JobModifyIndex'), p['enforce_index']), **self.result)
        if failures and (self.module.check_mode or not p['wait']):
            self.module.warn('Nomad cannot place all of %s: %s' % (self.what(job_id), '; '.join(failures)))
        if not changed:
            if p['wait'] and not self.module.check_mode:
                self._wait_unchanged(job_id, plan.get('JobModifyIndex'))
            return
        if self.module.check_mode:
            return
        try:
            reg = self.client.register_job(job, namespace=self.namespace, enforce_index=p['enforce_index'],
                                           preserve_counts=p['preserve_counts'], submission=submission)
        except NomadError as exc:
            if 'job modify index' in (exc.body or '').lower():
                self._fail('%s was changed by someone else while we planned (Nomad: %s). Read it again and retry.'
                           % (self.what(job_id), (exc.body or '').strip()), **self.result)
            raise
        self.result.update(eval_id=reg.get('EvalID') or None, job_modify_index=reg.get('JobModifyIndex'))
        if reg.get('Warnings'):
            self.module.warn('Nomad: %s' % reg['Warnings'].strip())
        if p['wait']:
            self._wait_registered(job_id, reg)

    def _preserve_counts(self, job):
        existing = self.client.read_job(job['ID'], namespace=self.namespace)
        if not existing:
            return
        counts = dict((g.get('Name'), g.get('Count')) for g in existing.get('TaskGroups') or [])
        for group in job.get('TaskGroups') or []:
            if group.get('Name') in counts:
                group['Count'] = counts[group['Name']]

    def _waiter(self):
        return Waiter(self.client, namespace=self.namespace, timeout=self.params['wait_timeout'])

    def _wait_registered(self, job_id, reg):
        waiter = self._waiter()
        what = self.what(job_id)
        try:
            current = self.client.read_job(job_id, namespace=self.namespace) or {}
            version = current.get('Version')
            self.result['job_version'] = version
            dep, awaiting = waiter.registration(job_id, reg, version, what, promote=self.params['promote'])
            if dep:
                self._report_deployment(waiter, dep, awaiting, what)
        finally:
            self.result['events'] = waiter.progress.events

    def _follow_deployment(self, waiter, deployment_id, what):
        dep, awaiting = waiter.deployment(deployment_id, what, promote=self.params['promote'])
        self._report_deployment(waiter, dep, awaiting, what)

    def _report_deployment(self, waiter, dep, awaiting, what):
        summary = waiter.deployment_summary(dep)
        self.result['deployment'] = summary
        self.result['auto_revert'] = any(g.get('auto_revert') for g in summary['task_groups'].values())
        if awaiting:
            self.module.warn('Deployment %s of %s: canaries are healthy, awaiting promotion '
                             '(nomad deployment promote %s, or promote=true).' % (dep['ID'][:8], what, dep['ID']))

    def _wait_unchanged(self, job_id, job_modify_index):
        latest = self.client.latest_deployment(job_id, namespace=self.namespace)
        if not latest or latest.get('JobSpecModifyIndex') != job_modify_index:
            return
        what = self.what(job_id)
        if latest.get('Status') in ACTIVE_DEPLOYMENT_STATUSES:
            waiter = self._waiter()
            try:
                self._follow_deployment(waiter, latest['ID'], what)
            finally:
                self.result['events'] = waiter.progress.events
        elif latest.get('Status') == 'failed':
            waiter = self._waiter()
            self.result['deployment'] = waiter.deployment_summary(latest)
            try:
                waiter.fail('%s is unchanged, but the deployment %s of its current version %s failed: %s. '
                            'Fix the job and submit it again.' % (what, latest['ID'][:8], latest.get('JobVersion'),
                                                                  latest.get('StatusDescription')),
                            allocs=self.client.get('/v1/deployment/allocations/%s' % latest['ID'], namespace=self.namespace))
            finally:
                self.result['events'] = waiter.progress.events

    # -- absent -------------------------------------------------------------------------------

    def absent(self):
        p = self.params
        if p['name']:
            job_id = p['name']
            self.namespace = self.namespace or 'default'
            self.result.update(job_id=job_id, namespace=self.namespace)
        else:
            job_id = self.load()[0]['ID']
        what = self.what(job_id)
        existing = self.client.read_job(job_id, namespace=self.namespace)
        if existing is None:
            self.result['msg'] = '%s does not exist' % what
            return
        stopped = bool(existing.get('Stop'))
        if stopped and not p['purge']:
            self.result['msg'] = '%s is already stopped' % what
            return
        self.result['changed'] = True
        if self.module._diff:
            self.result['diff'] = dict(
                before='%s: %s (version %s%s)\n' % (what, existing.get('Status'), existing.get('Version'),
                                                    ', stopped' if stopped else ''),
                after='%s: %s\n' % (what, 'purged' if p['purge'] else 'stopped'))
        if self.module.check_mode:
            return
        resp = self.client.deregister_job(job_id, purge=p['purge'], namespace=self.namespace)
        self.result['eval_id'] = (resp or {}).get('EvalID') or None
        if p['wait'] and not stopped:
            waiter = self._waiter()
            try:
                waiter.job_stopped(job_id, what)
            finally:
                self.result['events'] = waiter.progress.events


def main():
    argument_spec = nomad_argument_spec()
    argument_spec.update(
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        name=dict(type='str'),
        content=dict(type='str'),
        src=dict(type='path'),
        job=dict(type='dict'),
        content_format=dict(type='str', choices=['auto', 'hcl2', 'json'], default='auto'),
        variables=dict(type='dict'),
        store_submission=dict(type='bool', default=True),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=300),
        promote=dict(type='bool', default=False),
        enforce_index=dict(type='int'),
        preserve_counts=dict(type='bool', default=False),
        purge=dict(type='bool', default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[('content', 'src', 'job')],
        required_if=[
            ('state', 'present', ('content', 'src', 'job'), True),
            ('state', 'absent', ('name', 'content', 'src', 'job'), True),
        ],
    )
    client = client_from_module(module)
    job = NomadJob(module, client)
    run_action(module, job, job.present if module.params['state'] == 'present' else job.absent)


if __name__ == '__main__':
    main()

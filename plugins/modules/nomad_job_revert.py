#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nomad_job_revert
short_description: Revert a Nomad job to an earlier version and wait until it is healthy
description:
  - Registers an earlier version of a Nomad job again, like C(nomad job revert), and follows the
    evaluation and deployment until they succeed, like M(cloudvirt.platform.nomad_job).
  - Without O(version), the target is the previous stable release, the newest version older than the
    current one that Nomad marked stable (its deployment succeeded); stopped versions are skipped.
  - Nothing changes when the current version already has the specification of the target version
    (compared without the fields Nomad sets on each registration, such as the version, stability, status,
    times, indexes, the submitting token's accessor, the version tag and scaling policy IDs).
  - The revert only happens if the job is still at the version the module read (C(EnforcePriorVersion)),
    so a concurrent deployment is never overwritten.
  - Without O(version), a second run after a successful revert changes nothing when the release it left
    never became stable, since the previous stable version is then the one reverted to. When that release
    had become stable (healthy but wrong), it is now the previous stable version, and a second run goes back
    to it (like C(kubectl rollout undo)). Pin O(version) for a repeatable run, or look first in check mode.
version_added: 0.1.0
author:
  - cloudvirt platform team (@cloudvirt)
extends_documentation_fragment:
  - cloudvirt.platform.nomad
attributes:
  check_mode:
    support: full
    description: Reports the versions it would revert from and to; nothing is reverted.
  diff_mode:
    support: full
    description: The version and the image of each task, current before and target after.
options:
  name:
    description: Job ID.
    type: str
    required: true
    aliases: [id]
  version:
    description:
      - The version to revert to, as C(nomad job history) lists it.
      - Default, the previous stable release (see the description).
    type: int
  wait:
    description:
      - Wait until the evaluation is processed and the deployment of the new version succeeds (service jobs),
        or the new allocations run (other jobs).
      - When the job is already at the target specification, a deployment of its current version that is still
        running is waited for, and one that failed fails the task.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait before failing with what is still pending.
    type: int
    default: 600
notes:
  - Nomad keeps a limited number of versions of a job (C(job_tracked_versions) of the servers, 6 by default);
    older ones cannot be reverted to.
  - The ACL token needs the C(read-job) capability and C(submit-job) (or C(revert-job)) in the namespace.
seealso:
  - module: cloudvirt.platform.nomad_job
  - module: cloudvirt.platform.nomad_job_info
  - name: nomad job revert
    description: The CLI command this module mirrors.
    link: https://developer.hashicorp.com/nomad/commands/job/revert
  - name: Nomad jobs HTTP API
    description: The versions and revert endpoints.
    link: https://developer.hashicorp.com/nomad/api-docs/jobs#revert-to-older-job-version
'''

EXAMPLES = r'''
- name: Roll the backend back to its previous stable release and wait until it is healthy
  cloudvirt.platform.nomad_job_revert:
    name: imagehost-backend
  delegate_to: localhost
  run_once: true

- name: Revert to a given version (nomad job history imagehost-backend lists them)
  cloudvirt.platform.nomad_job_revert:
    name: imagehost-backend
    version: 3
    wait_timeout: 900

- name: Show which version a rollback would go to, and the images (run with --diff)
  cloudvirt.platform.nomad_job_revert:
    name: imagehost-backend
  check_mode: true
  register: plan
'''

RETURN = r'''
job_id:
  description: ID of the job.
  returned: always
  type: str
  sample: imagehost-backend
namespace:
  description: Namespace of the job.
  returned: always
  type: str
  sample: app
from_version:
  description: Version of the job when the module started.
  returned: when the job exists
  type: int
  sample: 5
to_version:
  description: The version reverted to (the target), whose specification the job has afterwards.
  returned: when the job exists and a target was found
  type: int
  sample: 3
job_version:
  description:
    - Version of the job after the revert (Nomad registers the target's specification as a new version).
    - Equal to RV(from_version) when the job was already at the target's specification.
  returned: when the job was reverted or already at the target, not in check mode
  type: int
  sample: 6
eval_id:
  description: Evaluation created by the revert.
  returned: when the job was reverted
  type: str
deployment:
  description: The deployment that was followed (same keys as in M(cloudvirt.platform.nomad_job)).
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
    job_version:
      description: The job version the deployment rolled out.
      type: int
    requires_promotion:
      description: Canaries wait for a promotion.
      type: bool
    task_groups:
      description: Per group desired_total, placed, healthy, unhealthy, desired_canaries, placed_canaries, promoted, auto_revert, auto_promote.
      type: dict
reverted_to_version:
  description: The version Nomad auto-reverted the job to after the deployment of the revert failed.
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
  sample: ["+0.1s evaluation 1f0c2a4e complete: backend canary=1", "+21.3s deployment 9a8b7c6d successful: backend 2/2 healthy"]
'''

import copy
import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cloudvirt.platform.plugins.module_utils.nomad import (
    ACTIVE_DEPLOYMENT_STATUSES, NomadError, WaitFailed, run_action, Waiter, client_from_module, nomad_argument_spec,
    short_id)

# Fields Nomad sets on each registration of a job, not by its specification: two versions
# registered from the same specification differ only there (Nomad's own Job.SpecChanged ignores
# the first eight; the token's accessor differs when someone else submitted it, and a revert
# clears the version tag).
VOLATILE_JOB_FIELDS = ('Version', 'Stable', 'Status', 'StatusDescription', 'SubmitTime', 'CreateIndex', 'ModifyIndex',
                       'JobModifyIndex', 'NomadTokenID', 'VersionTag')
# Scaling policies are stored with their own ID and indexes, which follow the policy table.
VOLATILE_POLICY_FIELDS = ('ID', 'CreateIndex', 'ModifyIndex')


def job_spec(job):
    """The job without the fields that differ between registrations of the same specification."""
    spec = copy.deepcopy(job)
    for field in VOLATILE_JOB_FIELDS:
        spec.pop(field, None)
    for group in spec.get('TaskGroups') or []:
        policies = [group.get('Scaling')]
        for task in group.get('Tasks') or []:
            policies.extend(task.get('ScalingPolicies') or [])
        for policy in policies:
            if isinstance(policy, dict):
                for field in VOLATILE_POLICY_FIELDS:
                    policy.pop(field, None)
    return spec


def task_images(job):
    """``[(group, task, image)]`` of the tasks that run an image (Docker, Podman...)."""
    images = []
    for group in job.get('TaskGroups') or []:
        for task in group.get('Tasks') or []:
            image = (task.get('Config') or {}).get('image')
            if image:
                images.append((group.get('Name'), task.get('Name'), image))
    return images


def describe_version(job):
    """A job version for the diff: its number and the image of each task."""
    lines = ['version = %s' % job.get('Version')]
    for group, task, image in task_images(job):
        lines.append('group "%s" task "%s" image = %s' % (group, task, json.dumps(image)))
    return '\n'.join(lines) + '\n'


def list_versions(versions, current):
    """``5 (current), 4 (stable), 3 (stopped)...`` for messages."""
    texts = []
    for job in versions:
        marks = (['current'] if job.get('Version') == current.get('Version') else []) + (
            ['stable'] if job.get('Stable') else []) + (['stopped'] if job.get('Stop') else [])
        texts.append('%s%s' % (job.get('Version'), ' (%s)' % ', '.join(marks) if marks else ''))
    return ', '.join(texts)


def previous_stable(versions, current):
    """Of ``versions``, the newest one older than ``current`` that is stable and not stopped (a
    stopped version copies the stability of the one it stopped); None if there is none."""
    older = [job for job in versions if job.get('Version', 0) < current.get('Version', 0)
             and job.get('Stable') and not job.get('Stop')]
    return max(older, key=lambda job: job.get('Version', 0)) if older else None


class JobRevert(object):
    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.namespace = self.params['namespace'] or 'default'
        self.result = dict(changed=False, job_id=self.params['name'], namespace=self.namespace)

    def what(self):
        text = "job '%s'" % self.params['name']
        return text if self.namespace == 'default' else text + " in namespace '%s'" % self.namespace

    def _fail(self, msg):
        self.module.fail_json(msg=msg, **self.result)

    def target(self, versions, current):
        requested = self.params['version']
        if requested is None:
            target = previous_stable(versions, current)
            if target is None:
                self._fail('%s has no stable version older than its current version %s to revert to (versions kept by '
                           'Nomad: %s). Nomad marks a version stable once its deployment succeeded; stopped versions do '
                           'not count. Pass version= to revert to a given version.'
                           % (self.what(), current.get('Version'), list_versions(versions, current)))
            return target
        if requested == current.get('Version'):
            return current
        for job in versions:
            if job.get('Version') == requested:
                if job.get('Stop'):
                    self.module.warn('Version %d of %s is a stopped version: reverting to it stops the job.'
                                     % (requested, self.what()))
                return job
        self._fail('%s has no version %d; the versions Nomad keeps are %s.'
                   % (self.what(), requested, list_versions(versions, current)))

    def run(self):
        p = self.params
        # The current job is what Nomad's revert compares with (and EnforcePriorVersion checks);
        # it is normally the newest of the versions, but need not be.
        current = self.client.read_job(p['name'], namespace=self.namespace)
        if current is None:
            self._fail('%s does not exist, so there is nothing to revert. Check name and namespace.' % self.what())
        from_version = current.get('Version')
        self.result['from_version'] = from_version
        versions = self.client.job_versions(p['name'], namespace=self.namespace) or []
        target = self.target(versions, current)
        to_version = target.get('Version')
        self.result['to_version'] = to_version
        if job_spec(current) == job_spec(target):
            self.result['msg'] = '%s is already at the spec of version %s (current version %s).' % (
                self.what(), to_version, from_version)
            if not self.module.check_mode:
                self.result['job_version'] = from_version
                if p['wait']:
                    self.wait_unchanged(current)
            return
        self.result['changed'] = True
        if self.module._diff:
            self.result['diff'] = dict(
                before=describe_version(current), after=describe_version(target),
                before_header='%s (current, version %s)' % (self.what(), from_version),
                after_header='%s (version %s)' % (self.what(), to_version))
        if current.get('Stop') and not target.get('Stop'):
            self.module.warn('%s is stopped: reverting to version %s starts it again.' % (self.what(), to_version))
        if self.module.check_mode:
            self.result['msg'] = 'would revert %s from version %s to version %s.' % (self.what(), from_version, to_version)
            return
        try:
            reg = self.client.revert_job(p['name'], to_version, enforce_prior_version=from_version,
                                         namespace=self.namespace) or {}
        except NomadError as exc:
            body = (exc.body or '').lower()
            if 'enforcing version' in body or 'job modify index' in body:
                self._fail('%s changed while it was being reverted from version %s (Nomad: %s). Run again to revert '
                           'from its new version.' % (self.what(), from_version, (exc.body or '').strip()))
            raise
        self.result['eval_id'] = reg.get('EvalID') or None
        if reg.get('Warnings'):
            self.module.warn('Nomad: %s' % reg['Warnings'].strip())
        job = self.client.read_job(p['name'], namespace=self.namespace) or {}
        self.result['job_version'] = job.get('Version')
        self.result['msg'] = 'reverted %s from version %s to version %s (now version %s).' % (
            self.what(), from_version, to_version, job.get('Version'))
        if p['wait']:
            self.wait(reg, job.get('Version'))

    def _waiter(self):
        return Waiter(self.client, namespace=self.namespace, timeout=self.params['wait_timeout'])

    def _report(self, waiter, dep, awaiting):
        self.result['deployment'] = waiter.deployment_summary(dep)
        if awaiting:
            self.module.warn('Deployment %s of %s: canaries are healthy, awaiting promotion (nomad deployment promote %s).'
                             % (short_id(dep['ID']), self.what(), dep['ID']))

    def wait(self, reg, version):
        waiter = self._waiter()
        try:
            dep, awaiting = waiter.registration(self.params['name'], reg, version, self.what())
            if dep:
                self._report(waiter, dep, awaiting)
        except WaitFailed as exc:
            exc.msg = 'Reverted %s from version %s to version %s (now version %s), but it did not become healthy: %s' % (
                self.what(), self.result['from_version'], self.result['to_version'], version, exc.msg)
            raise
        finally:
            self.result['events'] = waiter.progress.events

    def wait_unchanged(self, current):
        """Already at the target: follow the deployment of the current version if it still runs,
        fail if it failed (the job is at the right version but not healthy)."""
        latest = self.client.latest_deployment(self.params['name'], namespace=self.namespace)
        if not latest or latest.get('JobVersion') != current.get('Version'):
            return
        waiter = self._waiter()
        try:
            if latest.get('Status') in ACTIVE_DEPLOYMENT_STATUSES:
                dep, awaiting = waiter.deployment(latest['ID'], self.what())
                self._report(waiter, dep, awaiting)
            elif latest.get('Status') == 'failed':
                self.result['deployment'] = waiter.deployment_summary(latest)
                allocs = self.client.get('/v1/deployment/allocations/%s' % latest['ID'], namespace=self.namespace)
                waiter.fail('%s is already at the spec of version %s, but the deployment %s of its current version %s '
                            'failed: %s. Revert to another version, or fix the job and submit it again.'
                            % (self.what(), self.result['to_version'], short_id(latest['ID']), current.get('Version'),
                               latest.get('StatusDescription') or 'no reason given'), allocs=allocs)
        finally:
            self.result['events'] = waiter.progress.events


def main():
    argument_spec = nomad_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True, aliases=['id']),
        version=dict(type='int'),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=600),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params['version'] is not None and module.params['version'] < 0:
        module.fail_json(msg='version must be 0 or more, not %d.' % module.params['version'])
    client = client_from_module(module)
    revert = JobRevert(module, client)
    run_action(module, revert, revert.run)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nomad_job_info
short_description: Read Nomad jobs with server-side filtering
description:
  - Reads one job by ID, or lists jobs matching an ID prefix or a Nomad filter expression. The
    filtering happens in Nomad; the module never downloads every job to find one.
  - Can add the job's latest deployment, its allocations and its scaling status.
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
  name:
    description: Job ID; returns the full job (RV(job)) or nothing when it does not exist.
    type: str
  prefix:
    description: List the jobs whose ID starts with this.
    type: str
  filter:
    description:
      - A Nomad filter expression over the job list, e.g. V(Status == "running" and Type == "service").
      - See U(https://developer.hashicorp.com/nomad/api-docs#filtering).
    type: str
  allocations:
    description: With O(name), also return the job's allocations (RV(allocations)).
    type: bool
    default: false
  deployment:
    description: With O(name), also return the job's latest deployment (RV(deployment)).
    type: bool
    default: false
  scale_status:
    description: With O(name), also return per task group counts and the scaling events (RV(scale_status)).
    type: bool
    default: false
notes:
  - Use O(namespace=*) with O(prefix) or O(filter) to list the jobs of every namespace.
seealso:
  - module: cloudvirt.platform.nomad_job
'''

EXAMPLES = r'''
- name: Read the web job and its latest deployment
  cloudvirt.platform.nomad_job_info:
    name: web
    deployment: true
  register: web

- name: Jobs that are not running
  cloudvirt.platform.nomad_job_info:
    filter: 'Status != "running"'
    namespace: "*"
  register: idle

- name: Use the modify index for a guarded update
  cloudvirt.platform.nomad_job:
    src: web.nomad.hcl
    enforce_index: "{{ web.job.JobModifyIndex }}"
'''

RETURN = r'''
job:
  description: The full job as Nomad's API returns it. V(null) when it does not exist.
  returned: when O(name) is set
  type: dict
exists:
  description: Whether the job exists.
  returned: when O(name) is set
  type: bool
jobs:
  description: Matching jobs (Nomad's job list entries); with O(name), the job alone.
  returned: always
  type: list
  elements: dict
deployment:
  description: Latest deployment of the job, V(null) if none.
  returned: when O(name) and O(deployment) are set
  type: dict
allocations:
  description: Allocations of the job (list entries, with task states).
  returned: when O(name) and O(allocations) are set
  type: list
  elements: dict
scale_status:
  description: Per task group desired/placed/running/healthy counts and scaling events.
  returned: when O(name) and O(scale_status) are set
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.parse import quote
from ansible_collections.cloudvirt.platform.plugins.module_utils.nomad import (
    NomadError, client_from_module, nomad_argument_spec)


def main():
    argument_spec = nomad_argument_spec()
    argument_spec.update(
        name=dict(type='str'),
        prefix=dict(type='str'),
        filter=dict(type='str'),
        allocations=dict(type='bool', default=False),
        deployment=dict(type='bool', default=False),
        scale_status=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('name', 'prefix'), ('name', 'filter')])
    client = client_from_module(module)
    p = module.params
    result = dict(changed=False)
    try:
        if p['name']:
            job = client.read_job(p['name'])
            result.update(job=job, exists=job is not None, jobs=[job] if job else [])
            path = quote(p['name'], safe='')
            if p['deployment']:
                result['deployment'] = client.latest_deployment(p['name']) if job else None
            if p['allocations']:
                result['allocations'] = client.job_allocations(p['name']) if job else []
            if p['scale_status']:
                result['scale_status'] = client.get('/v1/job/%s/scale' % path, missing_ok=True) if job else None
        else:
            result['jobs'] = client.list_jobs(prefix=p['prefix'], filter_expr=p['filter'])
    except NomadError as exc:
        module.fail_json(msg=exc.msg, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

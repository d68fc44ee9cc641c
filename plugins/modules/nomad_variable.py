#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nomad_variable
short_description: Write, read or delete a Nomad Variable without leaking its values
description:
  - Manages a Nomad Variable (C(nomad var)), the secrets store tasks read through workload identity
    (C(nomad/jobs/<job>) paths are readable by that job's tasks).
  - Writes only when the items differ; supports check-and-set (O(cas)) against concurrent writers.
  - Item values are never logged and never returned unless O(return_values=true); diff mode shows the keys
    and which of them change, with the values masked.
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
    description: Keys with masked values; changed keys are marked.
options:
  path:
    description:
      - Path of the variable, e.g. V(nomad/jobs/imagehost) (readable by the tasks of job C(imagehost)).
    type: str
    required: true
  state:
    description:
      - V(present) writes O(items) when they differ from what Nomad holds.
      - V(absent) deletes the variable; a missing variable is not an error.
      - V(read) only reads it (keys and indexes; values with O(return_values=true)).
    type: str
    choices: [present, absent, read]
    default: present
  items:
    description:
      - The key/value pairs. Values are strings; numbers and booleans are converted (V(true)/V(false)).
      - Required with O(state=present). Never logged.
      - Like any C(no_log) value, Ansible masks each value wherever it appears in the task's output, so
        short or common values (V(1), V(true)) make messages hard to read; keep non-secret settings elsewhere.
    type: dict
  merge:
    description:
      - V(true) keeps items Nomad holds that are not in O(items); V(false) makes the variable hold exactly O(items).
    type: bool
    default: false
  cas:
    description:
      - Check-and-set. Write or delete only if the variable's C(ModifyIndex) is this value (V(0) means it must not exist).
      - Only consulted when a write or a delete is needed; a conflict fails and returns the current index.
    type: int
  return_values:
    description: Return the items with their values in RV(data). Values given in O(items) are still masked in Ansible's output.
    type: bool
    default: false
seealso:
  - name: Nomad Variables
    description: Concepts, paths and workload access.
    link: https://developer.hashicorp.com/nomad/docs/concepts/variables
'''

EXAMPLES = r'''
- name: Database credentials for the imagehost job's tasks
  cloudvirt.platform.nomad_variable:
    path: nomad/jobs/imagehost
    namespace: apps
    items:
      db_user: imagehost
      db_password: "{{ vault_imagehost_db_password }}"

- name: Create only if absent (first writer wins)
  cloudvirt.platform.nomad_variable:
    path: nomad/jobs/imagehost/bootstrap
    items:
      secret_key: "{{ lookup('ansible.builtin.password', '/dev/null length=40') }}"
    cas: 0
  register: created
  failed_when: created.failed and not created.conflict | default(false)

- name: Read it back (values only when asked)
  cloudvirt.platform.nomad_variable:
    path: nomad/jobs/imagehost
    state: read
    return_values: true
  register: var
  no_log: true

- name: Use a value
  ansible.builtin.set_fact:
    db_user: "{{ var.data.db_user }}"

- name: Remove it
  cloudvirt.platform.nomad_variable:
    path: nomad/jobs/old
    state: absent
'''

RETURN = r'''
path:
  description: Path of the variable.
  returned: always
  type: str
namespace:
  description: Namespace of the variable.
  returned: always
  type: str
exists:
  description: Whether the variable exists after the module ran (would exist, in check mode).
  returned: always
  type: bool
item_keys:
  description: Item keys, sorted (not C(keys), which Jinja resolves to the dict method).
  returned: always
  type: list
  elements: str
  sample: [db_password, db_user]
changed_keys:
  description: Keys added, changed or removed.
  returned: state=present
  type: list
  elements: str
modify_index:
  description: C(ModifyIndex) of the variable (use it as O(cas) in a later write).
  returned: when the variable exists
  type: int
create_index:
  description: C(CreateIndex) of the variable.
  returned: when the variable exists
  type: int
data:
  description:
    - The items with their values (named C(data) because C(result.items) is a method in Jinja).
  returned: when O(return_values=true) and the variable exists
  type: dict
conflict:
  description: A check-and-set conflict stopped the write.
  returned: on a check-and-set failure
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types
from ansible_collections.cloudvirt.platform.plugins.module_utils.nomad import (
    run_action, client_from_module, nomad_argument_spec)

MASK = '********'


def normalize_items(items):
    out = {}
    for key, value in (items or {}).items():
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        elif isinstance(value, (int, float)):
            value = to_text(value)
        elif value is None:
            value = ''
        elif not isinstance(value, string_types):
            raise ValueError('item %r must be a string, a number or a boolean, not a %s' % (key, type(value).__name__))
        out[to_text(key)] = to_text(value)
    return out


def masked_diff(before, after):
    """Before/after texts that show keys only; changed values are marked, never shown."""
    before = before or {}
    after = after or {}
    before_lines = ['%s = %s' % (k, MASK) for k in sorted(before)]
    after_lines = []
    for key in sorted(after):
        if key in before and before[key] != after[key]:
            after_lines.append('%s = %s (changed)' % (key, MASK))
        else:
            after_lines.append('%s = %s' % (key, MASK))
    return '\n'.join(before_lines) + ('\n' if before_lines else ''), '\n'.join(after_lines) + ('\n' if after_lines else '')


def changed_keys(before, after):
    before = before or {}
    after = after or {}
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k) or (k in before) != (k in after))


class NomadVariable(object):
    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.namespace = self.params['namespace'] or 'default'
        self.path = self.params['path'].strip('/')
        self.result = dict(changed=False, path=self.path, namespace=self.namespace)

    def describe(self, var, include_values):
        self.result['exists'] = var is not None
        self.result['item_keys'] = sorted((var or {}).get('Items') or {})
        if var is not None:
            self.result['modify_index'] = var.get('ModifyIndex')
            self.result['create_index'] = var.get('CreateIndex')
            if include_values:
                self.result['data'] = dict(var.get('Items') or {})

    def conflict(self, action, current_index):
        self.result['conflict'] = True
        if current_index is None:
            state = 'it does not exist'
        else:
            state = 'its ModifyIndex is now %s' % current_index
        self.module.fail_json(msg='Check-and-set conflict: did not %s variable %s (namespace %s) because %s, not the expected %s.'
                              % (action, self.path, self.namespace, state, self.params['cas']), **self.result)

    def run(self):
        p = self.params
        current = self.client.read_variable(self.path, namespace=self.namespace)
        current_items = (current or {}).get('Items') or {}
        current_index = (current or {}).get('ModifyIndex')
        if p['state'] == 'read':
            self.describe(current, p['return_values'])
            return
        if p['state'] == 'absent':
            if current is None:
                self.describe(None, False)
                return
            if p['cas'] is not None and p['cas'] != current_index:
                self.describe(current, False)
                self.conflict('delete', current_index)
            self.result['changed'] = True
            if self.module._diff:
                before, dummy = masked_diff(current_items, {})
                self.result['diff'] = dict(before=before, after='', before_header=self.path, after_header=self.path)
            if not self.module.check_mode:
                params = {'cas': p['cas']} if p['cas'] is not None else None
                resp = self.client.request('DELETE', self.client.var_path(self.path), params=params,
                                           namespace=self.namespace, ok=(409,))
                if resp.status == 409:
                    latest = resp.data if isinstance(resp.data, dict) else {}
                    self.describe(current, False)
                    self.conflict('delete', latest.get('ModifyIndex'))
            self.describe(None, False)
            return

        # present
        try:
            desired = normalize_items(p['items'])
        except ValueError as exc:
            self.module.fail_json(msg='items: %s' % exc, **self.result)
        if p['merge']:
            merged = dict(current_items)
            merged.update(desired)
            desired = merged
        if not desired:
            self.module.fail_json(msg='A Nomad Variable needs at least one item; use state=absent to delete it.', **self.result)
        changed = current is None or desired != current_items
        self.result['changed'] = changed
        self.result['changed_keys'] = changed_keys(current_items if current is not None else {}, desired)
        if not changed:
            self.describe(current, p['return_values'])
            return
        if p['cas'] is not None and p['cas'] != (current_index or 0):
            self.describe(current, False)
            self.conflict('write', current_index)
        if self.module._diff:
            before, after = masked_diff(current_items if current is not None else {}, desired)
            self.result['diff'] = dict(before=before, after=after, before_header=self.path, after_header=self.path)
        if self.module.check_mode:
            self.result.update(exists=True, item_keys=sorted(desired))
            if current is not None:
                self.result.update(modify_index=current_index, create_index=current.get('CreateIndex'))
            if p['return_values']:
                self.result['data'] = desired
            return
        body = {'Namespace': self.namespace, 'Path': self.path, 'Items': desired}
        params = {'cas': p['cas']} if p['cas'] is not None else None
        resp = self.client.request('PUT', self.client.var_path(self.path), params=params, body=body,
                                   namespace=self.namespace, ok=(409,))
        if resp.status == 409:
            latest = resp.data if isinstance(resp.data, dict) else {}
            self.describe(current, False)
            self.conflict('write', latest.get('ModifyIndex'))
        self.describe(resp.data if isinstance(resp.data, dict) else None, p['return_values'])


def main():
    argument_spec = nomad_argument_spec()
    argument_spec.update(
        path=dict(type='str', required=True),
        state=dict(type='str', choices=['present', 'absent', 'read'], default='present'),
        items=dict(type='dict', no_log=True),
        merge=dict(type='bool', default=False),
        cas=dict(type='int'),
        return_values=dict(type='bool', default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[('state', 'present', ('items',))],
    )
    client = client_from_module(module)
    variable = NomadVariable(module, client)
    run_action(module, variable, variable.run)


if __name__ == '__main__':
    main()

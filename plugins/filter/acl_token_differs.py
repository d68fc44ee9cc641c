# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a Consul ACL token read from the API differs from the token the roles want, in the
fields they manage; keeps the comparison out of long Jinja conditions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: acl_token_differs
short_description: Whether a Consul ACL token differs from the wanted one
version_added: 0.1.0
description:
  - Compares C(SecretID), C(Description), policy names and node identities (name and datacenter)
    of a token as returned by C(GET /v1/acl/token/:id) with the wanted token.
options:
  _input:
    description: The token read from the API (its JSON).
    type: dict
    required: true
  wanted:
    description: The wanted token (C(SecretID), C(Description), C(Policies), C(NodeIdentities)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Update the token when it differs
  ansible.builtin.uri:
    url: https://127.0.0.1:8501/v1/acl/token/{{ wanted.AccessorID }}
    method: PUT
    body_format: json
    body: "{{ wanted }}"
  when: read.json | cloudvirt.platform.acl_token_differs(wanted)
"""

RETURN = r"""
_value:
  description: V(true) when the token must be updated.
  type: bool
"""


def _policies(token):
    return sorted((p or {}).get('Name', '') for p in (token.get('Policies') or []))


def _identities(token):
    return sorted(((i or {}).get('NodeName', ''), (i or {}).get('Datacenter', '')) for i in (token.get('NodeIdentities') or []))


def acl_token_differs(current, wanted):
    current = current or {}
    return (current.get('SecretID') != wanted.get('SecretID')
            or (current.get('Description') or '') != (wanted.get('Description') or '')
            or _policies(current) != _policies(wanted)
            or _identities(current) != _identities(wanted))


class FilterModule(object):
    def filters(self):
        return {'acl_token_differs': acl_token_differs}

# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options of every Nomad module (plugins/module_utils/nomad.py implements them).
    DOCUMENTATION = r'''
options:
  address:
    description:
      - Address of the Nomad HTTP API, like the Nomad CLI's C(-address).
      - V(http://host:4646), V(https://host:4646) or V(unix:///path/to/socket). A missing scheme means C(http://).
      - If not set, the environment variable E(NOMAD_ADDR) is used, then V(http://127.0.0.1:4646).
    type: str
    default: http://127.0.0.1:4646
  region:
    description:
      - Nomad region to talk to; the agent's own region when not set.
      - If not set, the environment variable E(NOMAD_REGION) is used.
    type: str
  namespace:
    description:
      - Nomad namespace of the objects (jobs, variables). The job specification's namespace, or V(default), when not set.
      - If not set, the environment variable E(NOMAD_NAMESPACE) is used.
    type: str
  token:
    description:
      - ACL token (secret ID) sent as C(X-Nomad-Token). Never logged nor returned.
      - If not set, the environment variable E(NOMAD_TOKEN) is used.
    type: str
  ca_cert:
    description:
      - PEM file of the CA that signed the Nomad agents' HTTPS certificates.
      - If not set, the environment variable E(NOMAD_CACERT) is used, then the system trust store.
    type: path
  client_cert:
    description:
      - PEM client certificate presented to agents that verify HTTPS clients (C(verify_https_client)).
      - If not set, the environment variable E(NOMAD_CLIENT_CERT) is used.
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert).
      - If not set, the environment variable E(NOMAD_CLIENT_KEY) is used.
    type: path
  validate_certs:
    description:
      - Verify the agent's TLS certificate. Only turn this off in a throw-away lab.
      - If not set, V(false) when the environment variable E(NOMAD_SKIP_VERIFY) is true, else V(true).
    type: bool
  timeout:
    description:
      - Seconds to wait for each answer from Nomad before giving up with an error naming the address.
      - This bounds single requests; waiting for deployments or drains is bounded by each module's C(wait_timeout).
    type: int
    default: 10
notes:
  - The modules talk to the Nomad HTTP API from the host they run on, usually the controller
    (with C(delegate_to=localhost)) or a Nomad server.
  - Connection, TLS and ACL errors are reported as one message naming the address and the option to check.
requirements:
  - A reachable Nomad 1.6 or later HTTP API. No Python library beyond ansible-core.
'''

    # The same options for the inventory plugin, which reads them from its configuration file
    # and from the environment.
    INVENTORY = r'''
options:
  address:
    description:
      - Address of the Nomad HTTP API (V(http://), V(https://) or V(unix://)).
    type: str
    default: http://127.0.0.1:4646
    env:
      - name: NOMAD_ADDR
  region:
    description: Nomad region to query; the agent's own region when not set.
    type: str
    env:
      - name: NOMAD_REGION
  token:
    description:
      - ACL token (secret ID) with C(node:read). Prefer the environment variable or a vaulted value.
    type: str
    env:
      - name: NOMAD_TOKEN
  ca_cert:
    description: PEM file of the CA that signed the agents' HTTPS certificates.
    type: path
    env:
      - name: NOMAD_CACERT
  client_cert:
    description: PEM client certificate for agents that verify HTTPS clients.
    type: path
    env:
      - name: NOMAD_CLIENT_CERT
  client_key:
    description: PEM private key of O(client_cert).
    type: path
    env:
      - name: NOMAD_CLIENT_KEY
  validate_certs:
    description:
      - Verify the agent's TLS certificate.
      - If not set, V(false) when the environment variable E(NOMAD_SKIP_VERIFY) is true, else V(true).
    type: bool
  timeout:
    description: Seconds to wait for each answer from Nomad.
    type: int
    default: 10
'''

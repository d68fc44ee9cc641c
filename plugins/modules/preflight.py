#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: preflight
short_description: Prove an application's object storage and message broker accept its credentials
description:
  - Run before a deployment touches Nomad, usually on the controller (C(delegate_to=localhost), C(run_once=true)),
    so that a wrong endpoint, key, password or virtual host fails in seconds with a message naming the endpoint,
    the credential and the option to check, instead of as a crash loop of the application's tasks.
  - "B(s3): lists the bucket (which proves the endpoint answers, the access key exists, the secret key matches and
    the key may read the bucket), creates the bucket if it is missing and O(s3_create_bucket=true), then writes and
    deletes a small object under O(s3_probe_prefix) to prove the key may write (O(s3_check_write))."
  - "B(broker): opens an AMQP 0-9-1 connection (which proves the broker answers, the user and password are accepted
    and the user may use the virtual host), opens a channel and, with O(broker_queue), checks that the queue exists
    (passive declare: nothing is created)."
  - Every enabled check runs even when another fails; all failures come back in one message.
  - The S3 secret key, the session token and the broker password (also when it is part of O(broker_url)) never
    appear in messages or results. The S3 access key ID does, so that the message says which key was refused.
version_added: 0.1.0
author:
  - cloudvirt platform team (@cloudvirt)
attributes:
  check_mode:
    support: full
    description:
      - Only reads. A missing bucket is reported as a change (RV(s3.bucket_created)) and not created; the write
        probe is skipped.
  diff_mode:
    support: full
    description: Whether the bucket is present before and after.
options:
  checks:
    description:
      - Which checks to run. The options of a check are only required when it is enabled.
    type: list
    elements: str
    choices: [s3, broker]
    default: [s3, broker]
  timeout:
    description:
      - Seconds to wait for each S3 request (to connect, then for the answer; each is tried once) and for the
        whole AMQP connection handshake.
    type: int
    default: 10
  s3_endpoint:
    description:
      - URL of the S3 API, V(http://host:9000) or V(https://host). Required by the V(s3) check.
      - If not set, the environment variable E(AWS_ENDPOINT_URL_S3) is used, then E(AWS_ENDPOINT_URL).
    type: str
  s3_region:
    description:
      - Region to sign requests for and to create the bucket in. MinIO's default is V(us-east-1).
      - If not set, the environment variable E(AWS_REGION) is used, then E(AWS_DEFAULT_REGION), then V(us-east-1).
    type: str
    default: us-east-1
  s3_access_key:
    description:
      - Access key ID. Required by the V(s3) check. Shown in messages (it identifies the key; it is not the secret).
      - If not set, the environment variable E(AWS_ACCESS_KEY_ID) is used.
    type: str
  s3_secret_key:
    description:
      - Secret access key. Required by the V(s3) check. Never logged nor returned.
      - If not set, the environment variable E(AWS_SECRET_ACCESS_KEY) is used.
    type: str
  s3_session_token:
    description:
      - Session token of temporary credentials (STS). Never logged nor returned.
      - If not set, the environment variable E(AWS_SESSION_TOKEN) is used.
    type: str
  s3_bucket:
    description:
      - The application's bucket. Required by the V(s3) check.
    type: str
  s3_create_bucket:
    description:
      - Create the bucket when it does not exist (in O(s3_region)). With V(false) a missing bucket is a failure.
    type: bool
    default: true
  s3_check_write:
    description:
      - Write a small object under O(s3_probe_prefix) and delete it again, proving the key may write.
      - Skipped in check mode. When only the delete is refused, the module warns and names the object left behind.
    type: bool
    default: true
  s3_probe_prefix:
    description:
      - Key prefix of the write probe's object (C(<prefix>preflight-<random>)).
    type: str
    default: .preflight/
  s3_addressing_style:
    description:
      - V(path) puts the bucket in the URL path (C(http://host:9000/bucket)), which every S3-compatible store
        understands; V(virtual) in the host name (C(bucket.host)), as AWS prefers; V(auto) lets boto3 choose.
    type: str
    choices: [path, virtual, auto]
    default: path
  s3_ca_cert:
    description:
      - PEM file of the CA that signed the S3 endpoint's certificate; the system trust store when not set.
      - If not set, the environment variable E(AWS_CA_BUNDLE) is used.
    type: path
  s3_validate_certs:
    description: Verify the S3 endpoint's TLS certificate. Only turn this off in a throw-away lab.
    type: bool
    default: true
  broker_url:
    description:
      - "AMQP URL of the broker: V(amqp://user:password@host:5672/vhost) or V(amqps://...) for TLS. The user,
        password, port and vhost are optional. The vhost is the path after the port, percent-decoded: V(/app) is
        vhost C(app); an empty path, V(/), V(//) (Celery's spelling) and V(/%2F) are the default vhost C(/)."
      - Several URLs separated by V(;) (a failover list, as the application accepts) are each checked.
      - The options O(broker_host), O(broker_port), O(broker_vhost), O(broker_user), O(broker_password) and
        O(broker_tls), when set, override the URL's parts; so the URL can stay in the job specification and the
        password come from a vault.
      - Never logged nor returned (it may hold the password); messages show host and port only.
      - One of O(broker_url) and O(broker_host) is required by the V(broker) check.
    type: str
  broker_host:
    description: Host name or address of the broker.
    type: str
  broker_port:
    description: AMQP port; V(5672), or V(5671) with TLS, when neither this nor the URL names one.
    type: int
  broker_vhost:
    description: Virtual host; V(/) when neither this nor the URL names one.
    type: str
  broker_user:
    description:
      - User to log in as. When neither a user nor a password is given anywhere, RabbitMQ's default C(guest) with
        password C(guest) is tried (RabbitMQ accepts it from localhost only).
    type: str
  broker_password:
    description: Password of O(broker_user). Never logged nor returned.
    type: str
  broker_tls:
    description: Connect with TLS (AMQPS). Defaults to V(true) for an V(amqps://) URL, else V(false).
    type: bool
  broker_ca_cert:
    description: PEM file of the CA that signed the broker's certificate; the system trust store when not set.
    type: path
  broker_validate_certs:
    description: Verify the broker's TLS certificate and host name. Only turn this off in a throw-away lab.
    type: bool
    default: true
  broker_queue:
    description:
      - A queue that must exist in the virtual host (declared passively, never created). Not checked when not set.
    type: str
notes:
  - Needs network access from the host the module runs on to both services; that is usually the controller, so
    run it with C(delegate_to=localhost), and the endpoints must be reachable from there.
  - Like any C(no_log) value, a password taken from O(broker_url) is masked wherever it appears in the task's
    output, so a short or common password makes other output hard to read.
requirements:
  - boto3 (for the V(s3) check) and pika 1.x (for the V(broker) check) on the host that runs the module.
seealso:
  - name: RabbitMQ URI specification
    description: How an AMQP URL names the host, port, credentials and virtual host.
    link: https://www.rabbitmq.com/docs/uri-spec
  - name: Bucket naming rules
    description: What a valid S3 bucket name looks like.
    link: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
'''

EXAMPLES = r'''
- name: The storage and the broker accept the application's credentials
  cloudvirt.platform.preflight:
    s3_endpoint: "http://{{ groups['minio'][0] }}:9000"
    s3_access_key: imagehost
    s3_secret_key: "{{ vault_imagehost_s3_secret_key }}"
    s3_bucket: images
    broker_url: "amqp://{{ groups['rabbitmq'][0] }}:5672/imagehost"
    broker_user: imagehost
    broker_password: "{{ vault_imagehost_broker_password }}"
    broker_queue: resize
  delegate_to: localhost
  run_once: true

- name: Only the broker, over TLS, with the whole URL from the vault
  cloudvirt.platform.preflight:
    checks: [broker]
    broker_url: "{{ vault_broker_url }}"   # amqps://app:secret@mq.example.net/app
    broker_ca_cert: /etc/ssl/certs/internal-ca.pem
  delegate_to: localhost
  run_once: true

- name: A bucket that must already exist, without writing to it
  cloudvirt.platform.preflight:
    checks: [s3]
    s3_endpoint: https://s3.eu-west-1.amazonaws.com
    s3_region: eu-west-1
    s3_addressing_style: virtual
    s3_bucket: example-archive
    s3_create_bucket: false
    s3_check_write: false
  environment:
    AWS_ACCESS_KEY_ID: "{{ vault_archive_key_id }}"
    AWS_SECRET_ACCESS_KEY: "{{ vault_archive_secret }}"
  delegate_to: localhost
'''

RETURN = r'''
checks:
  description: The checks that ran.
  returned: always
  type: list
  elements: str
  sample: [s3, broker]
failures:
  description: One message per failed check (the module's C(msg) joins them).
  returned: always
  type: list
  elements: str
  sample: []
s3:
  description: What the V(s3) check found.
  returned: when the s3 check ran
  type: dict
  contains:
    ok:
      description: The check passed.
      type: bool
    endpoint:
      description: The S3 endpoint.
      type: str
      sample: http://10.0.0.5:9000
    region:
      description: The region requests were signed for.
      type: str
    bucket:
      description: The bucket.
      type: str
      sample: images
    bucket_existed:
      description: The bucket existed before the module ran; V(null) when the check failed before knowing.
      type: bool
    bucket_created:
      description: The module created the bucket (would have, in check mode).
      type: bool
    write_checked:
      description: The write probe wrote an object (and so proved the key may write).
      type: bool
broker:
  description: What the V(broker) check found (for the first broker, when O(broker_url) lists several).
  returned: when the broker check ran
  type: dict
  contains:
    ok:
      description: The check passed.
      type: bool
    host:
      description: Broker host.
      type: str
    port:
      description: Broker port.
      type: int
      sample: 5672
    vhost:
      description: Virtual host.
      type: str
      sample: /
    user:
      description: User that logged in (or tried to).
      type: str
    tls:
      description: The connection used TLS.
      type: bool
    server_product:
      description: Product the broker announced.
      type: str
      sample: RabbitMQ
    server_version:
      description: Version the broker announced.
      type: str
      sample: 3.10.8
    queue:
      description: The queue of O(broker_queue) with its C(name), ready C(messages) and C(consumers).
      type: dict
      returned: when O(broker_queue) is set and the queue exists
brokers:
  description: One entry like RV(broker) per broker of O(broker_url).
  returned: when the broker check ran
  type: list
  elements: dict
'''

import warnings

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.cloudvirt.platform.plugins.module_utils import preflight as pf


def bucket_diff(s3):
    """Before/after texts of the bucket's presence (only once the check knows it)."""
    if s3.get('bucket_existed') is None:
        return None
    where = '%s/%s' % (s3['endpoint'], s3['bucket'])

    def text(present):
        return 'bucket: %s\npresent: %s\n' % (s3['bucket'], 'true' if present else 'false')
    return dict(before=text(s3['bucket_existed']), after=text(s3['bucket_existed'] or s3['bucket_created']),
                before_header=where, after_header=where)


def settings_or_problems(module):
    """Checked settings of the enabled checks, or every problem with the arguments."""
    p = module.params
    checks = []
    for name in p['checks']:
        if name not in checks:
            checks.append(name)
    problems = []
    s3 = endpoints = None
    if not checks:
        problems.append('checks is empty: name at least one of s3, broker.')
    if p['timeout'] <= 0:
        problems.append('timeout must be a positive number of seconds, not %s.' % p['timeout'])
    if 's3' in checks:
        if not pf.HAS_BOTO3:
            problems.append('%s (%s)' % (missing_required_lib('boto3'), to_native(pf.BOTO3_IMPORT_ERROR)))
        try:
            s3 = pf.s3_settings(p)
        except ValueError as exc:
            problems.append(to_native(exc))
    if 'broker' in checks:
        if not pf.HAS_PIKA:
            problems.append('%s (%s)' % (missing_required_lib('pika'), to_native(pf.PIKA_IMPORT_ERROR)))
        try:
            endpoints = pf.broker_endpoints(p)
        except ValueError as exc:
            problems.append(to_native(exc))
    for check, option in (('s3', 's3_ca_cert'), ('broker', 'broker_ca_cert')):
        if check in checks and p[option] and not _readable(p[option]):
            problems.append('%s %s is not a readable file.' % (option, p[option]))
    return checks, s3, endpoints, problems


def _readable(path):
    try:
        with open(path, 'rb'):
            return True
    except (IOError, OSError):
        return False


def main():
    module = AnsibleModule(argument_spec=pf.argument_spec(), supports_check_mode=True)
    p = module.params
    secrets = [p['s3_secret_key'], p['s3_session_token'], p['broker_password'], p['broker_url']]
    # A password inside broker_url is a secret too: have Ansible mask it like a no_log option
    # (guest/guest is RabbitMQ's public default, and masking it would hide the user name).
    for url in (p['broker_url'] or '').split(';'):
        try:
            password = pf.parse_broker_url(url.strip()).get('password') if url.strip() else None
        except ValueError:
            password = None
        if password and password != 'guest':
            secrets.append(password)
            module.no_log_values.add(password)

    checks, s3, endpoints, problems = settings_or_problems(module)
    if problems:
        module.fail_json(msg=pf.scrub(' '.join(problems), secrets), failures=[pf.scrub(m, secrets) for m in problems])

    result = dict(changed=False, checks=checks)
    failures = []
    if s3 is not None:
        check = pf.S3Check(s3, None, check_mode=module.check_mode, timeout=p['timeout'])
        with warnings.catch_warnings():
            pf.quiet_insecure_warnings()
            try:
                check.client = pf.s3_client(s3, p['timeout'])
                check.run()
            except pf.PreflightError as exc:
                failures.append(exc.msg)
            except Exception as exc:  # pylint: disable=broad-except  # e.g. boto3 rejecting the endpoint URL
                failures.append(pf.describe_s3_error(exc, s3['endpoint'], s3['access_key'], s3['bucket'],
                                                     timeout=p['timeout'], region=s3['region']))
        for warning in check.warnings:
            module.warn(pf.scrub(warning, secrets))
        result['s3'] = check.result
        result['changed'] = bool(check.result['bucket_created'])
        if module._diff:
            diff = bucket_diff(check.result)
            if diff:
                result['diff'] = diff
    if endpoints is not None:
        brokers = []
        for ep in endpoints:
            try:
                brokers.append(pf.check_broker(ep, p['timeout'], queue=p['broker_queue'], ca_cert=p['broker_ca_cert'],
                                               validate_certs=p['broker_validate_certs']))
            except pf.PreflightError as exc:
                failures.append(exc.msg)
                brokers.append(exc.result)
        result['broker'] = brokers[0]
        result['brokers'] = brokers

    result['failures'] = [pf.scrub(m, secrets) for m in failures]
    if failures:
        module.fail_json(msg=pf.combine_failures(result['failures']), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

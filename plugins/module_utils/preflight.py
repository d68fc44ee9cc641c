# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight checks of an application's object storage (S3 API, through boto3) and message
broker (RabbitMQ over AMQP 0-9-1, through pika), used by the ``preflight`` module.

Everything that does not need a live service lives here and is unit-tested: argument checks,
broker URL parsing and redaction, and the one place where boto3 and pika errors become a message
naming the endpoint, the credential and the option to check. Secrets (the S3 secret key, the
broker password, also when it comes inside a URL) never enter a message.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import logging
import os
import re
import socket
import ssl
import uuid
import warnings

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.six.moves.urllib.parse import unquote, urlsplit

try:
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore import exceptions as boto_exc
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # reported by the module only when the s3 check is enabled
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = exc
    boto_exc = None

try:
    import pika
    from pika import exceptions as pika_exc
    HAS_PIKA = True
    PIKA_IMPORT_ERROR = None
except ImportError as exc:  # reported by the module only when the broker check is enabled
    HAS_PIKA = False
    PIKA_IMPORT_ERROR = exc
    pika_exc = None

CHECKS = ('s3', 'broker')
DEFAULT_TIMEOUT = 10
DEFAULT_REGION = 'us-east-1'
PROBE_PREFIX = '.preflight/'
MASK = '********'
AMQP_PORT = 5672
AMQPS_PORT = 5671
BROKER_SCHEMES = {'amqp': False, 'amqps': True, 'pyamqp': False}  # pyamqp:// is Celery's name for amqp://


def argument_spec():
    """Options of the preflight module (documented in plugins/modules/preflight.py)."""
    return dict(
        checks=dict(type='list', elements='str', choices=list(CHECKS), default=list(CHECKS)),
        timeout=dict(type='int', default=DEFAULT_TIMEOUT),
        s3_endpoint=dict(type='str', fallback=(env_fallback, ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'])),
        s3_region=dict(type='str', fallback=(env_fallback, ['AWS_REGION', 'AWS_DEFAULT_REGION']), default=DEFAULT_REGION),
        # An access key ID names the key, it is no secret: messages show it so the operator knows
        # which key was refused (AWS prints it in CloudTrail and error messages too).
        s3_access_key=dict(type='str', no_log=False, fallback=(env_fallback, ['AWS_ACCESS_KEY_ID'])),
        s3_secret_key=dict(type='str', no_log=True, fallback=(env_fallback, ['AWS_SECRET_ACCESS_KEY'])),
        s3_session_token=dict(type='str', no_log=True, fallback=(env_fallback, ['AWS_SESSION_TOKEN'])),
        s3_bucket=dict(type='str'),
        s3_create_bucket=dict(type='bool', default=True),
        s3_check_write=dict(type='bool', default=True),
        s3_probe_prefix=dict(type='str', default=PROBE_PREFIX),
        s3_addressing_style=dict(type='str', choices=['path', 'virtual', 'auto'], default='path'),
        s3_ca_cert=dict(type='path', fallback=(env_fallback, ['AWS_CA_BUNDLE'])),
        s3_validate_certs=dict(type='bool', default=True),
        broker_url=dict(type='str', no_log=True),
        broker_host=dict(type='str'),
        broker_port=dict(type='int'),
        broker_vhost=dict(type='str'),
        broker_user=dict(type='str'),
        broker_password=dict(type='str', no_log=True),
        broker_tls=dict(type='bool'),
        broker_ca_cert=dict(type='path'),
        broker_validate_certs=dict(type='bool', default=True),
        broker_queue=dict(type='str'),
    )


class PreflightError(Exception):
    """A failed check, already phrased for a human (no secret in it)."""

    def __init__(self, msg):
        super(PreflightError, self).__init__(msg)
        self.msg = msg


def scrub(text, secrets):
    """``text`` with every secret replaced by a mask (longest first, so one secret containing
    another is masked whole). Belt and braces: messages are built without secrets already."""
    text = to_text(text)
    for secret in sorted((to_text(s) for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def combine_failures(failures):
    """One message for every failed check, in the order they ran."""
    if not failures:
        return None
    if len(failures) == 1:
        return failures[0]
    return 'Preflight found %d problems: %s' % (
        len(failures), ' '.join('%d) %s' % (i, m) for i, m in enumerate(failures, 1)))


# ---------------------------------------------------------------------------------------------
# Broker settings: a URL and/or separate options.
# ---------------------------------------------------------------------------------------------

def format_hostport(host, port):
    return '[%s]:%s' % (host, port) if ':' in host else '%s:%s' % (host, port)


def redact_url(url):
    """The URL with its password (if any) masked: ``amqp://app:********@host:5672/vhost``.

    Textual on purpose: a password with an unescaped ``/``, ``?`` or ``#`` makes ``urlsplit``
    put part of it into the path, which a parser-based redaction would then show."""
    url = to_text(url)
    scheme, sep, rest = url.partition('://')
    if not sep:
        scheme, rest = '', url
    at = rest.rfind('@')
    if at < 0:
        return url
    userinfo = rest[:at]
    if ':' not in userinfo:
        return url
    return '%s%s%s:%s@%s' % (scheme, sep, userinfo.split(':', 1)[0], MASK, rest[at + 1:])


def parse_broker_url(url):
    """``amqp[s]://user:password@host:port/vhost`` -> dict (only the parts the URL has).

    The vhost is the path without its first slash, percent-decoded (``%2F`` and Celery's ``//``
    both mean ``/``); an empty path means the default vhost ``/``. Raises ValueError with a
    message that shows the URL with its password masked."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError('broker_url %s is not a valid URL (%s).' % (shown, scrub(to_native(exc), [url])))
    scheme = parts.scheme.lower() if '://' in url else ''
    if scheme not in BROKER_SCHEMES:
        raise ValueError('broker_url %s must start with amqp:// or amqps:// (%s).'
                         % (shown, ('not %s://' % scheme) if scheme else 'it has no scheme'))
    if not parts.hostname:
        raise ValueError('broker_url %s names no host; write amqp://host:5672/vhost.' % shown)
    out = {'tls': BROKER_SCHEMES[scheme], 'host': parts.hostname}
    if port is not None:
        out['port'] = port
    path = parts.path or ''
    if path not in ('', '/'):
        out['vhost'] = unquote(path[1:])
    if parts.username is not None:
        out['user'] = unquote(parts.username)
    if parts.password is not None:
        out['password'] = unquote(parts.password)
    return out


def broker_endpoints(params):
    """Connection settings of each broker to check, from ``broker_url`` (several separated by
    ``;`` for a failover list, like the app's APP_BROKER_URL) with the separate options
    overriding the URL's parts. Raises ValueError naming what to fix."""
    urls = [u.strip() for u in (params.get('broker_url') or '').split(';') if u.strip()]
    if not urls and not params.get('broker_host'):
        raise ValueError("The broker check needs broker_url or broker_host (or leave 'broker' out of checks).")
    overrides = dict((k, params.get('broker_' + k)) for k in ('host', 'port', 'vhost', 'user', 'password', 'tls'))
    endpoints = []
    for url in urls or [None]:
        ep = parse_broker_url(url) if url else {}
        for key, value in overrides.items():
            if value is not None:
                ep[key] = value
        ep.setdefault('tls', False)
        ep.setdefault('port', AMQPS_PORT if ep['tls'] else AMQP_PORT)
        ep.setdefault('vhost', '/')
        if 'user' not in ep and 'password' not in ep:
            # RabbitMQ's (and pika's, Celery's) defaults; guest may only log in from loopback
            ep['user'] = ep['password'] = 'guest'
        elif 'password' not in ep:
            raise ValueError("broker user '%s' has no password: set broker_password (or put it in broker_url)."
                             % ep['user'])
        elif 'user' not in ep:
            raise ValueError('broker_password is set but no user: set broker_user (or put it in broker_url).')
        if not 0 < int(ep['port']) < 65536:
            raise ValueError('broker_port %s is not a TCP port (1-65535).' % ep['port'])
        ep['where'] = format_hostport(ep['host'], ep['port'])
        endpoints.append(ep)
    return endpoints


# ---------------------------------------------------------------------------------------------
# S3 settings.
# ---------------------------------------------------------------------------------------------

_BUCKET_RE = re.compile(r'^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$')
_IPV4_RE = re.compile(r'^\d{1,3}(\.\d{1,3}){3}$')


def bucket_name_problem(name):
    """Why ``name`` is not a valid S3 bucket name (the rules AWS and MinIO share), or None."""
    if not 3 <= len(name) <= 63:
        return 'it must be 3 to 63 characters long'
    if name.lower() != name:
        return 'it must be lowercase'
    if not _BUCKET_RE.match(name):
        return 'it may only hold lowercase letters, digits, dots and hyphens, and start and end with a letter or digit'
    if '..' in name or '.-' in name or '-.' in name:
        return 'dots may not be next to each other or to a hyphen'
    if _IPV4_RE.match(name):
        return 'it may not look like an IP address'
    return None


def s3_settings(params):
    """Checked S3 settings; raises ValueError listing every problem (one sentence each)."""
    problems = []
    endpoint = (params.get('s3_endpoint') or '').strip().rstrip('/')
    if not endpoint:
        problems.append("The s3 check needs s3_endpoint, e.g. http://10.0.0.5:9000 "
                        "(or AWS_ENDPOINT_URL_S3; or leave 's3' out of checks).")
    else:
        try:
            parts = urlsplit(endpoint)
            parts.port  # pylint: disable=pointless-statement  # raises on a bad port
        except ValueError as exc:
            problems.append('s3_endpoint %s is not a valid URL (%s).' % (endpoint, to_native(exc)))
        else:
            if parts.scheme not in ('http', 'https') or not parts.hostname:
                problems.append('s3_endpoint %s must be a URL starting with http:// or https://, e.g. '
                                'http://10.0.0.5:9000.' % endpoint)
            elif parts.username or parts.password:
                problems.append('s3_endpoint must not hold credentials; use s3_access_key and s3_secret_key.')
    bucket = params.get('s3_bucket')
    if not bucket:
        problems.append("The s3 check needs s3_bucket, the application's bucket.")
    else:
        why = bucket_name_problem(bucket)
        if why:
            problems.append("s3_bucket '%s' is not a valid bucket name: %s." % (bucket, why))
    if not params.get('s3_access_key'):
        problems.append('The s3 check needs s3_access_key (or AWS_ACCESS_KEY_ID).')
    if not params.get('s3_secret_key'):
        problems.append('The s3 check needs s3_secret_key (or AWS_SECRET_ACCESS_KEY).')
    prefix = params.get('s3_probe_prefix')
    if prefix is None:
        prefix = PROBE_PREFIX
    if prefix.startswith('/'):
        problems.append("s3_probe_prefix '%s' must not start with a slash (object keys are relative)." % prefix)
    if problems:
        raise ValueError(' '.join(problems))
    return {
        'endpoint': endpoint,
        'region': params.get('s3_region') or DEFAULT_REGION,
        'access_key': params['s3_access_key'],
        'secret_key': params['s3_secret_key'],
        'session_token': params.get('s3_session_token'),
        'bucket': bucket,
        'create_bucket': params.get('s3_create_bucket', True),
        'check_write': params.get('s3_check_write', True),
        'probe_prefix': prefix,
        'addressing_style': params.get('s3_addressing_style') or 'path',
        'ca_cert': params.get('s3_ca_cert'),
        'validate_certs': params.get('s3_validate_certs', True),
    }


# ---------------------------------------------------------------------------------------------
# Error translation: the one place where boto3 and pika failures become messages.
# ---------------------------------------------------------------------------------------------

def _chain(exc):
    """The exception and what it wraps (``error``/``exception``/``reason`` attributes, botocore
    ``kwargs['error']``, pika's ``args[0]``, ``__cause__``), outermost first."""
    out = []
    while exc is not None and len(out) < 8 and not any(exc is seen for seen in out):
        out.append(exc)
        nxt = None
        kwargs = getattr(exc, 'kwargs', None)
        if isinstance(kwargs, dict) and isinstance(kwargs.get('error'), BaseException):
            nxt = kwargs['error']
        for attr in ('exception', 'reason', 'error'):
            if nxt is None and isinstance(getattr(exc, attr, None), BaseException):
                nxt = getattr(exc, attr)
        if nxt is None and getattr(exc, 'args', None) and isinstance(exc.args[0], BaseException):
            nxt = exc.args[0]
        if nxt is None:
            nxt = exc.__cause__ or exc.__context__
        exc = nxt
    return out


_WRAPPED_OS_ERROR = re.compile(r"(\w+Error)\((\d+), '([^']*)'\)")


def _short(exc):
    """The innermost cause in a few words, e.g. ``ConnectionResetError: Connection reset by peer``
    (pika passes causes on as their repr inside the text of its own exceptions)."""
    match = _WRAPPED_OS_ERROR.search(_chain_text(exc))
    if match:
        return '%s: %s' % (match.group(1), match.group(3))
    inner = _chain(exc)[-1]
    return to_native(inner) or type(inner).__name__


def _chain_text(exc):
    return ' | '.join(to_native(e) for e in _chain(exc))


def _network_problem(exc):
    """('refused'|'timeout'|'dns'|'unreachable'|'tls'|'reset'|None, detail) for a transport failure."""
    chain = _chain(exc)
    text = _chain_text(exc)
    lowered = text.lower()
    for e in chain:
        if isinstance(e, ssl.SSLError) or 'SSL' in type(e).__name__:
            if not isinstance(e, socket.timeout):
                return 'tls', _tls_detail(chain, text)
    if 'ssl:' in lowered or 'certificate verify failed' in lowered or 'wrong version number' in lowered:
        return 'tls', _tls_detail(chain, text)
    for e in chain:
        if isinstance(e, socket.gaierror):
            return 'dns', to_native(e)
        err = getattr(e, 'errno', None)
        if isinstance(e, ConnectionRefusedError) or err == errno.ECONNREFUSED:
            return 'refused', to_native(e)
        if err in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return 'unreachable', os.strerror(err).lower()
    if 'connection refused' in lowered:
        return 'refused', text
    if 'name or service not known' in lowered or 'temporary failure in name resolution' in lowered or \
            'nodename nor servname' in lowered or 'no address associated' in lowered or 'getaddrinfo' in lowered:
        return 'dns', text
    if 'network is unreachable' in lowered or 'no route to host' in lowered:
        return 'unreachable', 'network is unreachable' if 'network' in lowered else 'no route to host'
    for e in chain:
        if isinstance(e, socket.timeout) or type(e).__name__ in ('TimeoutError', 'timeout', 'ConnectTimeoutError',
                                                                 'ReadTimeoutError', 'AMQPConnectorStackTimeout'):
            return 'timeout', to_native(e)
    if 'timed out' in lowered or 'timeout' in lowered:
        return 'timeout', text
    for e in chain:
        if isinstance(e, (ConnectionResetError, BrokenPipeError)):
            return 'reset', to_native(e)
    return None, text


def _tls_detail(chain, text):
    for e in chain:
        detail = getattr(e, 'verify_message', None)
        if detail:
            return to_native(detail)
    for e in chain:
        if isinstance(e, ssl.SSLError):
            return to_native(getattr(e, 'reason', None) or e)
    return text


def _tls_message(service, where, detail, option_ca, option_validate, plain_hint):
    lowered = detail.lower()
    if 'certificate verify failed' in lowered or 'certificate_verify_failed' in lowered or \
            'self-signed' in lowered or 'self signed' in lowered or 'unable to get local issuer' in lowered:
        if 'hostname' in lowered or "doesn't match" in lowered or 'ip address mismatch' in lowered:
            return ('TLS handshake with %s at %s failed: the certificate does not name this host (%s). Use a host '
                    'name the certificate covers.' % (service, where, detail))
        return ('TLS handshake with %s at %s failed: the server certificate could not be verified (%s). Check %s '
                'points at the CA that signed it, or set %s=false for a lab.' % (service, where, detail, option_ca,
                                                                                 option_validate))
    if 'wrong version number' in lowered or 'wrong_version_number' in lowered or 'record layer failure' in lowered \
            or 'unknown protocol' in lowered or 'packet length too long' in lowered:
        return 'TLS handshake with %s at %s failed (%s): the service does not speak TLS on this port. %s' % (
            service, where, detail, plain_hint)
    return 'TLS handshake with %s at %s failed: %s. Check %s and %s.' % (
        service, where, detail, option_ca, option_validate)


S3_ACTIONS = {
    'list': 'listing bucket %(bucket)r',
    'create': 'creating bucket %(bucket)r',
    'put': 'writing the probe object %(key)r',
    'delete': 'deleting the probe object %(key)r',
}


def describe_s3_error(exc, endpoint, access_key, bucket, action='list', timeout=DEFAULT_TIMEOUT,
                      region=DEFAULT_REGION, key=None):
    """One actionable message for a failed S3 request. ``action`` is one of S3_ACTIONS."""
    doing = S3_ACTIONS.get(action, action) % {'bucket': bucket, 'key': key}
    check = 'Check s3_endpoint and that the storage service runs.'
    response = getattr(exc, 'response', None)
    if isinstance(response, dict) and 'Error' in response:
        error = response.get('Error') or {}
        code = to_text(error.get('Code') or '')
        text = to_text(error.get('Message') or '').strip().rstrip('.')
        status = (response.get('ResponseMetadata') or {}).get('HTTPStatusCode')
        said = '%s: %s' % (code, text) if text and text != code else code
        if code == 'InvalidAccessKeyId':
            return ("S3 at %s refused access key '%s' (InvalidAccessKeyId): the key does not exist there. "
                    "Check s3_access_key." % (endpoint, access_key))
        if code == 'SignatureDoesNotMatch':
            return ("S3 at %s rejected the request signature (SignatureDoesNotMatch): wrong s3_secret_key for "
                    "access key '%s'." % (endpoint, access_key))
        if code in ('InvalidToken', 'ExpiredToken', 'TokenRefreshRequired'):
            return ("S3 at %s refused the session token of access key '%s' (%s). Check s3_session_token "
                    "(AWS_SESSION_TOKEN): temporary credentials expire." % (endpoint, access_key, said))
        if code == 'RequestTimeTooSkewed':
            return ('S3 at %s rejected the request time (RequestTimeTooSkewed): the clock of this host differs from '
                    "the service's by more than 15 minutes. Fix the clock (NTP)." % endpoint)
        if code in ('AuthorizationHeaderMalformed', 'IllegalLocationConstraintException', 'InvalidRegion') or \
                (code == 'InvalidLocationConstraint') or 'region' in text.lower():
            return ("S3 at %s does not accept region '%s' (%s). Set s3_region to the region the service expects."
                    % (endpoint, region, said))
        if code in ('AccessDenied', 'AllAccessDisabled', 'AccountProblem') or status == 403 and code in ('403', ''):
            grant = {
                'list': 'the key needs s3:ListBucket on it (or the bucket belongs to another account; check s3_bucket)',
                'create': ('the key may not create buckets: create the bucket beforehand or grant s3:CreateBucket'),
                'put': ('the key may not write objects there: grant s3:PutObject on %s/%s*, or set '
                        's3_check_write=false if the application only reads' % (bucket, (key or '')[:(key or '').rfind('/') + 1])),
                'delete': 'the key may not delete objects there: grant s3:DeleteObject',
            }.get(action, 'check the key\'s policy')
            return ("S3 at %s denied access key '%s' access to bucket '%s' (%s) when %s: %s."
                    % (endpoint, access_key, bucket, said, doing, grant))
        if code == 'NoSuchBucket':
            return ("S3 at %s has no bucket '%s' (NoSuchBucket). Create it, or set s3_create_bucket=true."
                    % (endpoint, bucket))
        if code == 'BucketAlreadyExists':
            return ("Bucket '%s' at S3 %s belongs to another account (BucketAlreadyExists): bucket names are shared "
                    "by all accounts. Choose another s3_bucket." % (bucket, endpoint))
        if code == 'InvalidBucketName':
            return "S3 at %s rejected the bucket name '%s' (%s). Check s3_bucket." % (endpoint, bucket, said)
        if code in ('TooManyBuckets',):
            return ("S3 at %s cannot create bucket '%s' (%s): the account has reached its bucket limit."
                    % (endpoint, bucket, said))
        if code in ('PermanentRedirect', 'TemporaryRedirect', 'Redirect') or status in (301, 307):
            return ("S3 at %s redirected %s (%s): the bucket lives in another region or endpoint. Check s3_region "
                    "and s3_endpoint." % (endpoint, doing, said))
        if status == 400 and code in ('400', 'BadRequest', '') and text in ('', 'Bad Request'):
            return ('S3 at %s answered 400 Bad Request without an S3 error when %s: if the service uses TLS, '
                    's3_endpoint must start with https://.' % (endpoint, doing))
        if status in (500, 502, 503, 504) or code in ('SlowDown', 'ServiceUnavailable', 'InternalError',
                                                      'XMinioServerNotInitialized', 'XMinioStorageFull'):
            return ('S3 at %s failed %s (HTTP %s, %s): the storage service is unhealthy or not ready. Check its '
                    'logs and retry.' % (endpoint, doing, status, said))
        if status == 404 or status == 405:
            return ('S3 at %s answered HTTP %s (%s) when %s: this does not look like an S3 API. Check s3_endpoint '
                    '(the API port, not a console; no path).' % (endpoint, status, said, doing))
        return 'S3 at %s refused %s (HTTP %s, %s).' % (endpoint, doing, status, said)

    name = type(exc).__name__
    if boto_exc is not None and isinstance(exc, boto_exc.ParamValidationError):
        return 'Invalid S3 request when %s: %s' % (doing, to_native(exc))
    if boto_exc is not None and isinstance(exc, (boto_exc.NoCredentialsError, boto_exc.PartialCredentialsError)):
        return 'No S3 credentials: set s3_access_key and s3_secret_key (or AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).'
    if name == 'ProxyConnectionError':
        return ('Cannot reach the HTTP proxy for S3 at %s (%s). Check HTTPS_PROXY/HTTP_PROXY, or list the host in '
                'NO_PROXY.' % (endpoint, _chain_text(exc)))
    kind, detail = _network_problem(exc)
    if kind == 'tls':
        return _tls_message('S3', endpoint, detail, 's3_ca_cert', 's3_validate_certs',
                            'Use an http:// s3_endpoint or check the port.')
    if name == 'ReadTimeoutError' or (kind == 'timeout' and 'read timeout' in _chain_text(exc).lower()):
        return ('S3 at %s accepted the connection but did not answer within %ss when %s. Check that s3_endpoint is '
                'the S3 API port and the storage service is healthy (or raise timeout).' % (endpoint, timeout, doing))
    if kind == 'timeout':
        return 'Cannot reach S3 at %s: no answer within %ss (timeout). %s' % (endpoint, timeout, check)
    if kind == 'refused':
        return 'Cannot reach S3 at %s: connection refused. %s' % (endpoint, check)
    if kind == 'dns':
        host = urlsplit(endpoint).hostname
        return "Cannot reach S3 at %s: the host name '%s' does not resolve. Check s3_endpoint." % (endpoint, host)
    if kind == 'unreachable':
        return 'Cannot reach S3 at %s: %s. %s' % (endpoint, detail, check)
    if name == 'ConnectionClosedError' or kind == 'reset':
        return ('S3 at %s closed the connection without an answer when %s: if the service uses TLS, s3_endpoint must '
                "start with https://; otherwise check the storage service's log." % (endpoint, doing))
    if name in ('EndpointConnectionError',):
        return 'Cannot reach S3 at %s: %s. %s' % (endpoint, _chain_text(exc), check)
    return 'S3 check at %s failed when %s: %s: %s' % (endpoint, doing, name, _chain_text(exc))


_REPLY_RE = re.compile(r"\((\d{3})\)\s*['\"](.*)['\"]\s*$", re.S)


def broker_reply(exc):
    """(reply_code, reply_text) of an AMQP close carried by ``exc`` (directly, or as the text
    pika's Probable*Error wraps), else (None, None)."""
    for e in _chain(exc):
        code = getattr(e, 'reply_code', None)
        if code is not None:
            return int(code), to_text(getattr(e, 'reply_text', '') or '')
        for arg in getattr(e, 'args', ()) or ():
            if isinstance(arg, str):
                match = _REPLY_RE.search(arg)
                if match:
                    return int(match.group(1)), match.group(2)
    return None, None


def describe_broker_error(exc, ep, timeout=DEFAULT_TIMEOUT, queue=None):
    """One actionable message for a failed broker check. ``ep`` is one of broker_endpoints()."""
    where = ep['where']
    user = ep.get('user')
    vhost = ep.get('vhost', '/')
    check = 'Check broker_host and broker_port (or broker_url) and that RabbitMQ runs.'
    code, text = broker_reply(exc)
    name = type(exc).__name__
    closed_channel = name.startswith('Channel') or (pika_exc is not None and isinstance(exc, pika_exc.AMQPChannelError))
    if closed_channel and queue is not None:
        if code == 404:
            return ("RabbitMQ at %s has no queue '%s' in virtual host '%s' (NOT_FOUND). Check broker_queue, or let the "
                    "application declare it first." % (where, queue, vhost))
        if code == 403:
            return ("RabbitMQ at %s refused user '%s' access to queue '%s' in virtual host '%s' (%s). Check the "
                    "user's permissions on the virtual host." % (where, user, queue, vhost, text))
        return "RabbitMQ at %s closed the channel when checking queue '%s' (%s %s)." % (where, queue, code, text)
    if code == 403 or name in ('ProbableAuthenticationError', 'AuthenticationError') or \
            (text and 'ACCESS_REFUSED' in text):
        if name == 'AuthenticationError':
            return ('RabbitMQ at %s does not offer the PLAIN login mechanism pika uses (%s). Enable PLAIN '
                    '(auth_mechanisms) on the broker.' % (where, to_native(exc)))
        hint = ''
        if user == 'guest':
            hint = (" (no user was given, so RabbitMQ's default 'guest' was tried; where that user exists it may "
                    "only log in from localhost)")
        return ("RabbitMQ at %s refused user '%s' (ACCESS_REFUSED): wrong broker_user or broker_password%s."
                % (where, user, hint))
    if code == 530 or name == 'ProbableAccessDeniedError' or (text and 'NOT_ALLOWED' in text):
        lowered = (text or '').lower()
        if 'not found' in lowered:
            return ("RabbitMQ at %s has no virtual host '%s' (NOT_ALLOWED). Check broker_vhost (in a URL, the path "
                    "after the port; %%2F or // is the default vhost '/')." % (where, vhost))
        if 'refused for user' in lowered or 'access to vhost' in lowered:
            return ("RabbitMQ at %s refused user '%s' access to virtual host '%s' (NOT_ALLOWED): the user has no "
                    "permissions there. Check broker_vhost, or grant them (rabbitmqctl set_permissions -p '%s' '%s' "
                    "'.*' '.*' '.*')." % (where, user, vhost, vhost, user))
        return ("RabbitMQ at %s refused to open virtual host '%s' for user '%s' (%s). Check broker_vhost and the "
                "user's permissions." % (where, vhost, user, text or to_native(exc)))
    if name == 'IncompatibleProtocolError':
        return ('RabbitMQ at %s dropped the connection at the AMQP protocol header (%s): the port expects TLS (use '
                'amqps:// or broker_tls=true) or does not speak AMQP 0-9-1. Check broker_port (5672 for AMQP, 5671 '
                'for AMQP over TLS).' % (where, _short(exc)))
    if code is not None:
        return 'RabbitMQ at %s closed the connection (%s %s). Check the broker log.' % (where, code, text)
    kind, detail = _network_problem(exc)
    if kind == 'tls':
        return _tls_message('RabbitMQ', where, detail, 'broker_ca_cert', 'broker_validate_certs',
                            'Use amqp:// (broker_tls=false) or the TLS port (usually 5671).')
    chain_text = _chain_text(exc)
    if kind == 'timeout':
        if 'handshake' in chain_text or 'setting up amqp' in chain_text.lower():
            return ('RabbitMQ at %s accepted the connection but did not complete the AMQP handshake within %ss: '
                    'something else listens there, or the port expects TLS. Check broker_port and broker_tls '
                    '(amqps:// is usually port 5671).' % (where, timeout))
        if 'transport' in chain_text:
            return ('RabbitMQ at %s accepted the connection but the TLS handshake did not finish within %ss. Check '
                    'broker_port and broker_tls.' % (where, timeout))
        return 'Cannot reach RabbitMQ at %s: no answer within %ss (timeout). %s' % (where, timeout, check)
    if kind == 'refused':
        return 'Cannot reach RabbitMQ at %s: connection refused. %s' % (where, check)
    if kind == 'dns':
        return "Cannot reach RabbitMQ at %s: the host name '%s' does not resolve. %s" % (where, ep['host'], check)
    if kind == 'unreachable':
        return 'Cannot reach RabbitMQ at %s: %s. %s' % (where, detail, check)
    if name in ('StreamLostError', 'ConnectionClosed') or kind == 'reset' or 'stream' in chain_text.lower():
        return ('RabbitMQ at %s dropped the connection during the handshake (%s). If the port expects TLS, use '
                'amqps:// or broker_tls=true. %s' % (where, chain_text, check))
    return 'Broker check of RabbitMQ at %s failed: %s: %s' % (where, name, chain_text)


# ---------------------------------------------------------------------------------------------
# The checks.
# ---------------------------------------------------------------------------------------------

def s3_client(settings, timeout):
    """A boto3 S3 client for ``settings`` (s3_settings()): one try per request, so ``timeout``
    bounds each request; checksums only where required (older S3-compatible stores)."""
    config = BotoConfig(
        connect_timeout=timeout, read_timeout=timeout,
        retries={'total_max_attempts': 1, 'mode': 'standard'},
        s3={'addressing_style': settings['addressing_style']}, signature_version='s3v4',
        request_checksum_calculation='when_required', response_checksum_validation='when_required',
        user_agent_extra='cloudvirt.platform.preflight')
    verify = None
    if not settings['validate_certs']:
        verify = False
    elif settings['ca_cert']:
        verify = settings['ca_cert']
    session = boto3.session.Session(
        aws_access_key_id=settings['access_key'], aws_secret_access_key=settings['secret_key'],
        aws_session_token=settings['session_token'] or None, region_name=settings['region'])
    return session.client('s3', endpoint_url=settings['endpoint'], verify=verify, config=config)


def _error_code(exc):
    response = getattr(exc, 'response', None)
    if isinstance(response, dict):
        return (response.get('Error') or {}).get('Code')
    return None


class S3Check(object):
    """Bucket present (created if allowed) and writable. ``client`` is a boto3 S3 client (or a
    stand-in in unit tests). ``run()`` returns the result dict and a list of warnings; it raises
    PreflightError on failure, after filling ``self.result`` with what it learnt."""

    def __init__(self, settings, client, check_mode=False, timeout=DEFAULT_TIMEOUT):
        self.s = settings
        self.client = client
        self.check_mode = check_mode
        self.timeout = timeout
        self.warnings = []
        self.result = {
            'ok': False,
            'endpoint': settings['endpoint'],
            'region': settings['region'],
            'bucket': settings['bucket'],
            'bucket_existed': None,
            'bucket_created': False,
            'write_checked': False,
        }

    def fail(self, exc, action, key=None):
        raise PreflightError(describe_s3_error(exc, self.s['endpoint'], self.s['access_key'], self.s['bucket'],
                                               action=action, timeout=self.timeout, region=self.s['region'], key=key))

    def bucket_exists(self):
        try:
            self.client.list_objects_v2(Bucket=self.s['bucket'], MaxKeys=1)
        except Exception as exc:  # pylint: disable=broad-except  # translated, never swallowed
            if _error_code(exc) in ('NoSuchBucket', '404', 'NotFound'):
                return False
            self.fail(exc, 'list')
        return True

    def create(self):
        kwargs = {'Bucket': self.s['bucket']}
        # AWS rejects an explicit us-east-1 constraint; every other region must be named
        if self.s['region'] != 'us-east-1':
            kwargs['CreateBucketConfiguration'] = {'LocationConstraint': self.s['region']}
        try:
            self.client.create_bucket(**kwargs)
        except Exception as exc:  # pylint: disable=broad-except
            if _error_code(exc) == 'BucketAlreadyOwnedByYou':
                return False  # created by someone else with these credentials meanwhile
            self.fail(exc, 'create')
        return True

    def probe_write(self):
        key = '%spreflight-%s' % (self.s['probe_prefix'], uuid.uuid4().hex)
        try:
            self.client.put_object(Bucket=self.s['bucket'], Key=key, Body=b'cloudvirt.platform.preflight write probe\n',
                                   ContentType='text/plain')
        except Exception as exc:  # pylint: disable=broad-except
            self.fail(exc, 'put', key=key)
        self.result['write_checked'] = True
        try:
            self.client.delete_object(Bucket=self.s['bucket'], Key=key)
        except Exception as exc:  # pylint: disable=broad-except
            # Writing works, which is what the check proves; say what was left behind.
            self.warnings.append('%s The probe object %s/%s was left behind; delete it by hand.' % (
                describe_s3_error(exc, self.s['endpoint'], self.s['access_key'], self.s['bucket'], action='delete',
                                  timeout=self.timeout, region=self.s['region'], key=key), self.s['bucket'], key))

    def run(self):
        exists = self.bucket_exists()
        self.result['bucket_existed'] = exists
        if not exists:
            if not self.s['create_bucket']:
                raise PreflightError("S3 at %s has no bucket '%s' and s3_create_bucket is false. Create the bucket, or "
                                     "set s3_create_bucket=true." % (self.s['endpoint'], self.s['bucket']))
            if self.check_mode:
                self.result['bucket_created'] = True
            else:
                self.result['bucket_created'] = self.create()
        if self.s['check_write'] and not self.check_mode:
            self.probe_write()
        self.result['ok'] = True
        return self.result


def _silence_library_logs():
    """pika logs connection failures at ERROR; with no handler configured Python would print
    them on the module's stderr. The module reports them itself."""
    for name in ('pika', 'botocore', 'boto3', 'urllib3'):
        log = logging.getLogger(name)
        log.addHandler(logging.NullHandler())
        log.propagate = False


def broker_parameters(ep, timeout, ca_cert=None, validate_certs=True):
    ssl_options = None
    if ep['tls']:
        context = ssl.create_default_context(cafile=ca_cert) if validate_certs else ssl.SSLContext(
            ssl.PROTOCOL_TLS_CLIENT)
        if not validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        ssl_options = pika.SSLOptions(context, server_hostname=ep['host'])
    return pika.ConnectionParameters(
        host=ep['host'], port=int(ep['port']), virtual_host=ep['vhost'],
        credentials=pika.PlainCredentials(ep['user'], ep['password'], erase_on_connect=True),
        ssl_options=ssl_options, connection_attempts=1, retry_delay=0, socket_timeout=timeout,
        stack_timeout=timeout, blocked_connection_timeout=timeout,
        client_properties={'connection_name': 'cloudvirt.platform.preflight'})


def broker_summary(ep):
    return {'ok': False, 'host': ep['host'], 'port': int(ep['port']), 'vhost': ep['vhost'], 'user': ep['user'],
            'tls': bool(ep['tls']), 'server_product': None, 'server_version': None}


def check_broker(ep, timeout, queue=None, ca_cert=None, validate_certs=True, connect=None):
    """Open a connection and a channel (and passively declare ``queue``); returns the result
    dict, or raises PreflightError with the result so far in ``.result``."""
    _silence_library_logs()
    result = broker_summary(ep)
    connect = connect or pika.BlockingConnection
    conn = None
    try:
        conn = connect(broker_parameters(ep, timeout, ca_cert, validate_certs))
        props = getattr(getattr(conn, '_impl', None), 'server_properties', None) or {}
        result['server_product'] = to_text(props.get('product')) if props.get('product') is not None else None
        result['server_version'] = to_text(props.get('version')) if props.get('version') is not None else None
        channel = conn.channel()
        if queue:
            declared = channel.queue_declare(queue=queue, passive=True)
            result['queue'] = {'name': queue, 'messages': declared.method.message_count,
                               'consumers': declared.method.consumer_count}
        result['ok'] = True
        return result
    except Exception as exc:  # pylint: disable=broad-except  # translated, never swallowed
        error = PreflightError(describe_broker_error(exc, ep, timeout=timeout,
                                                     queue=queue if conn is not None else None))
        error.result = result
        raise error
    finally:
        if conn is not None:
            try:
                conn.close()
            except Exception:  # pylint: disable=broad-except  # already closed by the broker
                pass


def quiet_insecure_warnings():
    """urllib3 warns on stderr for every unverified HTTPS request when s3_validate_certs=false,
    which the user asked for."""
    warnings.filterwarnings('ignore', message='Unverified HTTPS request')

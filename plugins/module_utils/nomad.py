# -*- coding: utf-8 -*-
# Copyright: cloudvirt platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Nomad client of cloudvirt.platform: connection, TLS, ACL token, error translation,
plan rendering and the waiting logic shared by the modules and the inventory plugin.

Plain HTTP over the standard library's ``http.client`` rather than python-nomad: it covers
every endpoint we need (parse with HCL2 variables, plan, register with EnforceIndex and
PreserveCounts and a submission, blocking queries, scale, drain, variables with ``cas``), needs
no third-party library on the host that runs the module, and leaves one place where errors are
translated. Not ``ansible.module_utils.urls`` either: it builds a new TLS context (loading the
system trust store) for every request and imports ``cryptography``, which made a no-change run
slower than community.general's module; here one context and one kept-alive connection serve
all requests of a module run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import re
import socket
import ssl
import time

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.six import string_types
from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode, urlsplit

DEFAULT_ADDRESS = 'http://127.0.0.1:4646'
DEFAULT_TIMEOUT = 10
# Each blocking query asks Nomad to hold the request at most this long; keeps the reaction
# immediate (Nomad answers as soon as the watched object changes) without hammering the API.
BLOCKING_WAIT = 5

TERMINAL_CLIENT_STATUSES = ('complete', 'failed', 'lost')
# Deployment statuses that may still end well (anything else is final).
ACTIVE_DEPLOYMENT_STATUSES = ('running', 'pending', 'paused', 'initializing', 'blocked', 'unblocking')


def _skip_verify_fallback():
    """NOMAD_SKIP_VERIFY=true means validate_certs=false, like the Nomad CLI."""
    value = os.environ.get('NOMAD_SKIP_VERIFY')
    if value is None or value == '':
        return True
    return value.strip().lower() not in ('1', 'true', 'yes', 'on', 't', 'y')


def nomad_argument_spec():
    """Connection options shared by every module (documented in doc_fragments/nomad.py)."""
    return dict(
        address=dict(type='str', fallback=(env_fallback, ['NOMAD_ADDR']), default=DEFAULT_ADDRESS),
        region=dict(type='str', fallback=(env_fallback, ['NOMAD_REGION'])),
        namespace=dict(type='str', fallback=(env_fallback, ['NOMAD_NAMESPACE'])),
        token=dict(type='str', no_log=True, fallback=(env_fallback, ['NOMAD_TOKEN'])),
        ca_cert=dict(type='path', fallback=(env_fallback, ['NOMAD_CACERT'])),
        client_cert=dict(type='path', fallback=(env_fallback, ['NOMAD_CLIENT_CERT'])),
        client_key=dict(type='path', no_log=False, fallback=(env_fallback, ['NOMAD_CLIENT_KEY'])),
        validate_certs=dict(type='bool'),
        timeout=dict(type='int', default=DEFAULT_TIMEOUT),
    )


CONNECTION_OPTIONS = tuple(nomad_argument_spec())


class NomadError(Exception):
    """An error already phrased for a human. ``status`` is the HTTP status when Nomad answered,
    ``body`` its (text) answer, ``data`` extra fields for the module result."""

    def __init__(self, msg, status=None, body=None, data=None):
        super(NomadError, self).__init__(msg)
        self.msg = msg
        self.status = status
        self.body = body
        self.data = data or {}


# ---------------------------------------------------------------------------------------------
# Error translation: the one place where transport and API failures become messages.
# ---------------------------------------------------------------------------------------------

def _root_cause(exc):
    """Unwrap wrappers that carry the OS or TLS error as ``reason`` (urllib's URLError style)."""
    seen = 0
    while seen < 5 and isinstance(getattr(exc, 'reason', None), BaseException):
        seen += 1
        exc = exc.reason
    return exc


def describe_transport_error(exc, address, timeout):
    """Message for a request that got no HTTP answer (refused, timeout, DNS, TLS...)."""
    cause = _root_cause(exc)
    text = to_native(getattr(cause, 'reason', None) or cause)
    check = 'Check address (NOMAD_ADDR) and that the agent is running.'
    if isinstance(cause, ssl.SSLError) or 'CERTIFICATE_VERIFY_FAILED' in text or 'SSL' in type(cause).__name__:
        lowered = text.lower()
        if 'certificate_verify_failed' in lowered or 'certificate verify failed' in lowered or isinstance(
                cause, getattr(ssl, 'SSLCertVerificationError', ())):
            detail = getattr(cause, 'verify_message', None) or text
            return ('TLS handshake with Nomad at %s failed: the server certificate could not be verified (%s). '
                    'Check ca_cert (NOMAD_CACERT) points at the CA that signed the agent certificate, '
                    'or set validate_certs=false for a lab.' % (address, detail))
        if 'wrong_version_number' in lowered or 'wrong version number' in lowered or 'record layer failure' in lowered:
            return ('TLS handshake with Nomad at %s failed (%s): the agent does not speak TLS on this port. '
                    'Use an http:// address or check the port.' % (address, text))
        if 'certificate required' in lowered or 'bad certificate' in lowered or 'unknown ca' in lowered or \
                'certificate_required' in lowered or 'bad_certificate' in lowered or 'unknown_ca' in lowered:
            return ('TLS handshake with Nomad at %s failed: the agent rejected our client certificate (%s). '
                    'Check client_cert and client_key (NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY): the agent '
                    'requires a certificate signed by its CA.' % (address, text))
        if 'hostname' in lowered or "doesn't match" in lowered:
            return ('TLS handshake with Nomad at %s failed: %s. The certificate does not name this host; use an address '
                    'the certificate covers (for Nomad agents: localhost or the node address).' % (address, text))
        return 'TLS handshake with Nomad at %s failed: %s. Check ca_cert, client_cert and client_key.' % (address, text)
    if isinstance(cause, (socket.timeout,)) or type(cause).__name__ in ('TimeoutError', 'timeout') or 'timed out' in text:
        return 'Cannot reach Nomad at %s: no answer within %ss (timeout). %s' % (address, timeout, check)
    if isinstance(cause, socket.gaierror):
        return 'Cannot reach Nomad at %s: the host name does not resolve (%s). %s' % (address, text, check)
    err = getattr(cause, 'errno', None)
    if err == errno.ECONNREFUSED or 'Connection refused' in text:
        return 'Cannot reach Nomad at %s: connection refused. %s' % (address, check)
    if err in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return 'Cannot reach Nomad at %s: %s. %s' % (address, os.strerror(err).lower(), check)
    if err == errno.ENOENT:
        return 'Cannot reach Nomad at %s: the socket does not exist. %s' % (address, check)
    if isinstance(cause, (http_client.RemoteDisconnected, ConnectionResetError, http_client.BadStatusLine)):
        return ('Cannot reach Nomad at %s: the connection was closed without an answer (%s). If the agent uses TLS, '
                'the address must start with https://. %s' % (address, text, check))
    return 'Cannot reach Nomad at %s: %s. %s' % (address, text, check)


def describe_http_error(status, body, address, method, path, token_set=True):
    """Message for a non-2xx answer from Nomad."""
    body = (to_text(body or '').strip() or http_client.responses.get(status, 'error'))
    if len(body) > 2000:
        body = body[:2000] + '...'
    where = '%s %s' % (method, path)
    if status == 400 and 'HTTP request to an HTTPS server' in body:
        return ('Nomad at %s speaks HTTPS on this port (%s). Use an https:// address with ca_cert '
                '(and client_cert/client_key if the agent verifies clients).' % (address, body))
    if status == 403:
        if not token_set:
            return ('Nomad at %s requires an ACL token (403 %s) for %s and none was given. '
                    'Set token or NOMAD_TOKEN.' % (address, body, where))
        return ('Nomad at %s refused the token (403 %s) for %s. Check token (NOMAD_TOKEN): it must exist, '
                'not be expired, and its ACL policy must allow this operation.' % (address, body, where))
    if status == 404:
        return 'Nomad at %s has no such object (404 %s) for %s.' % (address, body, where)
    if status == 400:
        return 'Nomad at %s rejected %s (400): %s' % (address, where, body)
    if status == 409:
        return 'Nomad at %s reported a conflict (409) for %s: %s' % (address, where, body)
    if status == 429:
        return 'Nomad at %s is rate limiting requests (429) for %s: %s' % (address, where, body)
    hint = ''
    if 'No cluster leader' in body or 'no leader' in body.lower():
        hint = ' The Nomad servers have no leader: check that a quorum of servers is up.'
    elif 'Permission denied' in body:
        hint = ' Check token (NOMAD_TOKEN) and its ACL policy.'
    return 'Nomad at %s failed to handle %s (%s): %s.%s' % (address, where, status, body.rstrip('.'), hint)


# ---------------------------------------------------------------------------------------------
# The client.
# ---------------------------------------------------------------------------------------------

def normalize_address(address):
    """``127.0.0.1:4646`` -> ``http://127.0.0.1:4646``; no trailing slash."""
    address = (address or DEFAULT_ADDRESS).strip()
    if '://' not in address:
        address = 'http://' + address
    return address.rstrip('/')


def _no_proxy_match(host, no_proxy):
    host = host.lower().strip('[]')
    for entry in (no_proxy or '').replace(' ', '').lower().split(','):
        if not entry:
            continue
        if entry == '*':
            return True
        entry = entry.split(':')[0].lstrip('.')
        if host == entry or host.endswith('.' + entry):
            return True
    return False


def proxy_for(scheme, host, environ=None):
    """The proxy URL for a request, from the environment like Nomad's own Go client: HTTPS_PROXY
    or HTTP_PROXY (either case), NO_PROXY, and never a proxy for loopback."""
    environ = os.environ if environ is None else environ
    bare = host.lower().strip('[]')
    if bare in ('localhost', '::1') or bare.startswith('127.'):
        return None
    if _no_proxy_match(bare, environ.get('NO_PROXY', environ.get('no_proxy', ''))):
        return None
    name = 'HTTPS_PROXY' if scheme == 'https' else 'HTTP_PROXY'
    proxy = environ.get(name) or environ.get(name.lower())
    if not proxy:
        return None
    return proxy if '://' in proxy else 'http://' + proxy


class _UnixHTTPConnection(http_client.HTTPConnection):
    def __init__(self, path, timeout):
        http_client.HTTPConnection.__init__(self, 'localhost', timeout=timeout)
        self._socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


class HttpTransport(object):
    """One kept-alive HTTP(S) connection to the agent, with a TLS context built once."""

    def __init__(self, address, ca_cert=None, client_cert=None, client_key=None, validate_certs=True):
        self.address = address
        self.unix_socket = address[len('unix://'):] if address.startswith('unix://') else None
        parts = urlsplit(address if not self.unix_socket else 'http://localhost')
        self.scheme = parts.scheme
        self.host = parts.hostname or 'localhost'
        self.port = parts.port or (443 if self.scheme == 'https' else 80)
        self.prefix = parts.path.rstrip('/')
        self.ca_cert = ca_cert
        self.client_cert = client_cert
        self.client_key = client_key
        self.validate_certs = validate_certs
        self.proxy = None if self.unix_socket else proxy_for(self.scheme, self.host)
        self._context = None
        self._conn = None

    def context(self):
        if self._context is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if self.validate_certs:
                # like the Nomad CLI: the CA file replaces the system trust store
                if self.ca_cert:
                    ctx.load_verify_locations(cafile=self.ca_cert)
                else:
                    ctx.load_default_certs()
            else:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if self.client_cert:
                ctx.load_cert_chain(self.client_cert, self.client_key)
            self._context = ctx
        return self._context

    def _connect(self, timeout):
        if self.unix_socket:
            return _UnixHTTPConnection(self.unix_socket, timeout)
        host, port = self.host, self.port
        if self.proxy:
            proxy = urlsplit(self.proxy)
            host, port = proxy.hostname, proxy.port or 80
        if self.scheme == 'https':
            conn = http_client.HTTPSConnection(host, port, timeout=timeout, context=self.context())
        else:
            conn = http_client.HTTPConnection(host, port, timeout=timeout)
        if self.proxy and self.scheme == 'https':
            conn.set_tunnel(self.host, self.port)
        return conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method, target, body, headers, timeout):
        """``(status, headers, body bytes)``; transport errors propagate untranslated."""
        target = self.prefix + target
        if self.proxy and self.scheme == 'http':
            target = '%s://%s:%s%s' % (self.scheme, self.host, self.port, target)
        for attempt in (1, 2):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = self._connect(timeout)
            conn = self._conn
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            # A kept-alive connection the agent closed meanwhile fails at once; retry such a
            # request once on a new connection, unless the agent may have acted on it already.
            try:
                conn.request(method, target, body=body, headers=headers)
            except (ConnectionResetError, BrokenPipeError):
                self.close()
                if reused and attempt == 1:
                    continue
                raise
            except Exception:
                self.close()
                raise
            try:
                resp = conn.getresponse()
                data = resp.read()
            except (http_client.RemoteDisconnected, http_client.BadStatusLine, ConnectionResetError):
                self.close()
                if reused and attempt == 1 and method in ('GET', 'HEAD'):
                    continue
                raise
            except Exception:
                self.close()
                raise
            if resp.will_close:
                self.close()
            return resp.status, resp.headers, data
        raise http_client.HTTPException('no answer')  # not reached: the second attempt returns or raises


class NomadResponse(object):
    def __init__(self, status, data, index, text=None):
        self.status = status
        self.data = data
        self.index = index
        self.text = text


class NomadClient(object):
    """Talks to one Nomad HTTP API address. Every request goes through :meth:`request`, which
    raises :class:`NomadError` with a message that names the address and what to check."""

    def __init__(self, address=None, region=None, namespace=None, token=None, ca_cert=None,
                 client_cert=None, client_key=None, validate_certs=None, timeout=DEFAULT_TIMEOUT,
                 transport=None):
        self.address = normalize_address(address)
        self.region = region or None
        self.namespace = namespace or None
        self.token = token or None
        self.ca_cert = ca_cert or None
        self.client_cert = client_cert or None
        self.client_key = client_key or None
        self.validate_certs = _skip_verify_fallback() if validate_certs is None else bool(validate_certs)
        self.timeout = timeout or DEFAULT_TIMEOUT
        for option, path in (('ca_cert', self.ca_cert), ('client_cert', self.client_cert), ('client_key', self.client_key)):
            if path and not os.path.isfile(path):
                raise NomadError('%s file %s does not exist (talking to Nomad at %s).' % (option, path, self.address))
        if bool(self.client_cert) != bool(self.client_key) and self.client_key:
            raise NomadError('client_key is set but client_cert is not; set both (talking to Nomad at %s).' % self.address)
        if not re.match(r'^(https?://[^/]+|unix://.+)', self.address):
            raise NomadError('address %r is not an http://, https:// or unix:// address.' % self.address)
        self.transport = transport
        if transport is None:
            self.transport = HttpTransport(self.address, self.ca_cert, self.client_cert, self.client_key, self.validate_certs)
            if self.transport.scheme == 'https':
                try:
                    self.transport.context()
                except (ssl.SSLError, OSError, ValueError) as exc:
                    raise NomadError('Cannot use the TLS files for Nomad at %s (ca_cert %s, client_cert %s, client_key %s): %s.'
                                     % (self.address, self.ca_cert or '-', self.client_cert or '-', self.client_key or '-',
                                        to_native(exc)))

    @classmethod
    def from_params(cls, params, transport=None):
        return cls(address=params.get('address'), region=params.get('region'), namespace=params.get('namespace'),
                   token=params.get('token'), ca_cert=params.get('ca_cert'), client_cert=params.get('client_cert'),
                   client_key=params.get('client_key'), validate_certs=params.get('validate_certs'),
                   timeout=params.get('timeout'), transport=transport)

    # -- transport ------------------------------------------------------------------------------

    def target(self, path, params=None, namespace=None):
        """Path and query string of a request (namespace and region added)."""
        query = []
        ns = self.namespace if namespace is None else namespace
        if ns:
            query.append(('namespace', ns))
        if self.region:
            query.append(('region', self.region))
        for key, value in sorted((params or {}).items()):
            if value is None:
                continue
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            query.append((key, to_text(value)))
        return path + ('?' + urlencode(query) if query else '')

    def request(self, method, path, params=None, body=None, ok=(), namespace=None, timeout=None, raw=False):
        """One API call. Statuses listed in ``ok`` (e.g. 404, 409) come back as a response
        instead of raising. ``raw`` returns the body as text instead of decoding JSON."""
        headers = {'Accept': 'application/json'}
        if self.token:
            headers['X-Nomad-Token'] = self.token
        data = None
        if body is not None:
            data = json.dumps(body).encode('utf-8')
            headers['Content-Type'] = 'application/json'
        target = self.target(path, params, namespace)
        timeout = timeout or self.timeout
        try:
            status, resp_headers, raw_body = self.transport.request(method, target, data, headers, timeout)
        except (socket.error, ssl.SSLError, http_client.HTTPException, ValueError) as exc:
            raise NomadError(describe_transport_error(exc, self.address, timeout))
        text = to_text(raw_body or b'', errors='surrogate_or_replace')
        index = resp_headers.get('X-Nomad-Index') if resp_headers is not None else None
        if status >= 300 and status not in ok:
            raise NomadError(describe_http_error(status, text, self.address, method, path, bool(self.token)),
                             status=status, body=text)
        if raw:
            return NomadResponse(status, text, _int_or_none(index), text)
        payload = None
        if text:
            try:
                payload = json.loads(text)
            except ValueError:
                payload = text
        return NomadResponse(status, payload, _int_or_none(index), text)

    def get(self, path, params=None, missing_ok=False, namespace=None, timeout=None):
        resp = self.request('GET', path, params=params, ok=(404,) if missing_ok else (), namespace=namespace, timeout=timeout)
        if resp.status == 404:
            return None
        return resp.data

    def blocking_get(self, path, index, wait, params=None, namespace=None):
        """GET that Nomad holds until the watched index moves past ``index`` or ``wait`` passes."""
        query = dict(params or {})
        wait = max(1, int(wait))
        if index:
            query['index'] = index
            query['wait'] = '%ds' % wait
        # Nomad adds up to wait/16 of jitter to a blocking query.
        resp = self.request('GET', path, params=query, namespace=namespace, timeout=self.timeout + wait * 1.1 + 1)
        return resp.data, resp.index or index

    # -- jobs -----------------------------------------------------------------------------------

    def parse_job(self, hcl, variables=None):
        body = {'JobHCL': hcl, 'Canonicalize': False}
        if variables:
            body['Variables'] = variables
        resp = self.request('POST', '/v1/jobs/parse', body=body, ok=(400,))
        if resp.status == 400:
            raise NomadError(resp.text or 'parse error', status=400, body=resp.text)
        return resp.data

    def read_job(self, job_id, namespace=None):
        return self.get('/v1/job/%s' % quote(job_id, safe=''), missing_ok=True, namespace=namespace)

    def plan_job(self, job, namespace=None):
        return self.request('POST', '/v1/job/%s/plan' % quote(job['ID'], safe=''),
                            body={'Job': job, 'Diff': True}, namespace=namespace).data

    def register_job(self, job, namespace=None, enforce_index=None, preserve_counts=False, submission=None):
        body = {'Job': job}
        if enforce_index is not None:
            body['EnforceIndex'] = True
            body['JobModifyIndex'] = enforce_index
        if preserve_counts:
            body['PreserveCounts'] = True
        if submission:
            body['Submission'] = submission
        return self.request('POST', '/v1/job/%s' % quote(job['ID'], safe=''), body=body, namespace=namespace).data

    def job_versions(self, job_id, namespace=None):
        """Every version Nomad keeps of a job, newest first; None when the job does not exist."""
        data = self.get('/v1/job/%s/versions' % quote(job_id, safe=''), missing_ok=True, namespace=namespace)
        if data is None:
            return None
        return sorted(data.get('Versions') or [], key=lambda v: v.get('Version') or 0, reverse=True)

    def revert_job(self, job_id, version, enforce_prior_version=None, namespace=None):
        """Register ``version`` of the job again (``nomad job revert``); with
        ``enforce_prior_version``, only if the job is still at that version."""
        body = {'JobID': job_id, 'JobVersion': version}
        if enforce_prior_version is not None:
            body['EnforcePriorVersion'] = enforce_prior_version
        return self.request('POST', '/v1/job/%s/revert' % quote(job_id, safe=''), body=body, namespace=namespace).data

    def deregister_job(self, job_id, purge=False, namespace=None):
        return self.request('DELETE', '/v1/job/%s' % quote(job_id, safe=''),
                            params={'purge': True} if purge else None, namespace=namespace).data

    def job_allocations(self, job_id, namespace=None):
        return self.get('/v1/job/%s/allocations' % quote(job_id, safe=''), params={'all': True}, namespace=namespace) or []

    def latest_deployment(self, job_id, namespace=None):
        return self.get('/v1/job/%s/deployment' % quote(job_id, safe=''), missing_ok=True, namespace=namespace)

    def scale_job(self, job_id, group, count, message=None, namespace=None):
        body = {'Count': count, 'Target': {'Job': job_id, 'Group': group}}
        if message:
            body['Message'] = message
        return self.request('POST', '/v1/job/%s/scale' % quote(job_id, safe=''), body=body, namespace=namespace).data

    def list_jobs(self, prefix=None, filter_expr=None, namespace=None):
        return self.get('/v1/jobs', params={'prefix': prefix, 'filter': filter_expr}, namespace=namespace) or []

    # -- nodes ----------------------------------------------------------------------------------

    def list_nodes(self, prefix=None, filter_expr=None, os_attrs=False, resources=False):
        params = {'prefix': prefix, 'filter': filter_expr}
        if os_attrs:
            params['os'] = True
        if resources:
            params['resources'] = True
        return self.get('/v1/nodes', params=params, namespace='') or []

    def read_node(self, node_id):
        return self.get('/v1/node/%s' % quote(node_id, safe=''), missing_ok=True, namespace='')

    def node_allocations(self, node_id):
        return self.get('/v1/node/%s/allocations' % quote(node_id, safe=''), namespace='') or []

    def find_node(self, ref):
        """A node by full ID, name, or unique ID prefix (in this order); None if nothing matches."""
        if re.match(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', ref):
            node = self.read_node(ref)
            if node is not None:
                return node
        by_name = self.list_nodes(filter_expr='Name == %s' % bexpr_quote(ref))
        if len(by_name) > 1:
            raise NomadError('%d Nomad nodes are named %r (IDs %s); use the node ID instead.'
                             % (len(by_name), ref, ', '.join(n['ID'] for n in by_name)))
        if by_name:
            return self.read_node(by_name[0]['ID'])
        if re.match(r'^[0-9a-f-]+$', ref) and len(ref.replace('-', '')) % 2 == 0:
            by_prefix = self.list_nodes(prefix=ref)
            if len(by_prefix) > 1:
                raise NomadError('Node ID prefix %r is ambiguous: it matches %s.'
                                 % (ref, ', '.join('%s (%s)' % (n['ID'], n['Name']) for n in by_prefix)))
            if by_prefix:
                return self.read_node(by_prefix[0]['ID'])
        return None

    # -- variables ------------------------------------------------------------------------------

    @staticmethod
    def var_path(path):
        return '/v1/var/%s' % quote(path.strip('/'), safe='/')

    def read_variable(self, path, namespace=None):
        return self.get(self.var_path(path), missing_ok=True, namespace=namespace)


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def bexpr_quote(value):
    """A string literal for a Nomad filter expression."""
    return '"%s"' % to_text(value).replace('\\', '\\\\').replace('"', '\\"')


def run_action(module, action, step):
    """Run one step of a module's action object and exit with its ``result``. A NomadError fails
    the module with the translated message plus whatever the action gathered before it."""
    try:
        step()
    except NomadError as exc:
        result = dict(action.result)
        result.update(exc.data)
        result.pop('msg', None)
        module.fail_json(msg=exc.msg, **result)
    module.exit_json(**action.result)


def client_from_module(module):
    """A client for an AnsibleModule built with :func:`nomad_argument_spec`; fails the module
    with the translated message when the options are unusable."""
    try:
        return NomadClient.from_params(module.params)
    except NomadError as exc:
        module.fail_json(msg=exc.msg)


# ---------------------------------------------------------------------------------------------
# Pure helpers: durations, counts, HCL values, plan rendering.
# ---------------------------------------------------------------------------------------------

_DURATION_RE = re.compile(r'(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)')
_DURATION_UNITS = {'ns': 1e-9, 'us': 1e-6, u'\u00b5s': 1e-6, 'ms': 1e-3, 's': 1.0, 'm': 60.0, 'h': 3600.0}


def parse_duration(value):
    """Seconds from a Go-style duration (``90s``, ``1h30m``) or a plain number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = to_text(value).strip()
    if re.match(r'^-?\d+(\.\d+)?$', text):
        return float(text)
    negative = text.startswith('-')
    if negative:
        text = text[1:]
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError('invalid duration %r (use e.g. 90s, 10m, 1h30m or a number of seconds)' % value)
    return -total if negative else total


def format_duration(seconds):
    """``5400`` -> ``1h30m``; ``1.5`` -> ``1.5s``."""
    if seconds < 0:
        return '-' + format_duration(-seconds)
    if seconds < 60:
        if seconds == int(seconds):
            return '%ds' % seconds
        return ('%.3f' % seconds).rstrip('0').rstrip('.') + 's'
    out = ''
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        out += '%dh' % hours
    if minutes:
        out += '%dm' % minutes
    if secs:
        out += '%ds' % secs
    return out


def resolve_count(spec, current):
    """Target count from ``3`` (absolute) or ``+2``/``-1`` (relative to ``current``).
    Returns ``(target, relative)``; raises ValueError on bad input."""
    text = to_text(spec).strip()
    match = re.match(r'^([+-]?)(\d+)$', text)
    if not match:
        raise ValueError('count must be a number (3) or a relative change (+2, -1), not %r' % (spec,))
    sign, number = match.group(1), int(match.group(2))
    if sign == '+':
        target, relative = current + number, True
    elif sign == '-':
        target, relative = current - number, True
    else:
        target, relative = number, False
    if target < 0:
        raise ValueError('count %s from the current %d would be %d; a count cannot be negative' % (text, current, target))
    return target, relative


def explain_parse_error(body, source, source_name='content'):
    """A parse error from ``/v1/jobs/parse`` with the file name the user knows and the offending
    line(s) quoted. Returns ``(message, line)``."""
    text = to_text(body or '').strip()
    text = re.sub(r'^Failed to parse job:\s*', '', text)
    match = re.search(r'input\.hcl:(\d+),(\d+)(?:-(?:(\d+),)?(\d+))?', text)
    line = None
    excerpt = ''
    if match:
        line = int(match.group(1))
        column = int(match.group(2))
        text = text.replace('input.hcl:', '%s:' % source_name)
        lines = (source or '').splitlines()
        first = max(1, line - 1)
        last = min(len(lines), line + 1)
        width = len(str(last))
        shown = []
        for number in range(first, last + 1):
            marker = '>' if number == line else ' '
            shown.append('%s %*d | %s' % (marker, width, number, lines[number - 1]))
            if number == line:
                shown.append('  %s | %s^' % (' ' * width, ' ' * (column - 1)))
        if shown:
            excerpt = '\n' + '\n'.join(shown)
        where = '%s line %d, column %d' % (source_name, line, column)
    else:
        where = source_name
    return 'Nomad could not parse the job at %s: %s%s' % (where, text, excerpt), line


def hcl_value(value):
    """An HCL2 expression for a Python value, for a job's variables file. Strings escape
    ``${`` and ``%{`` so a value is never evaluated as a template."""
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, string_types):
        text = json.dumps(to_text(value), ensure_ascii=False)
        return text.replace('${', '$${').replace('%{', '%%{')
    if isinstance(value, dict):
        return '{' + ', '.join('%s = %s' % (json.dumps(to_text(k)), hcl_value(v)) for k, v in value.items()) + '}'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(hcl_value(v) for v in value) + ']'
    raise TypeError('cannot express %r as an HCL value' % (value,))


def hcl_variables_file(variables):
    """The content of a variables file (``name = value`` lines) from a dict."""
    lines = []
    for name in sorted(variables or {}):
        if not re.match(r'^[A-Za-z_][A-Za-z0-9_-]*$', name):
            raise ValueError('invalid HCL variable name %r' % name)
        lines.append('%s = %s' % (name, hcl_value(variables[name])))
    return '\n'.join(lines) + ('\n' if lines else '')


_DURATION_FIELD_RE = re.compile(r'(Delay|Interval|Deadline|Timeout|TTL|Time|Duration|Grace|Window|Wait)$')


def _render_value(name, value):
    if value is None:
        return 'null'
    text = to_text(value)
    if _DURATION_FIELD_RE.search(name or '') and re.match(r'^\d{7,}$', text):
        return '"%s"' % format_duration(int(text) / 1e9)
    if re.match(r'^-?\d+(\.\d+)?$', text) or text in ('true', 'false'):
        return text
    return json.dumps(text, ensure_ascii=False)


def _has_changes(item):
    return item and item.get('Type', 'None') != 'None'


class PlanDiffRenderer(object):
    """Turns a Nomad plan diff into before/after texts (HCL-like, changed fields only) and a list
    of one-line change descriptions."""

    def __init__(self, diff):
        self.diff = diff or {}
        self.before = []
        self.after = []
        self.changes = []

    def render(self):
        diff = self.diff
        if not _has_changes(diff):
            return '', '', []
        kind = diff.get('Type')
        self._block(0, 'job %s' % json.dumps(diff.get('ID')), kind, diff, 'job %s' % diff.get('ID'))
        before = '\n'.join(self.before) + ('\n' if self.before else '')
        after = '\n'.join(self.after) + ('\n' if self.after else '')
        return before, after, self.changes

    def _emit(self, side, indent, line):
        target = self.before if side == 'before' else self.after
        target.append('  ' * indent + line)

    def _open(self, indent, header, kind):
        if kind != 'Added':
            self._emit('before', indent, header + ' {')
        if kind != 'Deleted':
            self._emit('after', indent, header + ' {')

    def _close(self, indent, kind):
        if kind != 'Added':
            self._emit('before', indent, '}')
        if kind != 'Deleted':
            self._emit('after', indent, '}')

    def _block(self, indent, header, kind, item, where):
        self._open(indent, header, kind)
        self._body(indent + 1, item, where)
        for group in item.get('TaskGroups') or []:
            if _has_changes(group):
                name = group.get('Name')
                self._block(indent + 1, 'group %s' % json.dumps(name), group['Type'], group, 'group %s' % name)
                if group['Type'] in ('Added', 'Deleted'):
                    self.changes.append('group %s %s' % (name, group['Type'].lower()))
        for task in item.get('Tasks') or []:
            if _has_changes(task):
                name = task.get('Name')
                sub_where = '%s task %s' % (where, name)
                self._block(indent + 1, 'task %s' % json.dumps(name), task['Type'], task, sub_where)
                if task['Type'] in ('Added', 'Deleted'):
                    self.changes.append('%s %s' % (sub_where, task['Type'].lower()))
                for note in task.get('Annotations') or []:
                    self.changes.append('%s: %s' % (sub_where, note))
        self._close(indent, kind)

    def _body(self, indent, item, where):
        for field in item.get('Fields') or []:
            if not _has_changes(field):
                continue
            name = field.get('Name')
            old, new = field.get('Old'), field.get('New')
            if field['Type'] != 'Added':
                self._emit('before', indent, '%s = %s' % (name, _render_value(name, old)))
            if field['Type'] != 'Deleted':
                self._emit('after', indent, '%s = %s' % (name, _render_value(name, new)))
            if field['Type'] == 'Added':
                change = '%s: %s added (%s)' % (where, name, _render_value(name, new))
            elif field['Type'] == 'Deleted':
                change = '%s: %s removed (was %s)' % (where, name, _render_value(name, old))
            else:
                change = '%s: %s %s -> %s' % (where, name, _render_value(name, old), _render_value(name, new))
            notes = field.get('Annotations') or []
            self.changes.append(change + (' [%s]' % ', '.join(notes) if notes else ''))
        for obj in item.get('Objects') or []:
            if not _has_changes(obj):
                continue
            name = obj.get('Name')
            self._open(indent, name, obj['Type'])
            self._body(indent + 1, obj, '%s %s' % (where, name))
            self._close(indent, obj['Type'])


def render_plan_diff(diff):
    """``(before, after, changes)`` for a Nomad plan diff."""
    return PlanDiffRenderer(diff).render()


def summarize_updates(annotations):
    """``{group: {place: 1, destructive_update: 2}}`` without the zeros."""
    out = {}
    for group, updates in sorted(((annotations or {}).get('DesiredTGUpdates') or {}).items()):
        nonzero = {}
        for key, value in sorted((updates or {}).items()):
            if value:
                nonzero[re.sub(r'(?<!^)(?=[A-Z])', '_', key).lower()] = value
        out[group] = nonzero
    return out


def describe_placement_failures(failed_tg_allocs):
    """One sentence per task group that Nomad could not place, from AllocationMetric."""
    parts = []
    for group, metric in sorted((failed_tg_allocs or {}).items()):
        metric = metric or {}
        bits = []
        evaluated = metric.get('NodesEvaluated', 0)
        if not metric.get('NodesAvailable') and not evaluated:
            bits.append('no nodes are available in the job\'s datacenters/node pool')
        else:
            bits.append('%d node(s) evaluated' % evaluated)
        for constraint, count in sorted((metric.get('ConstraintFiltered') or {}).items()):
            bits.append('constraint %s filtered %d node(s)' % (constraint, count))
        for klass, count in sorted((metric.get('ClassFiltered') or {}).items()):
            bits.append('class %s filtered %d node(s)' % (klass, count))
        for dimension, count in sorted((metric.get('DimensionExhausted') or {}).items()):
            bits.append('%s exhausted on %d node(s)' % (dimension, count))
        for quota in metric.get('QuotaExhausted') or []:
            bits.append('quota exhausted: %s' % quota)
        coalesced = metric.get('CoalescedFailures') or 0
        parts.append('group %s: %d allocation(s) cannot be placed (%s)' % (group, coalesced + 1, '; '.join(bits)))
    return parts


# ---------------------------------------------------------------------------------------------
# Waiting: evaluations, deployments, allocations, drains. The module cannot print while it runs,
# so progress is recorded in an event log returned with the result.
# ---------------------------------------------------------------------------------------------

class Progress(object):
    """Timestamped, de-duplicated progress messages."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self.start = clock()
        self.events = []
        self._last = None

    def add(self, message):
        if message == self._last:
            return
        self._last = message
        self.events.append('+%.1fs %s' % (self._clock() - self.start, message))


class WaitFailed(NomadError):
    """A wait ended badly (failed deployment, placement failure, timeout)."""


def short_id(value):
    return (value or '')[:8]


def _event_text(event):
    text = event.get('DisplayMessage') or event.get('Message') or ''
    kind = event.get('Type') or 'event'
    if text and text != kind:
        return '%s: %s' % (kind, text)
    return kind


def allocation_problem(alloc, events_per_task=4):
    """A dict describing what went wrong in an allocation (tasks, last events), or None."""
    tasks = []
    for name, state in sorted((alloc.get('TaskStates') or {}).items()):
        state = state or {}
        events = state.get('Events') or []
        failed = bool(state.get('Failed')) or any(e.get('FailsTask') for e in events)
        restarts = state.get('Restarts') or 0
        if failed or restarts or state.get('State') != 'running':
            tasks.append({
                'name': name,
                'state': state.get('State'),
                'failed': failed,
                'restarts': restarts,
                'events': [_event_text(e) for e in events[-events_per_task:]],
            })
    unhealthy = (alloc.get('DeploymentStatus') or {}).get('Healthy') is False
    if alloc.get('ClientStatus') == 'failed' or unhealthy or any(t['failed'] for t in tasks):
        return {
            'id': alloc.get('ID'),
            'name': alloc.get('Name'),
            'group': alloc.get('TaskGroup'),
            'node': alloc.get('NodeName') or short_id(alloc.get('NodeID')),
            'client_status': alloc.get('ClientStatus'),
            'client_description': alloc.get('ClientDescription'),
            'job_version': alloc.get('JobVersion'),
            'healthy': (alloc.get('DeploymentStatus') or {}).get('Healthy'),
            'tasks': [t for t in tasks if t['failed'] or t['restarts'] or t['state'] == 'dead'] or tasks,
        }
    return None


def describe_problem(problem):
    text = 'allocation %s (%s, node %s, %s)' % (
        short_id(problem['id']), problem.get('name') or problem.get('group'), problem.get('node'), problem.get('client_status'))
    task_texts = []
    for task in problem.get('tasks') or []:
        t = "task '%s' %s" % (task['name'], 'failed' if task['failed'] else (task.get('state') or 'pending'))
        if task.get('restarts'):
            t += ' after %d restart(s)' % task['restarts']
        if task.get('events'):
            t += '; last events: ' + ' | '.join(task['events'])
        if task.get('stderr'):
            t += '; stderr: ' + ' / '.join(task['stderr'])
        task_texts.append(t)
    if task_texts:
        text += ': ' + '; '.join(task_texts)
    elif problem.get('client_description'):
        text += ': ' + problem['client_description']
    return text


class Waiter(object):
    """Follows what Nomad does after a write until it is done, failed or out of time."""

    def __init__(self, client, namespace=None, timeout=300, progress=None, clock=time.time, sleep=time.sleep):
        self.client = client
        self.namespace = namespace
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.deadline = clock() + timeout
        self.progress = progress or Progress(clock)

    def remaining(self):
        return self.deadline - self.clock()

    def _wait_slice(self):
        return max(1, min(BLOCKING_WAIT, int(self.remaining()) + 1))

    def _timed_out(self):
        return self.remaining() <= 0

    def _get(self, path, index, params=None):
        return self.client.blocking_get(path, index, self._wait_slice(), params=params, namespace=self.namespace)

    def stderr_tail(self, alloc_id, task, lines=3):
        """Last lines of a task's stderr, best effort (the client may be gone or ACLs may deny)."""
        try:
            resp = self.client.request('GET', '/v1/client/fs/logs/%s' % quote(alloc_id, safe=''),
                                       params={'task': task, 'type': 'stderr', 'origin': 'end', 'offset': 2048,
                                               'plain': True}, namespace=self.namespace, raw=True, ok=(400, 403, 404, 500))
        except NomadError:
            return []
        if resp.status != 200 or not resp.text:
            return []
        return [line for line in resp.text.splitlines() if line.strip()][-lines:]

    def problems(self, allocs, limit=3):
        found = []
        for alloc in sorted(allocs, key=lambda a: a.get('CreateIndex', 0), reverse=True):
            problem = allocation_problem(alloc)
            if problem:
                for task in problem['tasks']:
                    if task['failed'] or task['restarts']:
                        task['stderr'] = self.stderr_tail(problem['id'], task['name'])
                found.append(problem)
            if len(found) >= limit:
                break
        return found

    def fail(self, message, allocs=None, **data):
        problems = self.problems(allocs or [])
        if problems:
            message += ' ' + ' '.join('Failing %s.' % describe_problem(p) for p in problems)
        data.setdefault('failed_allocations', problems)
        data['events'] = self.progress.events
        raise WaitFailed(message, data=data)

    # -- evaluations ----------------------------------------------------------------------------

    def evaluation(self, eval_id, what):
        """Wait until the evaluation is processed; fail on placement failures."""
        index = None
        while True:
            evaluation, index = self._get('/v1/evaluation/%s' % quote(eval_id, safe=''), index)
            status = evaluation.get('Status')
            if status not in ('pending',):
                break
            if self._timed_out():
                self.fail('Timed out after %ss waiting for evaluation %s of %s to be processed (status %s).'
                          % (self.timeout, short_id(eval_id), what, status))
        updates = summarize_updates(evaluation.get('PlanAnnotations'))
        summary = ', '.join('%s %s' % (g, ' '.join('%s=%s' % kv for kv in sorted(u.items())) or 'no changes')
                            for g, u in sorted(updates.items()))
        self.progress.add('evaluation %s %s%s' % (short_id(eval_id), status, (': ' + summary) if summary else ''))
        if status in ('failed', 'canceled', 'cancelled'):
            self.fail('Evaluation %s of %s %s: %s' % (
                short_id(eval_id), what, status, evaluation.get('StatusDescription') or 'no reason given'))
        failures = describe_placement_failures(evaluation.get('FailedTGAllocs'))
        if failures:
            self.fail('Nomad cannot place %s: %s.' % (what, '; '.join(failures)), placement_failures=failures)
        return evaluation

    # -- deployments ----------------------------------------------------------------------------

    @staticmethod
    def deployment_summary(dep):
        if not dep:
            return None
        groups = {}
        for name, g in sorted((dep.get('TaskGroups') or {}).items()):
            groups[name] = {
                'desired_total': g.get('DesiredTotal'),
                'placed': g.get('PlacedAllocs'),
                'healthy': g.get('HealthyAllocs'),
                'unhealthy': g.get('UnhealthyAllocs'),
                'desired_canaries': g.get('DesiredCanaries'),
                'placed_canaries': len(g.get('PlacedCanaries') or []),
                'promoted': g.get('Promoted'),
                'auto_promote': g.get('AutoPromote'),
                'auto_revert': g.get('AutoRevert'),
            }
        return {
            'id': dep.get('ID'),
            'status': dep.get('Status'),
            'status_description': dep.get('StatusDescription'),
            'job_version': dep.get('JobVersion'),
            'task_groups': groups,
            'requires_promotion': needs_promotion(dep),
        }

    @staticmethod
    def _deployment_line(dep):
        bits = []
        for name, g in sorted((dep.get('TaskGroups') or {}).items()):
            text = '%s %d/%d healthy' % (name, g.get('HealthyAllocs') or 0, g.get('DesiredTotal') or 0)
            if g.get('UnhealthyAllocs'):
                text += ', %d unhealthy' % g['UnhealthyAllocs']
            if g.get('DesiredCanaries'):
                text += ', canaries %d/%d placed%s' % (len(g.get('PlacedCanaries') or []), g['DesiredCanaries'],
                                                       ' (promoted)' if g.get('Promoted') else '')
            bits.append(text)
        return 'deployment %s %s: %s' % (short_id(dep.get('ID')), dep.get('Status'), '; '.join(bits) or 'no groups')

    def deployment(self, deployment_id, what, promote=False):
        """Wait until the deployment succeeds. Returns ``(deployment, awaiting_promotion)``."""
        index = None
        promoted = False
        while True:
            dep, index = self._get('/v1/deployment/%s' % quote(deployment_id, safe=''), index)
            status = dep.get('Status')
            self.progress.add(self._deployment_line(dep))
            if status == 'successful':
                return dep, False
            if status in ('failed', 'cancelled'):
                self._deployment_failed(dep, what)
            if status == 'running' and awaits_manual_promotion(dep) and canaries_healthy(dep):
                if promote and not promoted:
                    self.client.request('POST', '/v1/deployment/promote/%s' % quote(deployment_id, safe=''),
                                        body={'DeploymentID': deployment_id, 'All': True}, namespace=self.namespace)
                    self.progress.add('deployment %s: canaries healthy, promoted' % short_id(deployment_id))
                    promoted = True
                elif not promote:
                    self.progress.add('deployment %s: canaries healthy, awaiting promotion' % short_id(deployment_id))
                    return dep, True
            if self._timed_out():
                allocs = self.client.get('/v1/deployment/allocations/%s' % quote(deployment_id, safe=''),
                                         namespace=self.namespace) or []
                pending = ['%s (%s)' % (a.get('Name'), a.get('ClientStatus')) for a in allocs
                           if not (a.get('DeploymentStatus') or {}).get('Healthy')]
                self.fail('Timed out after %ss waiting for deployment %s of %s: %s.%s'
                          % (self.timeout, short_id(deployment_id), what, self._deployment_line(dep),
                             (' Not yet healthy: %s.' % ', '.join(pending)) if pending else ''),
                          allocs=allocs, deployment=self.deployment_summary(dep))

    def _deployment_failed(self, dep, what):
        description = dep.get('StatusDescription') or 'no reason given'
        allocs = self.client.get('/v1/deployment/allocations/%s' % quote(dep['ID'], safe=''), namespace=self.namespace) or []
        reverted = None
        match = re.search(r'rolling back to job version (\d+)', description)
        if match:
            reverted = int(match.group(1))
            message = ('Deployment %s of %s (version %s) failed and Nomad auto-reverted the job to version %d: %s.'
                       % (short_id(dep['ID']), what, dep.get('JobVersion'), reverted, description))
        else:
            message = 'Deployment %s of %s (version %s) %s: %s.' % (short_id(dep['ID']), what, dep.get('JobVersion'),
                                                                    dep.get('Status'), description)
        self.fail(message, allocs=allocs, deployment=self.deployment_summary(dep), reverted=reverted is not None,
                  reverted_to_version=reverted)

    # -- allocations ----------------------------------------------------------------------------

    def allocations(self, job_id, what, accept, min_create_index=0, fail_index=None):
        """Wait on a job's allocations (created at/after ``min_create_index``) until ``accept``
        (allocs) -> (done, progress_text) says done. Fails when an allocation created at/after
        ``fail_index`` failed for good (Nomad will not reschedule it)."""
        index = None
        while True:
            allocs, index = self._get('/v1/job/%s/allocations' % quote(job_id, safe=''), index, params={'all': True})
            allocs = [a for a in (allocs or []) if (a.get('CreateIndex') or 0) >= min_create_index]
            done, text = accept(allocs)
            self.progress.add(text)
            if done:
                return allocs
            dead = [a for a in allocs if a.get('ClientStatus') == 'failed' and a.get('DesiredStatus') == 'run'
                    and not a.get('NextAllocation') and not a.get('FollowupEvalID')
                    and fail_index is not None and (a.get('CreateIndex') or 0) >= fail_index]
            if dead:
                self.fail('%s failed: %d allocation(s) failed and Nomad will not reschedule them.'
                          % (what[0].upper() + what[1:], len(dead)), allocs=dead)
            if self._timed_out():
                self.fail('Timed out after %ss waiting for %s: %s.' % (self.timeout, what, text),
                          allocs=[a for a in allocs if a.get('ClientStatus') not in ('running', 'complete')])

    def job_stopped(self, job_id, what):
        def accept(allocs):
            live = [a for a in allocs if a.get('ClientStatus') not in TERMINAL_CLIENT_STATUSES]
            return not live, '%s: %d allocation(s) still running' % (what, len(live)) if live else '%s: all allocations stopped' % what
        return self.allocations(job_id, what, accept)

    def placed(self, job_id, what, min_index):
        """Wait until the allocations a registration created (at/after ``min_index``) left
        ``pending`` (jobs without deployments: batch, system, sysbatch); fail if one failed for good."""
        def accept(allocs):
            live = [a for a in allocs if a.get('DesiredStatus') == 'run']
            pending = [a for a in live if a.get('ClientStatus') == 'pending']
            running = [a for a in live if a.get('ClientStatus') == 'running']
            complete = [a for a in live if a.get('ClientStatus') == 'complete']
            failed = [a for a in live if a.get('ClientStatus') == 'failed']
            text = 'allocations: %d running, %d complete, %d pending, %d failed' % (
                len(running), len(complete), len(pending), len(failed))
            return not pending and not failed, text
        return self.allocations(job_id, what, accept, min_create_index=min_index, fail_index=min_index)

    # -- registrations --------------------------------------------------------------------------

    def registration(self, job_id, reg, version, what, promote=False):
        """Follow what a registration (or a revert, which is one) started, from Nomad's answer
        ``reg``: its evaluation, then the deployment of job ``version`` (service jobs) or the new
        allocations (other jobs). Returns ``(deployment, awaiting_promotion)``, ``(None, False)``
        when there is no deployment."""
        if not reg.get('EvalID'):
            self.progress.add('no evaluation (periodic or parameterized job): nothing runs until launched')
            return None, False
        evaluation = self.evaluation(reg['EvalID'], what)
        deployment_id = evaluation.get('DeploymentID')
        if not deployment_id:
            # whatever its status: following a deployment that already failed reports why
            latest = self.client.latest_deployment(job_id, namespace=self.namespace)
            if latest and latest.get('JobVersion') == version:
                deployment_id = latest['ID']
        if deployment_id:
            return self.deployment(deployment_id, what, promote=promote)
        self.placed(job_id, what, reg.get('EvalCreateIndex') or 0)
        return None, False


def needs_promotion(dep):
    for g in (dep.get('TaskGroups') or {}).values():
        if g.get('DesiredCanaries') and not g.get('Promoted'):
            return True
    return False


def awaits_manual_promotion(dep):
    """Canaries that only a promotion lets the deployment go on; not those of groups with
    ``auto_promote``, which Nomad promotes itself a moment after they are healthy."""
    for g in (dep.get('TaskGroups') or {}).values():
        if g.get('DesiredCanaries') and not g.get('Promoted') and not g.get('AutoPromote'):
            return True
    return False


def canaries_healthy(dep):
    for g in (dep.get('TaskGroups') or {}).values():
        if g.get('DesiredCanaries') and not g.get('Promoted'):
            if (g.get('HealthyAllocs') or 0) < g['DesiredCanaries']:
                return False
    return True

"""preflight's pure logic: argument handling, broker URL parsing and redaction, the translation of
boto3 and pika errors into messages (exceptions built the way the libraries raise them against a
real MinIO and RabbitMQ), and the S3 check's decisions with a stand-in client."""
import errno
import socket
import ssl

import pytest
import urllib3.exceptions
from botocore import exceptions as boto_exc
from pika import exceptions as pika_exc
from pika.adapters.utils import connection_workflow as pika_workflow

from ansible_collections.cloudvirt.platform.plugins.module_utils import preflight as pf
from ansible_collections.cloudvirt.platform.plugins.modules import preflight as module

ENDPOINT = "http://10.0.0.5:9000"
KEY = "AKIAEXAMPLE"
SECRET = "wJalrXUtnFEMI-s3cr3t"
PASSWORD = "p@ss/w:rd#1"


# -- broker URLs ------------------------------------------------------------------------------

@pytest.mark.parametrize("url,expected", [
    ("amqp://mq.example.net", {"tls": False, "host": "mq.example.net"}),
    ("amqp://mq:5673/", {"tls": False, "host": "mq", "port": 5673}),
    ("amqp://mq:5672//", {"tls": False, "host": "mq", "port": 5672, "vhost": "/"}),
    ("amqp://mq/%2F", {"tls": False, "host": "mq", "vhost": "/"}),
    ("amqp://mq/imagehost", {"tls": False, "host": "mq", "vhost": "imagehost"}),
    ("amqps://app:s%40cret@mq/a%2Fb", {"tls": True, "host": "mq", "vhost": "a/b", "user": "app", "password": "s@cret"}),
    ("pyamqp://app@[::1]:5672/x", {"tls": False, "host": "::1", "port": 5672, "vhost": "x", "user": "app"}),
])
def test_parse_broker_url(url, expected):
    assert pf.parse_broker_url(url) == expected


@pytest.mark.parametrize("url,problem", [
    ("http://app:hunter2@mq:5672/", "must start with amqp:// or amqps:// (not http://)"),
    ("mq.example.net:5672", "must start with amqp:// or amqps:// (it has no scheme)"),
    ("amqp://app:hunter2@:5672/x", "names no host"),
    ("amqp://app:hunter2@mq:99999/x", "is not a valid URL"),
])
def test_bad_broker_urls_are_named_without_their_password(url, problem):
    with pytest.raises(ValueError) as err:
        pf.parse_broker_url(url)
    assert problem in str(err.value)
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize("url,shown", [
    ("amqp://app:secret@mq:5672/v", "amqp://app:********@mq:5672/v"),
    ("amqp://app@mq/v", "amqp://app@mq/v"),
    ("amqp://mq/v", "amqp://mq/v"),
    # unescaped / and # would put part of the password into the path for urlsplit
    ("amqp://app:se/cr#et@mq:5672/v", "amqp://app:********@mq:5672/v"),
])
def test_redact_url(url, shown):
    assert pf.redact_url(url) == shown


def broker_params(**kw):
    params = dict(broker_url=None, broker_host=None, broker_port=None, broker_vhost=None, broker_user=None,
                  broker_password=None, broker_tls=None)
    params.update(kw)
    return params


def test_broker_options_override_the_url_parts():
    [ep] = pf.broker_endpoints(broker_params(broker_url="amqp://mq:5672/imagehost", broker_user="app",
                                             broker_password=PASSWORD))
    assert ep == {"tls": False, "host": "mq", "port": 5672, "vhost": "imagehost", "user": "app",
                  "password": PASSWORD, "where": "mq:5672"}
    [ep] = pf.broker_endpoints(broker_params(broker_url="amqp://u:p@mq/v", broker_vhost="other", broker_port=5999))
    assert (ep["vhost"], ep["port"], ep["user"], ep["password"]) == ("other", 5999, "u", "p")


def test_broker_defaults():
    [ep] = pf.broker_endpoints(broker_params(broker_host="mq"))
    assert (ep["port"], ep["vhost"], ep["user"], ep["password"], ep["tls"]) == (5672, "/", "guest", "guest", False)
    [ep] = pf.broker_endpoints(broker_params(broker_url="amqps://a:b@mq"))
    assert (ep["port"], ep["tls"]) == (5671, True)
    [ep] = pf.broker_endpoints(broker_params(broker_host="::1", broker_port=5673))
    assert ep["where"] == "[::1]:5673"


def test_failover_urls_are_each_checked():
    eps = pf.broker_endpoints(broker_params(broker_url="amqp://mq1:5672/v; amqp://mq2:5672/v",
                                            broker_user="app", broker_password=PASSWORD))
    assert [e["where"] for e in eps] == ["mq1:5672", "mq2:5672"]
    assert all(e["user"] == "app" and e["password"] == PASSWORD for e in eps)


@pytest.mark.parametrize("params,problem", [
    (broker_params(), "needs broker_url or broker_host"),
    (broker_params(broker_host="mq", broker_user="app"), "user 'app' has no password: set broker_password"),
    (broker_params(broker_host="mq", broker_password=PASSWORD), "no user: set broker_user"),
    (broker_params(broker_host="mq", broker_port=0), "not a TCP port"),
])
def test_broker_argument_problems(params, problem):
    with pytest.raises(ValueError, match=problem):
        pf.broker_endpoints(params)


# -- S3 arguments -----------------------------------------------------------------------------

def s3_params(**kw):
    params = dict(s3_endpoint=ENDPOINT, s3_region="us-east-1", s3_access_key=KEY, s3_secret_key=SECRET,
                  s3_session_token=None, s3_bucket="images", s3_create_bucket=True, s3_check_write=True,
                  s3_probe_prefix=".preflight/", s3_addressing_style="path", s3_ca_cert=None, s3_validate_certs=True)
    params.update(kw)
    return params


def test_s3_settings():
    s = pf.s3_settings(s3_params(s3_endpoint=ENDPOINT + "/"))
    assert s["endpoint"] == ENDPOINT and s["bucket"] == "images" and s["region"] == "us-east-1"


def test_s3_settings_lists_every_problem_at_once():
    with pytest.raises(ValueError) as err:
        pf.s3_settings(s3_params(s3_endpoint=None, s3_bucket=None, s3_access_key=None, s3_secret_key=None))
    msg = str(err.value)
    for option in ("s3_endpoint", "s3_bucket", "s3_access_key (or AWS_ACCESS_KEY_ID)",
                   "s3_secret_key (or AWS_SECRET_ACCESS_KEY)"):
        assert option in msg


@pytest.mark.parametrize("endpoint,problem", [
    ("10.0.0.5:9000", "must be a URL starting with http:// or https://"),
    ("ftp://10.0.0.5", "must be a URL starting with http:// or https://"),
    ("http://key:secret@10.0.0.5:9000", "must not hold credentials"),
    ("http://10.0.0.5:99999", "is not a valid URL"),
])
def test_s3_endpoint_problems(endpoint, problem):
    with pytest.raises(ValueError, match=problem):
        pf.s3_settings(s3_params(s3_endpoint=endpoint))


@pytest.mark.parametrize("name,problem", [
    ("images", None),
    ("my.bucket-1", None),
    ("ab", "3 to 63"),
    ("x" * 64, "3 to 63"),
    ("Images", "lowercase"),
    ("under_score", "lowercase letters, digits, dots and hyphens"),
    ("-images", "start and end"),
    ("a..b", "next to each other"),
    ("10.0.0.5", "IP address"),
])
def test_bucket_names(name, problem):
    found = pf.bucket_name_problem(name)
    assert (found is None) if problem is None else (problem in found)


# -- S3 error translation ---------------------------------------------------------------------

def client_error(code, message="", status=403, operation="ListObjectsV2"):
    return boto_exc.ClientError({"Error": {"Code": code, "Message": message},
                                 "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def s3_msg(exc, action="list", **kw):
    return pf.describe_s3_error(exc, ENDPOINT, KEY, "images", action=action, timeout=7, **kw)


def test_s3_wrong_access_key():
    assert s3_msg(client_error("InvalidAccessKeyId", "The Access Key Id you provided does not exist in our records.")) == (
        "S3 at http://10.0.0.5:9000 refused access key 'AKIAEXAMPLE' (InvalidAccessKeyId): the key does not exist "
        "there. Check s3_access_key.")


def test_s3_wrong_secret_key():
    msg = s3_msg(client_error("SignatureDoesNotMatch", "The request signature we calculated does not match"))
    assert msg == ("S3 at http://10.0.0.5:9000 rejected the request signature (SignatureDoesNotMatch): wrong "
                   "s3_secret_key for access key 'AKIAEXAMPLE'.")


@pytest.mark.parametrize("action,hint", [
    ("list", "when listing bucket 'images': the key needs s3:ListBucket on it"),
    ("create", "when creating bucket 'images': the key may not create buckets: create the bucket beforehand"),
    ("put", "when writing the probe object '.preflight/p1': the key may not write objects there: grant s3:PutObject "
            "on images/.preflight/*"),
])
def test_s3_access_denied_says_which_permission(action, hint):
    msg = s3_msg(client_error("AccessDenied", "Access Denied."), action=action, key=".preflight/p1")
    assert msg.startswith("S3 at http://10.0.0.5:9000 denied access key 'AKIAEXAMPLE' access to bucket 'images' "
                          "(AccessDenied: Access Denied) ")
    assert hint in msg


@pytest.mark.parametrize("exc,expected", [
    (client_error("AuthorizationHeaderMalformed", "The authorization header is malformed; the region 'us-east-1' is "
                  "wrong; expecting 'eu-west-1'.", status=400), "does not accept region 'us-east-1'"),
    (client_error("RequestTimeTooSkewed", "The difference is too large", status=403), "Fix the clock (NTP)"),
    (client_error("BucketAlreadyExists", "taken", status=409, operation="CreateBucket"),
     "belongs to another account (BucketAlreadyExists)"),
    (client_error("400", "Bad Request", status=400), "if the service uses TLS, s3_endpoint must start with https://"),
    (client_error("XMinioServerNotInitialized", "Server not initialized", status=503), "unhealthy or not ready"),
    (client_error("404", "Not Found", status=404), "does not look like an S3 API"),
    (client_error("ExpiredToken", "The provided token has expired.", status=400), "Check s3_session_token"),
])
def test_s3_service_errors(exc, expected):
    assert expected in s3_msg(exc)


def test_s3_transport_errors():
    refused = urllib3.exceptions.NewConnectionError(
        None, "AWSHTTPConnection(host='10.0.0.5', port=9000): Failed to establish a new connection: [Errno 111] "
              "Connection refused")
    assert s3_msg(boto_exc.EndpointConnectionError(endpoint_url=ENDPOINT, error=refused)) == (
        "Cannot reach S3 at http://10.0.0.5:9000: connection refused. Check s3_endpoint and that the storage service "
        "runs.")

    dns = urllib3.exceptions.NameResolutionError("s3.invalid", None, socket.gaierror(-2, "Name or service not known"))
    msg = pf.describe_s3_error(boto_exc.EndpointConnectionError(endpoint_url="http://s3.invalid:9000", error=dns),
                               "http://s3.invalid:9000", KEY, "images")
    assert "the host name 's3.invalid' does not resolve. Check s3_endpoint." in msg

    connect = boto_exc.ConnectTimeoutError(endpoint_url=ENDPOINT, error=socket.timeout("timed out"))
    assert "Cannot reach S3 at http://10.0.0.5:9000: no answer within 7s (timeout)." in s3_msg(connect)

    read = boto_exc.ReadTimeoutError(endpoint_url=ENDPOINT, error="Read timed out. (read timeout=7)")
    assert "accepted the connection but did not answer within 7s when listing bucket 'images'" in s3_msg(read)

    closed = boto_exc.ConnectionClosedError(endpoint_url=ENDPOINT)
    assert "closed the connection without an answer" in s3_msg(closed)


def test_s3_tls_errors():
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    verify.verify_message = "self-signed certificate"
    msg = s3_msg(boto_exc.SSLError(endpoint_url=ENDPOINT, error=urllib3.exceptions.SSLError(verify)))
    assert "could not be verified (self-signed certificate). Check s3_ca_cert" in msg and "s3_validate_certs=false" in msg

    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    msg = s3_msg(boto_exc.SSLError(endpoint_url=ENDPOINT, error=urllib3.exceptions.SSLError(wrong)))
    assert "does not speak TLS on this port. Use an http:// s3_endpoint" in msg


# -- broker error translation -----------------------------------------------------------------

EP = {"host": "10.0.0.6", "port": 5672, "vhost": "imagehost", "user": "app", "password": PASSWORD, "tls": False,
      "where": "10.0.0.6:5672"}


def closed_during(kind, code, text):
    """What pika raises when the broker closes the connection during the handshake."""
    return kind(repr(pika_exc.ConnectionClosedByBroker(code, text)))


def test_broker_wrong_password():
    exc = closed_during(pika_exc.ProbableAuthenticationError, 403, "ACCESS_REFUSED - Login was refused using "
                        "authentication mechanism PLAIN. For details see the broker logfile.")
    assert pf.describe_broker_error(exc, EP) == (
        "RabbitMQ at 10.0.0.6:5672 refused user 'app' (ACCESS_REFUSED): wrong broker_user or broker_password.")
    guest = dict(EP, user="guest", password="guest")
    assert "RabbitMQ's default 'guest' was tried" in pf.describe_broker_error(exc, guest)


def test_broker_unknown_vhost_and_vhost_without_permission():
    missing = closed_during(pika_exc.ProbableAccessDeniedError, 530, "NOT_ALLOWED - vhost imagehost not found")
    assert pf.describe_broker_error(missing, EP).startswith(
        "RabbitMQ at 10.0.0.6:5672 has no virtual host 'imagehost' (NOT_ALLOWED). Check broker_vhost")
    refused = closed_during(pika_exc.ProbableAccessDeniedError, 530,
                            "NOT_ALLOWED - access to vhost 'imagehost' refused for user 'app'")
    msg = pf.describe_broker_error(refused, EP)
    assert msg.startswith("RabbitMQ at 10.0.0.6:5672 refused user 'app' access to virtual host 'imagehost' "
                          "(NOT_ALLOWED): the user has no permissions there.")
    assert "rabbitmqctl set_permissions -p 'imagehost' 'app'" in msg


def test_broker_transport_errors():
    refused = pika_exc.AMQPConnectionError(pika_workflow.AMQPConnectorSocketConnectError(
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")))
    assert pf.describe_broker_error(refused, EP) == (
        "Cannot reach RabbitMQ at 10.0.0.6:5672: connection refused. Check broker_host and broker_port (or "
        "broker_url) and that RabbitMQ runs.")

    connect_timeout = pika_exc.AMQPConnectionError(pika_workflow.AMQPConnectorSocketConnectError(
        socket.timeout("TCP connection attempt timed out: '10.0.0.6'")))
    assert "Cannot reach RabbitMQ at 10.0.0.6:5672: no answer within 4s (timeout)." in pf.describe_broker_error(
        connect_timeout, EP, timeout=4)

    handshake = pika_workflow.AMQPConnectorStackTimeout("Timeout during AMQP handshake'10.0.0.6'/(...); ssl=False")
    assert "accepted the connection but did not complete the AMQP handshake within 4s" in pf.describe_broker_error(
        handshake, EP, timeout=4)

    dns = socket.gaierror(-2, "Name or service not known")
    assert "the host name '10.0.0.6' does not resolve" in pf.describe_broker_error(dns, EP)

    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    assert "Use amqp:// (broker_tls=false) or the TLS port" in pf.describe_broker_error(wrong, EP)

    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    verify.verify_message = "unable to get local issuer certificate"
    assert "Check broker_ca_cert" in pf.describe_broker_error(verify, EP)

    lost = pika_exc.StreamLostError("Transport indicated EOF")
    assert "dropped the connection during the handshake" in pf.describe_broker_error(lost, EP)

    # plain AMQP on a TLS port: the TLS listener resets the connection at the protocol header
    protocol = pika_exc.IncompatibleProtocolError(repr(pika_exc.StreamLostError(
        "Stream connection lost: ConnectionResetError(104, 'Connection reset by peer')")))
    msg = pf.describe_broker_error(protocol, EP)
    assert msg.startswith("RabbitMQ at 10.0.0.6:5672 dropped the connection at the AMQP protocol header (")
    assert "the port expects TLS (use amqps:// or broker_tls=true)" in msg


def test_broker_queue_errors():
    missing = pika_exc.ChannelClosedByBroker(404, "NOT_FOUND - no queue 'resize' in vhost 'imagehost'")
    assert pf.describe_broker_error(missing, EP, queue="resize") == (
        "RabbitMQ at 10.0.0.6:5672 has no queue 'resize' in virtual host 'imagehost' (NOT_FOUND). Check broker_queue, "
        "or let the application declare it first.")
    denied = pika_exc.ChannelClosedByBroker(403, "ACCESS_REFUSED - access to queue 'resize' refused")
    assert "refused user 'app' access to queue 'resize'" in pf.describe_broker_error(denied, EP, queue="resize")


# -- secrets ----------------------------------------------------------------------------------

def test_scrub_masks_every_secret_longest_first():
    assert pf.scrub("a secret and secret-2 and x", ["secret", "secret-2", None, ""]) == "a ******** and ******** and x"


def test_combine_failures():
    assert pf.combine_failures([]) is None
    assert pf.combine_failures(["S3 broke."]) == "S3 broke."
    assert pf.combine_failures(["S3 broke.", "Broker broke."]) == "Preflight found 2 problems: 1) S3 broke. 2) Broker broke."


# -- the S3 check with a stand-in client ------------------------------------------------------

class FakeS3:
    """Answers like S3 would for one bucket; ``errors`` maps an operation to the exception it raises."""

    def __init__(self, exists=True, errors=None):
        self.exists = exists
        self.errors = errors or {}
        self.calls = []
        self.objects = set()

    def _call(self, name, **kw):
        self.calls.append((name, kw))
        if name in self.errors:
            raise self.errors[name]

    def list_objects_v2(self, **kw):
        self._call("list_objects_v2", **kw)
        if not self.exists:
            raise client_error("NoSuchBucket", "The specified bucket does not exist", status=404)

    def create_bucket(self, **kw):
        self._call("create_bucket", **kw)
        self.exists = True

    def put_object(self, **kw):
        self._call("put_object", **kw)
        self.objects.add(kw["Key"])

    def delete_object(self, **kw):
        self._call("delete_object", **kw)
        self.objects.discard(kw["Key"])


def s3_check(client, check_mode=False, **kw):
    return pf.S3Check(pf.s3_settings(s3_params(**kw)), client, check_mode=check_mode)


def test_missing_bucket_is_created_and_write_probed():
    client = FakeS3(exists=False)
    result = s3_check(client).run()
    assert result["bucket_existed"] is False and result["bucket_created"] is True and result["write_checked"] is True
    assert [c[0] for c in client.calls] == ["list_objects_v2", "create_bucket", "put_object", "delete_object"]
    assert "CreateBucketConfiguration" not in client.calls[1][1], "us-east-1 must not be named"
    assert client.calls[2][1]["Key"].startswith(".preflight/preflight-")
    assert not client.objects, "the probe object is deleted again"


def test_existing_bucket_is_left_alone():
    client = FakeS3(exists=True)
    result = s3_check(client).run()
    assert (result["bucket_existed"], result["bucket_created"]) == (True, False)
    assert "create_bucket" not in [c[0] for c in client.calls]


def test_check_mode_only_reads():
    client = FakeS3(exists=False)
    result = s3_check(client, check_mode=True).run()
    assert result["bucket_created"] is True and result["write_checked"] is False
    assert [c[0] for c in client.calls] == ["list_objects_v2"]


def test_other_regions_are_named_when_creating():
    client = FakeS3(exists=False)
    s3_check(client, s3_region="eu-west-1").run()
    assert client.calls[1][1]["CreateBucketConfiguration"] == {"LocationConstraint": "eu-west-1"}


def test_missing_bucket_without_create_fails():
    check = s3_check(FakeS3(exists=False), s3_create_bucket=False)
    with pytest.raises(pf.PreflightError, match="has no bucket 'images' and s3_create_bucket is false"):
        check.run()
    assert check.result["bucket_existed"] is False and check.result["ok"] is False


def test_bucket_created_meanwhile_counts_as_existing():
    client = FakeS3(exists=False, errors={"create_bucket": client_error("BucketAlreadyOwnedByYou", "", status=409)})
    assert s3_check(client).run()["bucket_created"] is False


def test_write_denied_fails_and_delete_denied_warns():
    denied = client_error("AccessDenied", "Access Denied.")
    with pytest.raises(pf.PreflightError, match="s3:PutObject"):
        s3_check(FakeS3(errors={"put_object": denied})).run()

    check = s3_check(FakeS3(errors={"delete_object": denied}))
    assert check.run()["write_checked"] is True
    [warning] = check.warnings
    assert "s3:DeleteObject" in warning and "was left behind; delete it by hand" in warning


def test_skip_write_probe():
    client = FakeS3()
    assert s3_check(client, s3_check_write=False).run()["write_checked"] is False
    assert [c[0] for c in client.calls] == ["list_objects_v2"]


# -- the broker check with a stand-in connection ----------------------------------------------

class FakeChannel:
    def __init__(self, missing=False):
        self.missing = missing

    def queue_declare(self, queue, passive):
        assert passive, "preflight never creates a queue"
        if self.missing:
            raise pika_exc.ChannelClosedByBroker(404, "NOT_FOUND - no queue '%s' in vhost 'imagehost'" % queue)

        class Method:
            message_count = 3
            consumer_count = 2

        class Frame:
            method = Method
        return Frame


class FakeConnection:
    def __init__(self, params, missing=False):
        self.params = params
        self.missing = missing
        self.closed = False

        class Impl:
            server_properties = {"product": "RabbitMQ", "version": "3.10.8"}
        self._impl = Impl

    def channel(self):
        return FakeChannel(self.missing)

    def close(self):
        self.closed = True


def test_check_broker_reports_server_and_queue_and_closes():
    conns = []

    def connect(params):
        conns.append(FakeConnection(params))
        return conns[-1]
    result = pf.check_broker(dict(EP), 5, queue="resize", connect=connect)
    assert result == {"ok": True, "host": "10.0.0.6", "port": 5672, "vhost": "imagehost", "user": "app", "tls": False,
                      "server_product": "RabbitMQ", "server_version": "3.10.8",
                      "queue": {"name": "resize", "messages": 3, "consumers": 2}}
    assert conns[0].closed
    params = conns[0].params
    assert (params.virtual_host, params.connection_attempts, params.stack_timeout) == ("imagehost", 1, 5)


def test_check_broker_failure_carries_the_message_and_what_was_learnt():
    with pytest.raises(pf.PreflightError) as err:
        pf.check_broker(dict(EP), 5, queue="resize", connect=lambda p: FakeConnection(p, missing=True))
    assert "has no queue 'resize'" in err.value.msg
    assert err.value.result["server_product"] == "RabbitMQ" and err.value.result["ok"] is False


# -- the module's own helpers -----------------------------------------------------------------

class FakeModule:
    def __init__(self, **params):
        spec = pf.argument_spec()
        self.params = dict((k, v.get("default")) for k, v in spec.items())
        self.params.update(params)


def test_only_enabled_checks_need_their_options():
    checks, s3, endpoints, problems = module.settings_or_problems(FakeModule(checks=["broker"], broker_host="mq"))
    assert (checks, s3, problems) == (["broker"], None, [])
    assert endpoints[0]["where"] == "mq:5672"


def test_all_argument_problems_together():
    checks, dummy, dummy, problems = module.settings_or_problems(FakeModule(s3_ca_cert="/nonexistent/ca.pem"))
    text = " ".join(problems)
    assert checks == ["s3", "broker"]
    assert "needs s3_endpoint" in text and "needs broker_url or broker_host" in text
    assert "s3_ca_cert /nonexistent/ca.pem is not a readable file" in text
    assert module.settings_or_problems(FakeModule(checks=[]))[3] == ["checks is empty: name at least one of s3, broker."]


def test_bucket_diff():
    assert module.bucket_diff({"bucket_existed": None}) is None
    diff = module.bucket_diff({"endpoint": ENDPOINT, "bucket": "images", "bucket_existed": False, "bucket_created": True})
    assert diff == {"before": "bucket: images\npresent: false\n", "after": "bucket: images\npresent: true\n",
                    "before_header": ENDPOINT + "/images", "after_header": ENDPOINT + "/images"}

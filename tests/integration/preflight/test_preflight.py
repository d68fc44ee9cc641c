"""cloudvirt.platform.preflight through `ansible` and `ansible-playbook` against a real MinIO and a
real RabbitMQ: what it creates (and does not, in check mode), and the message an operator gets for
each way the credentials or endpoints can be wrong; no secret ever in the output."""
import time
import uuid

from preflight_stack import (BROKER_PASSWORD, BROKER_USER, BROKER_VHOST, OTHER_PASSWORD, PRIVATE_VHOST, QUEUE,
                             S3_ACCESS_KEY, S3_SECRET_KEY, playbook)

SECRETS = (S3_SECRET_KEY, BROKER_PASSWORD, OTHER_PASSWORD)


def assert_no_secret(result, *extra):
    for secret in SECRETS + extra:
        assert secret not in result.output, "a secret leaked into the output"


# -- S3 ---------------------------------------------------------------------------------------

def test_bucket_is_created_then_left_alone(run, minio, s3_args):
    first = run(**s3_args)
    assert not first.failed, first.output
    assert first["changed"] is True
    assert first["s3"] == {"ok": True, "endpoint": minio.endpoint, "region": "us-east-1", "bucket": s3_args["s3_bucket"],
                           "bucket_existed": False, "bucket_created": True, "write_checked": True}
    assert minio.bucket_exists(s3_args["s3_bucket"])
    assert minio.keys(s3_args["s3_bucket"]) == [], "the write probe deletes its object"

    again = run(**s3_args)
    assert not again.failed, again.output
    assert again["changed"] is False
    assert (again["s3"]["bucket_existed"], again["s3"]["bucket_created"], again["s3"]["write_checked"]) == (True, False, True)
    assert_no_secret(first)
    assert_no_secret(again)


def test_check_mode_creates_nothing_and_diff_shows_the_bucket_appearing(run, minio, s3_args):
    checked = run(check=True, diff=True, **s3_args)
    assert not checked.failed, checked.output
    assert checked["changed"] is True
    assert checked["s3"]["bucket_existed"] is False and checked["s3"]["write_checked"] is False
    bucket = s3_args["s3_bucket"]
    assert checked["diff"] == {"before": f"bucket: {bucket}\npresent: false\n", "after": f"bucket: {bucket}\npresent: true\n",
                               "before_header": f"{minio.endpoint}/{bucket}", "after_header": f"{minio.endpoint}/{bucket}"}
    assert not minio.bucket_exists(bucket)

    run(**s3_args)
    unchanged = run(check=True, diff=True, **s3_args)
    assert unchanged["changed"] is False
    assert unchanged["diff"]["before"] == unchanged["diff"]["after"] == f"bucket: {bucket}\npresent: true\n"


def test_missing_bucket_fails_when_creating_is_not_allowed(run, minio, s3_args):
    result = run(s3_create_bucket=False, **s3_args)
    assert result.failed
    assert result["msg"] == (f"S3 at {minio.endpoint} has no bucket '{s3_args['s3_bucket']}' and s3_create_bucket is "
                             "false. Create the bucket, or set s3_create_bucket=true.")
    assert not minio.bucket_exists(s3_args["s3_bucket"])


def test_wrong_access_key(run, minio, s3_args):
    result = run(**dict(s3_args, s3_access_key="no-such-key"))
    assert result.failed and result["changed"] is False
    assert result["msg"] == (f"S3 at {minio.endpoint} refused access key 'no-such-key' (InvalidAccessKeyId): the key "
                             "does not exist there. Check s3_access_key.")
    assert result["s3"]["bucket_existed"] is None
    assert_no_secret(result)


def test_wrong_secret_key(run, minio, s3_args):
    wrong = "wrong-secret-" + uuid.uuid4().hex
    result = run(**dict(s3_args, s3_secret_key=wrong))
    assert result.failed
    assert result["msg"] == (f"S3 at {minio.endpoint} rejected the request signature (SignatureDoesNotMatch): wrong "
                             f"s3_secret_key for access key '{S3_ACCESS_KEY}'.")
    assert_no_secret(result, wrong)


def test_unreachable_s3_port(run, s3_args, closed_port):
    endpoint = f"http://127.0.0.1:{closed_port}"
    result = run(**dict(s3_args, s3_endpoint=endpoint))
    assert result.failed
    assert result["msg"] == (f"Cannot reach S3 at {endpoint}: connection refused. Check s3_endpoint and that the "
                             "storage service runs.")


def test_s3_port_that_never_answers_fails_within_the_timeout(run, s3_args, silent_port):
    endpoint = f"http://127.0.0.1:{silent_port}"
    start = time.monotonic()
    result = run(timeout=2, **dict(s3_args, s3_endpoint=endpoint))
    assert result.failed
    assert result["msg"].startswith(f"S3 at {endpoint} accepted the connection but did not answer within 2s")
    assert time.monotonic() - start < 30


def test_https_endpoint_on_a_plain_http_port(run, minio, s3_args):
    endpoint = minio.endpoint.replace("http://", "https://")
    result = run(**dict(s3_args, s3_endpoint=endpoint))
    assert result.failed
    assert f"TLS handshake with S3 at {endpoint} failed" in result["msg"]
    assert "the service does not speak TLS on this port. Use an http:// s3_endpoint" in result["msg"]


def test_credentials_from_the_aws_environment(run, minio, s3_args):
    args = {k: v for k, v in s3_args.items() if k not in ("s3_access_key", "s3_secret_key", "s3_endpoint")}
    result = run(env={"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
                      "AWS_ENDPOINT_URL_S3": minio.endpoint}, **args)
    assert not result.failed, result.output
    assert result["s3"]["bucket_created"] is True


def test_s3_over_tls(run, minio_tls, tls_certs, s3_args):
    args = dict(s3_args, s3_endpoint=minio_tls.endpoint)
    unknown_ca = run(**args)
    assert unknown_ca.failed
    assert unknown_ca["msg"].startswith(f"TLS handshake with S3 at {minio_tls.endpoint} failed: the server certificate "
                                        "could not be verified (")
    assert "Check s3_ca_cert points at the CA that signed it, or set s3_validate_certs=false" in unknown_ca["msg"]

    trusted = run(s3_ca_cert=str(tls_certs.ca), **args)
    assert not trusted.failed, trusted.output
    assert trusted["s3"]["bucket_created"] is True and trusted["s3"]["write_checked"] is True

    unverified = run(s3_validate_certs=False, **args)
    assert not unverified.failed, unverified.output
    assert unverified["s3"]["bucket_existed"] is True
    assert "Unverified HTTPS request" not in unverified.output


def test_http_endpoint_on_a_tls_port(run, minio_tls, s3_args):
    endpoint = minio_tls.endpoint.replace("https://", "http://")
    result = run(**dict(s3_args, s3_endpoint=endpoint))
    assert result.failed
    assert result["msg"] == (f"S3 at {endpoint} closed the connection without an answer when listing bucket "
                             f"'{s3_args['s3_bucket']}': if the service uses TLS, s3_endpoint must start with https://; "
                             "otherwise check the storage service's log.")


# -- broker -----------------------------------------------------------------------------------

def test_broker_ok(run, rabbitmq, broker_args):
    result = run(broker_queue=QUEUE, **broker_args)
    assert not result.failed, result.output
    assert result["changed"] is False
    broker = result["broker"]
    assert broker["ok"] is True and broker["server_product"] == "RabbitMQ" and broker["server_version"].startswith("3.")
    assert (broker["host"], broker["port"], broker["vhost"], broker["user"], broker["tls"]) == (
        "127.0.0.1", rabbitmq.port, BROKER_VHOST, BROKER_USER, False)
    assert broker["queue"] == {"name": QUEUE, "messages": 0, "consumers": 0}
    assert result["brokers"] == [broker]


def test_broker_url_with_the_password_in_it(run, rabbitmq):
    url = f"amqp://{BROKER_USER}:{BROKER_PASSWORD}@127.0.0.1:{rabbitmq.port}/{BROKER_VHOST}"
    result = run(checks=["broker"], broker_url=url, verbosity=3)
    assert not result.failed, result.output
    assert result["broker"]["vhost"] == BROKER_VHOST and result["broker"]["user"] == BROKER_USER
    assert_no_secret(result)


def test_broker_url_with_the_password_apart(run, rabbitmq):
    """The application's way: the URL in the job spec, the password from a vault."""
    result = run(checks=["broker"], broker_url=f"amqp://127.0.0.1:{rabbitmq.port}/{BROKER_VHOST}",
                 broker_user=BROKER_USER, broker_password=BROKER_PASSWORD)
    assert not result.failed, result.output
    assert result["broker"]["ok"] is True


def test_broker_wrong_password(run, rabbitmq, broker_args):
    wrong = "wrong-pw-" + uuid.uuid4().hex
    result = run(**dict(broker_args, broker_password=wrong))
    assert result.failed
    assert result["msg"] == (f"RabbitMQ at 127.0.0.1:{rabbitmq.port} refused user '{BROKER_USER}' (ACCESS_REFUSED): "
                             "wrong broker_user or broker_password.")
    assert_no_secret(result, wrong)


def test_broker_wrong_password_inside_the_url_is_never_shown(run, rabbitmq):
    wrong = "wrong-pw-" + uuid.uuid4().hex
    result = run(checks=["broker"], broker_url=f"amqp://{BROKER_USER}:{wrong}@127.0.0.1:{rabbitmq.port}/{BROKER_VHOST}",
                 verbosity=3)
    assert result.failed
    assert "refused user 'app' (ACCESS_REFUSED)" in result["msg"]
    assert_no_secret(result, wrong)


def test_broker_unknown_vhost(run, rabbitmq, broker_args):
    result = run(**dict(broker_args, broker_vhost="no-such-vhost"))
    assert result.failed
    assert result["msg"] == (f"RabbitMQ at 127.0.0.1:{rabbitmq.port} has no virtual host 'no-such-vhost' (NOT_ALLOWED). "
                             "Check broker_vhost (in a URL, the path after the port; %2F or // is the default vhost '/').")


def test_broker_vhost_without_permission(run, rabbitmq, broker_args):
    result = run(**dict(broker_args, broker_vhost=PRIVATE_VHOST))
    assert result.failed
    assert result["msg"].startswith(
        f"RabbitMQ at 127.0.0.1:{rabbitmq.port} refused user '{BROKER_USER}' access to virtual host '{PRIVATE_VHOST}' "
        "(NOT_ALLOWED): the user has no permissions there.")


def test_broker_unreachable(run, broker_args, closed_port):
    result = run(**dict(broker_args, broker_port=closed_port))
    assert result.failed
    assert result["msg"] == (f"Cannot reach RabbitMQ at 127.0.0.1:{closed_port}: connection refused. Check broker_host "
                             "and broker_port (or broker_url) and that RabbitMQ runs.")


def test_broker_over_tls(run, rabbitmq, tls_certs):
    url = f"amqps://{BROKER_USER}:{BROKER_PASSWORD}@127.0.0.1:{rabbitmq.tls_port}/{BROKER_VHOST}"
    unknown_ca = run(checks=["broker"], broker_url=url)
    assert unknown_ca.failed
    assert unknown_ca["msg"].startswith(f"TLS handshake with RabbitMQ at 127.0.0.1:{rabbitmq.tls_port} failed: the "
                                        "server certificate could not be verified (")
    assert "Check broker_ca_cert" in unknown_ca["msg"]
    assert_no_secret(unknown_ca)

    trusted = run(checks=["broker"], broker_url=url, broker_ca_cert=str(tls_certs.ca))
    assert not trusted.failed, trusted.output
    assert trusted["broker"]["tls"] is True and trusted["broker"]["port"] == rabbitmq.tls_port
    assert trusted["broker"]["server_product"] == "RabbitMQ"


def test_plain_amqp_on_the_tls_port(run, rabbitmq, broker_args):
    result = run(timeout=5, **dict(broker_args, broker_port=rabbitmq.tls_port))
    assert result.failed
    assert result["msg"].startswith(f"RabbitMQ at 127.0.0.1:{rabbitmq.tls_port} dropped the connection at the AMQP "
                                    "protocol header (")
    assert "the port expects TLS (use amqps:// or broker_tls=true)" in result["msg"]


def test_broker_pointed_at_an_http_port(run, minio, broker_args):
    """An HTTP server waits for a request line that the AMQP header never completes."""
    port = int(minio.endpoint.rsplit(":", 1)[1])
    result = run(timeout=3, **dict(broker_args, broker_port=port))
    assert result.failed
    assert result["msg"].startswith(f"RabbitMQ at 127.0.0.1:{port} accepted the connection but did not complete the "
                                    "AMQP handshake within 3s: something else listens there, or the port expects TLS.")


def test_tls_on_the_plain_port(run, rabbitmq, broker_args):
    result = run(**dict(broker_args, broker_tls=True))
    assert result.failed
    assert result["msg"].startswith(f"TLS handshake with RabbitMQ at 127.0.0.1:{rabbitmq.port} failed")
    assert "Use amqp:// (broker_tls=false) or the TLS port (usually 5671)." in result["msg"]


def test_broker_port_that_never_answers_fails_within_the_timeout(run, broker_args, silent_port):
    start = time.monotonic()
    result = run(timeout=2, **dict(broker_args, broker_port=silent_port))
    assert result.failed
    assert result["msg"].startswith(f"RabbitMQ at 127.0.0.1:{silent_port} accepted the connection but did not complete "
                                    "the AMQP handshake within 2s")
    assert time.monotonic() - start < 30


def test_broker_missing_queue(run, rabbitmq, broker_args):
    result = run(broker_queue="no-such-queue", **broker_args)
    assert result.failed
    assert result["msg"] == (f"RabbitMQ at 127.0.0.1:{rabbitmq.port} has no queue 'no-such-queue' in virtual host "
                             f"'{BROKER_VHOST}' (NOT_FOUND). Check broker_queue, or let the application declare it first.")
    assert result["broker"]["server_product"] == "RabbitMQ", "what the connection learnt is still returned"


# -- both -------------------------------------------------------------------------------------

def test_every_failure_is_reported_in_one_message(run, minio, rabbitmq, s3_args, broker_args, closed_port):
    args = dict(s3_args, **broker_args)
    args.update(checks=["s3", "broker"], s3_secret_key="wrong-" + uuid.uuid4().hex, broker_vhost="no-such-vhost")
    result = run(**args)
    assert result.failed
    s3_msg = (f"S3 at {minio.endpoint} rejected the request signature (SignatureDoesNotMatch): wrong s3_secret_key for "
              f"access key '{S3_ACCESS_KEY}'.")
    broker_msg = f"RabbitMQ at 127.0.0.1:{rabbitmq.port} has no virtual host 'no-such-vhost' (NOT_ALLOWED)."
    assert result["msg"].startswith(f"Preflight found 2 problems: 1) {s3_msg} 2) {broker_msg}")
    assert len(result["failures"]) == 2
    assert result["s3"]["ok"] is False and result["broker"]["ok"] is False

    # one check failing does not stop the other from running (and creating the bucket)
    args.update(s3_secret_key=S3_SECRET_KEY, broker_port=closed_port, broker_vhost=BROKER_VHOST)
    result = run(**args)
    assert result.failed and result["changed"] is True
    assert result["msg"].startswith(f"Cannot reach RabbitMQ at 127.0.0.1:{closed_port}: connection refused.")
    assert result["s3"]["ok"] is True and minio.bucket_exists(s3_args["s3_bucket"])


def test_argument_problems_are_reported_before_connecting(run):
    result = run(s3_endpoint="10.0.0.5:9000", s3_bucket="Bad_Name", broker_url="http://u:hunter2@mq/")
    assert result.failed
    for part in ("s3_endpoint 10.0.0.5:9000 must be a URL starting with http:// or https://",
                 "s3_bucket 'Bad_Name' is not a valid bucket name: it must be lowercase.",
                 "The s3 check needs s3_access_key (or AWS_ACCESS_KEY_ID).",
                 "broker_url http://u:********@mq/ must start with amqp:// or amqps:// (not http://)."):
        assert part in result["msg"]
    assert "hunter2" not in result.output


# -- through ansible-playbook -----------------------------------------------------------------

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: preflight
      cloudvirt.platform.preflight:
        s3_endpoint: "{{ s3_endpoint }}"
        s3_access_key: "{{ s3_access_key }}"
        s3_secret_key: "{{ s3_secret_key }}"
        s3_bucket: "{{ bucket }}"
        broker_url: "{{ broker_url }}"
        broker_queue: "%s"
      register: pf
    - name: what the play can use
      ansible.builtin.assert:
        that:
          - pf.s3.bucket_existed is boolean
          - pf.broker.server_product == 'RabbitMQ'
""" % QUEUE


def play_vars(minio, rabbitmq, bucket, secret=S3_SECRET_KEY, password=BROKER_PASSWORD):
    args = []
    for key, value in (("s3_endpoint", minio.endpoint), ("s3_access_key", S3_ACCESS_KEY), ("s3_secret_key", secret),
                       ("bucket", bucket),
                       ("broker_url", f"amqp://{BROKER_USER}:{password}@127.0.0.1:{rabbitmq.port}/{BROKER_VHOST}")):
        args += ["-e", f"{key}={value}"]
    return args


def test_playbook_check_diff_then_apply_then_idempotent(tmp_path, minio, rabbitmq):
    bucket = f"pf-{uuid.uuid4().hex[:12]}"
    checked = playbook(tmp_path, PLAY, "--check", "--diff", *play_vars(minio, rabbitmq, bucket))
    out = checked.stdout + checked.stderr
    assert checked.returncode == 0, out
    assert "-present: false" in out and "+present: true" in out
    assert "changed=1" in out and not minio.bucket_exists(bucket)

    applied = playbook(tmp_path, PLAY, *play_vars(minio, rabbitmq, bucket))
    assert applied.returncode == 0 and "changed=1" in applied.stdout, applied.stdout + applied.stderr
    assert minio.bucket_exists(bucket)

    again = playbook(tmp_path, PLAY, *play_vars(minio, rabbitmq, bucket))
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout + again.stderr


def test_no_secret_in_vvv_output_whether_it_passes_or_fails(tmp_path, minio, rabbitmq):
    bucket = f"pf-{uuid.uuid4().hex[:12]}"
    ok = playbook(tmp_path, PLAY, "-vvv", "--diff", *play_vars(minio, rabbitmq, bucket))
    out = ok.stdout + ok.stderr
    assert ok.returncode == 0, out
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in out, "-vvv shows the module arguments, masked"
    for secret in SECRETS:
        assert secret not in out

    wrong_secret, wrong_password = "wrong-s3-" + uuid.uuid4().hex, "wrong-pw-" + uuid.uuid4().hex
    failed = playbook(tmp_path, PLAY, "-vvv", *play_vars(minio, rabbitmq, bucket, wrong_secret, wrong_password))
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "SignatureDoesNotMatch" in out and "ACCESS_REFUSED" in out
    for secret in SECRETS + (wrong_secret, wrong_password):
        assert secret not in out

"""The app's broker and storage on one node, checked the way the app and an operator use them:
from the controller over the node's address, with the credentials from the inventory."""
import uuid

import boto3
import pika
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

TIMEOUT = 10


@pytest.fixture(scope="module")
def inv(host):
    """The host's inventory variables (molecule.yml: plain test values, no templates)."""
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def app_user(inv):
    return inv["rabbitmq_users"][0]


def amqp(inv, user, password, vhost):
    params = pika.ConnectionParameters(
        host=inv["ansible_host"], port=5672, virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=1, socket_timeout=TIMEOUT, blocked_connection_timeout=TIMEOUT)
    return pika.BlockingConnection(params)


def s3(inv, secret=None):
    return boto3.client(
        "s3", endpoint_url=f"http://{inv['ansible_host']}:9000", region_name="us-east-1",
        aws_access_key_id=inv["minio_root_user"],
        aws_secret_access_key=secret or inv["minio_root_password"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      connect_timeout=TIMEOUT, read_timeout=TIMEOUT, retries={"max_attempts": 1}))


def test_services_run_and_start_at_boot(host):
    for name in ("rabbitmq-server", "minio"):
        svc = host.service(name)
        assert svc.is_running and svc.is_enabled, name


def test_broker_listens_on_the_node_address_only(host, inv):
    assert host.socket(f"tcp://{inv['ansible_host']}:5672").is_listening
    assert not host.socket("tcp://0.0.0.0:5672").is_listening
    # The management plugin is off by default.
    assert not host.socket("tcp://0.0.0.0:15672").is_listening
    assert not host.socket(f"tcp://{inv['ansible_host']}:15672").is_listening


def test_app_user_publishes_and_consumes_on_its_vhost(inv, app_user):
    queue = f"molecule-verify-{uuid.uuid4().hex[:8]}"
    body = uuid.uuid4().hex.encode()
    conn = amqp(inv, app_user["name"], app_user["password"], app_user["vhost"])
    try:
        ch = conn.channel()
        ch.queue_declare(queue=queue, auto_delete=False)
        ch.confirm_delivery()
        ch.basic_publish(exchange="", routing_key=queue, body=body, mandatory=True)
        method, _props, got = ch.basic_get(queue=queue, auto_ack=True)
        assert method is not None and got == body
        ch.queue_delete(queue=queue)
    finally:
        conn.close()


def test_app_user_has_no_access_to_other_vhosts(inv, app_user):
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        amqp(inv, app_user["name"], app_user["password"], "/")


def test_wrong_password_is_refused(inv, app_user):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        amqp(inv, app_user["name"], app_user["password"] + "-wrong", app_user["vhost"])


def test_guest_is_refused_and_gone(host, inv):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        amqp(inv, "guest", "guest", "/")
    # Not only refused from afar (guest is loopback-only anyway): the user no longer exists.
    users = host.check_output("rabbitmqctl --quiet list_users --formatter json")
    assert '"guest"' not in users
    assert host.run("rabbitmqctl --quiet authenticate_user guest guest").rc != 0


def test_erlang_cookie_is_the_chosen_one_and_private(host, inv):
    cookie = host.file("/var/lib/rabbitmq/.erlang.cookie")
    assert cookie.user == "rabbitmq" and cookie.mode == 0o400
    assert cookie.content_string.strip() == inv["rabbitmq_erlang_cookie"]


def test_minio_answers_ready(inv):
    r = requests.get(f"http://{inv['ansible_host']}:9000/minio/health/ready", timeout=TIMEOUT)
    assert r.status_code == 200


def test_minio_runs_as_its_own_user_on_the_node_address(host, inv):
    assert host.process.get(comm="minio").user == "minio"
    assert host.socket(f"tcp://{inv['ansible_host']}:9000").is_listening
    # The console is off by default.
    assert not host.socket(f"tcp://{inv['ansible_host']}:9001").is_listening


def test_root_credentials_create_a_bucket_and_round_trip_an_object(inv):
    client = s3(inv)
    bucket = f"molecule-verify-{uuid.uuid4().hex[:8]}"
    body = uuid.uuid4().bytes * 1000
    client.create_bucket(Bucket=bucket)
    try:
        client.put_object(Bucket=bucket, Key="probe.bin", Body=body)
        assert client.get_object(Bucket=bucket, Key="probe.bin")["Body"].read() == body
    finally:
        client.delete_object(Bucket=bucket, Key="probe.bin")
        client.delete_bucket(Bucket=bucket)


def test_wrong_s3_secret_is_refused(inv):
    with pytest.raises(ClientError) as err:
        s3(inv, secret=inv["minio_root_password"] + "-wrong").list_buckets()
    assert err.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied")


def test_minio_env_file_is_private(host):
    env = host.file("/etc/default/minio")
    assert env.user == "root" and env.group == "root" and env.mode == 0o600


def test_no_secret_in_the_journal_or_logs(host, inv, app_user):
    """Secrets stay on the controller: the journal and /var/log are read here and searched locally."""
    secrets = {
        "minio_root_password": inv["minio_root_password"],
        "rabbitmq password": app_user["password"],
        "erlang cookie": inv["rabbitmq_erlang_cookie"],
    }
    journal = host.check_output("journalctl --no-pager -o cat")
    logs = host.check_output("find /var/log -type f -name '*.log' -exec cat {} + 2>/dev/null || true")
    assert "minio" in journal  # the journal was read at all
    for what, value in secrets.items():
        assert value not in journal, f"{what} appears in the journal"
        assert value not in logs, f"{what} appears under /var/log"

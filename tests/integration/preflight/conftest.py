"""A real MinIO and a real RabbitMQ on loopback for the preflight module, one of each per session.

- MinIO: the binary of ``scripts/build-binaries.sh minio`` (or ``$MINIO_BIN``), random ports, data
  in a temporary directory, random root credentials.
- RabbitMQ: Debian's ``rabbitmq-server`` started as a private node (own node name, ports, epmd
  port, data directory; never the system service), with users, vhosts, permissions and a queue
  loaded from a definitions file at boot, so wrong passwords, unknown vhosts and vhosts without
  permission can all be provoked.

The module runs through ``ansible`` (ad-hoc, JSON callback, so tests read the structured result)
and ``ansible-playbook`` (human output, ``-vvv``), with the collection from ``.build/collections``
and the repository's ``ansible.cfg``, like ``tests/integration/nomad``.
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from preflight_stack import (BROKER_PASSWORD, BROKER_USER, BROKER_VHOST, RABBITMQ_SERVER, S3_ACCESS_KEY, S3_SECRET_KEY,
                             Minio, RabbitMQ, Runner, SilentListener, ensure_collection_link, free_port, http_status,
                             make_tls_certs, minio_binary, rabbit_definitions, stop_group, wait_for)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 and localhost (openssl), for the TLS listeners."""
    if not shutil.which("openssl"):
        pytest.fail("openssl is missing (apt-get install openssl)")
    return make_tls_certs(tmp_path_factory.mktemp("tls"))


@contextlib.contextmanager
def minio_server(base, certs=None):
    binary = minio_binary()
    if not binary.is_file():
        pytest.fail(f"MinIO binary {binary} is missing: run scripts/build-binaries.sh minio (or set MINIO_BIN)")
    port, console = free_port(), free_port()
    env = dict(os.environ, MINIO_ROOT_USER=S3_ACCESS_KEY, MINIO_ROOT_PASSWORD=S3_SECRET_KEY,
               MINIO_BROWSER="off", MINIO_UPDATE="off", HOME=str(base))
    argv = [str(binary), "server", "--quiet", "--address", f"127.0.0.1:{port}",
            "--console-address", f"127.0.0.1:{console}", "--certs-dir", str(base / "certs"), str(base / "data")]
    (base / "certs").mkdir()
    if certs:
        shutil.copy(certs.cert, base / "certs" / "public.crt")
        shutil.copy(certs.key, base / "certs" / "private.key")
    log = open(base / "minio.log", "wb")  # closed at teardown
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"{'https' if certs else 'http'}://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is None and http_status(port, "/minio/health/live", certs) == 200, 60,
                 "MinIO to answer")
        yield Minio(endpoint, proc)
    except BaseException:
        print((base / "minio.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        stop_group(proc)
        log.close()


@pytest.fixture(scope="session")
def minio(tmp_path_factory):
    with minio_server(tmp_path_factory.mktemp("minio")) as server:
        yield server


@pytest.fixture(scope="session")
def minio_tls(tmp_path_factory, tls_certs):
    """A second MinIO serving HTTPS with the certificate of ``tls_certs``."""
    with minio_server(tmp_path_factory.mktemp("minio-tls"), tls_certs) as server:
        yield server


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory, tls_certs):
    if not RABBITMQ_SERVER.exists():
        pytest.fail("rabbitmq-server is not installed: apt-get install rabbitmq-server "
                    "(bash -c '. scripts/lib.sh; ensure_host_packages rabbitmq-server')")
    base = tmp_path_factory.mktemp("rabbitmq")
    (base / "enabled_plugins").write_text("[].\n")
    (base / "definitions.json").write_text(json.dumps(rabbit_definitions()))
    port, tls_port, dist_port, epmd_port = free_port(), free_port(), free_port(), free_port()
    # AMQP on RABBITMQ_NODE_PORT, AMQPS on tls_port; clients are not asked for a certificate
    (base / "rabbitmq.conf").write_text(f"""load_definitions = {base / 'definitions.json'}
listeners.ssl.default = {tls_port}
ssl_options.cacertfile = {tls_certs.ca}
ssl_options.certfile = {tls_certs.cert}
ssl_options.keyfile = {tls_certs.key}
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
""")
    env = dict(
        os.environ,
        HOME=str(base),  # the Erlang cookie lands here
        RABBITMQ_NODENAME=f"preflight-test-{os.getpid()}@localhost",
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(port),
        RABBITMQ_DIST_PORT=str(dist_port),
        ERL_EPMD_PORT=str(epmd_port),
        ERL_EPMD_ADDRESS="127.0.0.1",
        RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
        RABBITMQ_LOG_BASE=str(base / "log"),
        RABBITMQ_LOGS="-",
        RABBITMQ_PID_FILE=str(base / "pid"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
        RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
    )
    log = open(base / "rabbitmq.log", "wb")  # closed at teardown
    proc = subprocess.Popen([str(RABBITMQ_SERVER)], env=env, cwd=base, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is None and b"Server startup complete" in (base / "rabbitmq.log").read_bytes(),
                 120, "RabbitMQ to start")
        yield RabbitMQ(port, tls_port, proc)
    except BaseException:
        print((base / "rabbitmq.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        stop_group(proc, timeout=60)
        log.close()
        # the node started an epmd on its own port, which outlives it; ask that one to exit
        epmd = shutil.which("epmd")
        if epmd:
            subprocess.run([epmd, "-port", str(epmd_port), "-kill"], capture_output=True, check=False, timeout=10)


@pytest.fixture(scope="session")
def silent_port():
    listener = SilentListener()
    yield listener.port
    listener.close()


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture
def run(tmp_path):
    ensure_collection_link()
    return Runner(tmp_path)


@pytest.fixture
def s3_args(minio):
    """Module arguments of a working S3 check on a bucket unique to the test."""
    return {
        "checks": ["s3"],
        "s3_endpoint": minio.endpoint,
        "s3_access_key": S3_ACCESS_KEY,
        "s3_secret_key": S3_SECRET_KEY,
        "s3_bucket": f"pf-{uuid.uuid4().hex[:12]}",
    }


@pytest.fixture
def broker_args(rabbitmq):
    return {
        "checks": ["broker"],
        "broker_host": rabbitmq.host,
        "broker_port": rabbitmq.port,
        "broker_vhost": BROKER_VHOST,
        "broker_user": BROKER_USER,
        "broker_password": BROKER_PASSWORD,
    }

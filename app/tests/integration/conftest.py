"""Fixtures of the app's integration tests: MinIO, RabbitMQ, backends and workers on loopback
(see imagehost_stack.py for how each is run). Everything is stopped at the end of the session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import requests

from imagehost_stack import (BUCKET, RABBITMQ_SERVER, S3_ACCESS_KEY, S3_SECRET_KEY, Minio, RabbitMQ, Stack,
                             free_port, minio_binary, stop_group, wait_for)


@pytest.fixture(scope="session")
def minio(tmp_path_factory) -> Minio:
    binary = minio_binary()
    if not binary.is_file():
        pytest.fail(f"MinIO binary {binary} is missing: run scripts/build-binaries.sh minio (or app/tests/run.sh)")
    base = tmp_path_factory.mktemp("minio")
    port, console = free_port(), free_port()
    env = dict(os.environ, MINIO_ROOT_USER=S3_ACCESS_KEY, MINIO_ROOT_PASSWORD=S3_SECRET_KEY,
               MINIO_BROWSER="off", MINIO_UPDATE="off", HOME=str(base))
    log = open(base / "minio.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([str(binary), "server", "--quiet", "--address", f"127.0.0.1:{port}",
                             "--console-address", f"127.0.0.1:{console}", str(base / "data")],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is None and requests.get(f"{endpoint}/minio/health/live", timeout=1).ok,
                 60, "MinIO to answer")
        server = Minio(endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, proc)
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    except BaseException:
        print((base / "minio.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        stop_group(proc)
        log.close()


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory) -> RabbitMQ:
    if not RABBITMQ_SERVER.exists():
        pytest.fail("rabbitmq-server is not installed: apt-get install rabbitmq-server (or app/tests/run.sh)")
    base = tmp_path_factory.mktemp("rabbitmq")
    (base / "enabled_plugins").write_text("[].\n")
    port, dist_port, epmd_port = free_port(), free_port(), free_port()
    env = dict(
        os.environ,
        HOME=str(base),  # the Erlang cookie lands here
        RABBITMQ_NODENAME=f"imagehost-test-{os.getpid()}@localhost",
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
        RABBITMQ_CONFIG_FILE=str(base / "rabbitmq"),  # absent: defaults
    )
    log = open(base / "rabbitmq.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(RABBITMQ_SERVER)], env=env, cwd=base, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is None and b"Server startup complete" in (base / "rabbitmq.log").read_bytes(),
                 120, "RabbitMQ to start")
        yield RabbitMQ(port, f"amqp://guest:guest@127.0.0.1:{port}//")
    except BaseException:
        print((base / "rabbitmq.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        stop_group(proc, timeout=60)
        log.close()
        # epmd daemonises out of our process group; it is ours alone (own port) and idle now.
        if shutil.which("epmd"):
            subprocess.run(["epmd", "-port", str(epmd_port), "-kill"], capture_output=True, timeout=10, check=False)


@pytest.fixture(scope="session")
def stack(minio, rabbitmq, tmp_path_factory):
    s = Stack(minio, rabbitmq, tmp_path_factory.mktemp("stack"))
    yield s
    s.stop_all()


@pytest.fixture(scope="session")
def s3(minio):
    return minio.client()


@pytest.fixture(scope="session")
def app_stack(stack):
    """The shared backend and a two-process worker on the main queue."""
    backend = stack.backend("resize-main")
    worker = stack.worker("resize-main", concurrency=2)
    return backend, worker

"""Helpers of the app's integration tests: real services on loopback.

- MinIO: the binary from ``scripts/build-binaries.sh minio`` (or ``$MINIO_BIN``), on a free port,
  data in a temporary directory;
- RabbitMQ: Debian's ``rabbitmq-server`` (``apt-get install rabbitmq-server``), started as a
  private node (own node name, ports, epmd port, data directory), never the system service;
- the backend (uvicorn) and Celery workers as subprocesses of this interpreter, configured the
  way the deployment does it: plain settings in the environment, secrets in ``APP_CONFIG_FILE``.

All of it is stopped at the end of the session. ``app/tests/run.sh`` installs what is missing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import boto3
import requests
from botocore.config import Config

APP_DIR = Path(__file__).resolve().parents[2]
REPO_DIR = APP_DIR.parent
HERE = Path(__file__).resolve().parent
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
S3_ACCESS_KEY = "imagehost-test"
S3_SECRET_KEY = "s3-secret-" + uuid.uuid4().hex  # tests assert it never shows up in logs or responses
BUCKET = "imagehost-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except Exception:  # noqa: BLE001 - not ready yet
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def stop_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process group (started with start_new_session), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def minio_binary() -> Path:
    if os.environ.get("MINIO_BIN"):
        return Path(os.environ["MINIO_BIN"])
    versions = (REPO_DIR / "scripts" / "versions.env").read_text()
    version = next(line.split("=", 1)[1].strip() for line in versions.splitlines() if line.startswith("MINIO_VERSION="))
    cache = Path(os.environ.get("CLOUDVIRT_CACHE", Path.home() / ".cache" / "cloudvirt"))
    return cache / "bin" / f"minio-{version}"


@dataclass
class Minio:
    endpoint: str
    access_key: str
    secret_key: str
    proc: subprocess.Popen

    def client(self):
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))


@dataclass
class RabbitMQ:
    port: int
    url: str  # with guest credentials (RabbitMQ lets guest in from loopback only)


@dataclass
class Service:
    """A backend or worker subprocess."""

    proc: subprocess.Popen
    log_path: Path
    url: str | None = None
    extra: dict = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_group(self.proc)

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, no acknowledgement."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class Stack:
    """Starts backends and workers wired to the session's MinIO and RabbitMQ.

    Each call of :meth:`config` may override settings; secrets go to an APP_CONFIG_FILE."""

    def __init__(self, minio: Minio, rabbitmq: RabbitMQ, workdir: Path):
        self.minio = minio
        self.rabbitmq = rabbitmq
        self.workdir = workdir
        self.services: list[Service] = []

    def config(self, queue: str, **overrides: str) -> dict[str, str]:
        """Environment of a subprocess: public settings in env, secrets in a config file."""
        settings = {
            "APP_S3_ENDPOINT": self.minio.endpoint,
            "APP_S3_BUCKET": BUCKET,
            "APP_S3_REGION": "us-east-1",
            "APP_BROKER_URL": f"amqp://127.0.0.1:{self.rabbitmq.port}//",
            "APP_QUEUE": queue,
            "APP_LOG_LEVEL": "INFO",
            "APP_VERSION": "test",
        }
        secrets = {"APP_S3_ACCESS_KEY": self.minio.access_key, "APP_S3_SECRET_KEY": self.minio.secret_key,
                   "APP_BROKER_USER": "guest", "APP_BROKER_PASSWORD": "guest"}
        for k, v in overrides.items():
            (secrets if k in secrets else settings)[k] = v
        path = self.workdir / f"app-{uuid.uuid4().hex[:8]}.env"
        path.write_text("# rendered like Nomad's template block would\n"
                        + "".join(f"{k}={v}\n" for k, v in secrets.items()))
        env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
        env.update(settings, APP_CONFIG_FILE=str(path), PYTHONPATH=str(APP_DIR), PYTHONUNBUFFERED="1")
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Service:
        log_path = self.workdir / f"{name}-{uuid.uuid4().hex[:8]}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        service = Service(proc, log_path)
        self.services.append(service)
        return service

    def backend(self, queue: str, **overrides: str) -> Service:
        port = free_port()
        env = self.config(queue, APP_HOST="127.0.0.1", APP_PORT=str(port), **overrides)
        service = self._spawn("backend", [sys.executable, "-m", "imagehost.serve"], env)
        service.url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: service.proc.poll() is None and requests.get(f"{service.url}/healthz", timeout=1).ok,
                     30, "the backend to answer")
        except TimeoutError:
            raise AssertionError(f"backend did not start:\n{service.log()[-3000:]}") from None
        return service

    def worker(self, queue: str, concurrency: int = 1, script: Path | None = None, env_extra: dict | None = None,
               **overrides: str) -> Service:
        env = self.config(queue, **overrides)
        env.update(env_extra or {})
        argv = [sys.executable, str(script)] if script else [sys.executable, "-m", "imagehost.worker"]
        argv += [f"--concurrency={concurrency}", f"--hostname=test-{uuid.uuid4().hex[:8]}@%h"]
        service = self._spawn("worker", argv, env)
        try:
            wait_for(lambda: service.proc.poll() is None and " ready." in service.log(), 60, "the worker to be ready")
        except TimeoutError:
            raise AssertionError(f"worker did not start:\n{service.log()[-3000:]}") from None
        return service

    def stop_all(self) -> None:
        for service in self.services:
            service.stop()


def unique_queue(request) -> str:
    return f"resize-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"


# --- talking to the backend ------------------------------------------------------------------

SIZES = (128, 512, 1024)
RESIZE_TIMEOUT = 60  # generous: the machine running CI may be busy


def upload(base_url: str, data: bytes, filename: str = "photo.jpg", content_type: str = "image/jpeg"):
    return requests.post(f"{base_url}/api/images", files={"file": (filename, data, content_type)}, timeout=30)


def status(base_url: str, image_id: str) -> dict:
    response = requests.get(f"{base_url}/api/images/{image_id}", timeout=10)
    response.raise_for_status()
    return response.json()


def wait_done(base_url: str, image_id: str, timeout: float = RESIZE_TIMEOUT) -> dict:
    return wait_for(lambda: (doc := status(base_url, image_id))["status"] == "done" and doc,
                    timeout, f"image {image_id} to be resized")


def expected_dims(width: int, height: int, size: int) -> tuple[int, int]:
    if max(width, height) <= size:
        return width, height
    scale = size / max(width, height)
    return (size, max(1, round(height * scale))) if width >= height else (max(1, round(width * scale)), size)

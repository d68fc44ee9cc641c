"""Helpers of the preflight integration tests (imported by conftest.py and the tests; a module
name of its own, so that running several tests/integration directories in one pytest session
cannot mix it up with another directory's conftest)."""
import base64
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path


REPO = Path(__file__).resolve().parents[3]
COLLECTIONS = REPO / ".build" / "collections"
PYTHON = sys.executable
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")

# Secrets the tests assert never show up in any output. Random so that a match is never a coincidence.
S3_ACCESS_KEY = "preflight-root"
S3_SECRET_KEY = "s3-secret-" + uuid.uuid4().hex
BROKER_USER = "app"
BROKER_PASSWORD = "amqp-pw-" + uuid.uuid4().hex
BROKER_VHOST = "app"
OTHER_USER = "other"
OTHER_PASSWORD = "amqp-other-" + uuid.uuid4().hex
PRIVATE_VHOST = "private"  # exists; BROKER_USER has no permission on it
QUEUE = "resize"  # declared in BROKER_VHOST


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except OSError:  # not ready yet (refused, reset, no log file yet); anything else is a bug
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def stop_group(proc, timeout=30):
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


def ensure_collection_link():
    link = COLLECTIONS / "ansible_collections" / "cloudvirt" / "platform"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../../.."))


# -- MinIO -------------------------------------------------------------------------------------

def minio_binary():
    if os.environ.get("MINIO_BIN"):
        return Path(os.environ["MINIO_BIN"])
    version = None
    for line in (REPO / "scripts" / "versions.env").read_text().splitlines():
        if line.startswith("MINIO_VERSION="):
            version = line.split("=", 1)[1].strip()
    cache = Path(os.environ.get("CLOUDVIRT_CACHE", Path.home() / ".cache" / "cloudvirt"))
    return cache / "bin" / f"minio-{version}"


class Minio:
    def __init__(self, endpoint, proc):
        self.endpoint = endpoint
        self.proc = proc

    def client(self):
        import boto3
        from botocore.config import Config
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=S3_ACCESS_KEY, aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))

    def bucket_exists(self, name):
        return any(b["Name"] == name for b in self.client().list_buckets().get("Buckets", []))

    def keys(self, bucket, prefix=""):
        resp = self.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for o in resp.get("Contents", [])]


def http_status(port, path, certs=None):
    """Status code of a GET on loopback (HTTPS verified against ``certs.ca`` when given); no
    HTTP library, so no proxy from the environment gets in the way."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    if certs:
        sock = ssl.create_default_context(cafile=str(certs.ca)).wrap_socket(sock, server_hostname="127.0.0.1")
    with sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = sock.recv(64).split(b" ")
    return int(head[1]) if len(head) > 1 and head[1].isdigit() else None


# -- TLS ---------------------------------------------------------------------------------------

class TlsCerts:
    def __init__(self, directory):
        self.ca = directory / "ca.pem"
        self.cert = directory / "server.pem"
        self.key = directory / "server.key"


def make_tls_certs(directory):
    """A throw-away CA and a server certificate it signed, valid for 127.0.0.1 and localhost."""
    certs = TlsCerts(directory)
    ca_key = directory / "ca.key"

    def openssl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, cwd=directory)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=preflight test CA",
            "-keyout", ca_key, "-out", certs.ca)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", certs.key,
            "-out", directory / "server.csr")
    (directory / "san.ext").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n"
                                       "extendedKeyUsage = serverAuth\n")
    openssl("x509", "-req", "-in", directory / "server.csr", "-CA", certs.ca, "-CAkey", ca_key, "-CAcreateserial",
            "-days", "2", "-extfile", directory / "san.ext", "-out", certs.cert)
    return certs


# -- RabbitMQ ----------------------------------------------------------------------------------

def rabbit_password_hash(password):
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def rabbit_definitions():
    def user(name, password):
        return {"name": name, "password_hash": rabbit_password_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""}

    def allow(name, vhost):
        return {"user": name, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
    return {
        "users": [user(BROKER_USER, BROKER_PASSWORD), user(OTHER_USER, OTHER_PASSWORD)],
        "vhosts": [{"name": BROKER_VHOST}, {"name": PRIVATE_VHOST}],
        "permissions": [allow(BROKER_USER, BROKER_VHOST), allow(OTHER_USER, PRIVATE_VHOST)],
        "queues": [{"name": QUEUE, "vhost": BROKER_VHOST, "durable": True, "auto_delete": False, "arguments": {}}],
    }


class RabbitMQ:
    def __init__(self, port, tls_port, proc):
        self.host = "127.0.0.1"
        self.port = port  # AMQP
        self.tls_port = tls_port  # AMQPS, certificate from make_tls_certs()
        self.proc = proc


# -- ports that never answer -------------------------------------------------------------------

class SilentListener:
    """Accepts TCP connections and never says a word: a service that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.conns:
            conn.close()


# -- running the module ------------------------------------------------------------------------

def ansible_env(**overrides):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "ANSIBLE_")) and k.lower() not in ("http_proxy", "https_proxy")}
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "PATH": f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    })
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class Result(dict):
    """The module's result for localhost, plus the raw output of the ansible run."""

    output = ""

    @property
    def failed(self):
        return bool(self.get("failed"))


class Runner:
    """``run(check=..., diff=..., env=..., **module_args)`` runs the module through ``ansible``."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)

    def __call__(self, check=False, diff=False, env=None, verbosity=0, **args):
        cmd = ["ansible", "localhost", "-i", "localhost,", "-c", "local", "-e",
               f"ansible_python_interpreter={PYTHON}", "-m", "cloudvirt.platform.preflight", "-a", json.dumps(args)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, cwd=self.tmp,
                              env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                                              ANSIBLE_LOAD_CALLBACK_PLUGINS="1", **(env or {})))
        output = proc.stdout + proc.stderr
        try:
            doc = json.loads(proc.stdout[proc.stdout.index("{"):])
            result = Result(doc["plays"][0]["tasks"][0]["hosts"]["localhost"])
        except (ValueError, KeyError, IndexError):
            raise AssertionError(f"no JSON result from ansible (rc {proc.returncode}):\n{output}") from None
        result.output = output
        return result


def playbook(tmp_path, text, *args, env=None):
    ensure_collection_link()
    path = tmp_path / "play.yml"
    path.write_text(text)
    return subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                           f"ansible_python_interpreter={PYTHON}", str(path), *args],
                          capture_output=True, text=True, env=ansible_env(**(env or {})), timeout=300, check=False,
                          cwd=tmp_path)

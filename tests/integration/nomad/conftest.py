"""A real Nomad for the module tests: ONE `nomad agent -dev` per session on loopback, with the
secure defaults of issue 7 (mutual TLS on HTTP and RPC, ACLs bootstrapped) and the Docker
driver (images never garbage-collected, privileged containers refused).

The modules run as real processes (`python -m ansible_collections...`, the same code Ansible
ships to a host), reading their connection settings from NOMAD_* environment variables like
they would in a playbook; a few tests go through `ansible-playbook` itself."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[3]
COLLECTIONS = REPO / ".build" / "collections"
PYTHON = sys.executable


def _nomad_binary():
    explicit = os.environ.get("NOMAD_BINARY")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    version = None
    for line in (REPO / "scripts" / "versions.env").read_text().splitlines():
        if line.startswith("NOMAD_VERSION="):
            version = line.split("=", 1)[1].strip()
    cache = Path(os.environ.get("CLOUDVIRT_CACHE", Path.home() / ".cache" / "cloudvirt"))
    candidate = cache / "bin" / f"nomad-{version}"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which("nomad")


def _docker_ok():
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_collection_link():
    link = COLLECTIONS / "ansible_collections" / "cloudvirt" / "platform"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../../.."))


class Nomad:
    """Handle on the running agent: address, credentials, a tiny API client for assertions."""

    def __init__(self, binary, workdir, http_port):
        self.binary = binary
        self.workdir = Path(workdir)
        self.address = f"https://127.0.0.1:{http_port}"
        self.http_port = http_port
        self.ca = str(self.workdir / "nomad-agent-ca.pem")
        self.cli_cert = str(self.workdir / "global-cli-nomad.pem")
        self.cli_key = str(self.workdir / "global-cli-nomad-key.pem")
        self.token = None
        self.proc = None
        self.session = requests.Session()
        # no REQUESTS_CA_BUNDLE override of `verify`, no proxy for loopback
        self.session.trust_env = False
        self.session.verify = self.ca
        self.session.cert = (self.cli_cert, self.cli_key)

    # -- API for assertions -------------------------------------------------------------------
    def api(self, method, path, body=None, token=None, ok=(200,), **params):
        headers = {"X-Nomad-Token": token or self.token} if (token or self.token) else {}
        resp = self.session.request(method, self.address + path, json=body, headers=headers, params=params, timeout=30)
        if resp.status_code not in ok:
            raise AssertionError(f"{method} {path} -> {resp.status_code}: {resp.text}")
        return resp.json() if resp.text and resp.headers.get("Content-Type", "").startswith("application/json") else resp.text

    def job(self, job_id, namespace="default"):
        resp = self.session.get(f"{self.address}/v1/job/{job_id}", params={"namespace": namespace},
                                headers={"X-Nomad-Token": self.token}, timeout=30)
        return None if resp.status_code == 404 else resp.json()

    def allocs(self, job_id):
        return self.api("GET", f"/v1/job/{job_id}/allocations")

    def running(self, job_id, group=None):
        return [a for a in self.allocs(job_id)
                if a["ClientStatus"] == "running" and a["DesiredStatus"] == "run" and (group is None or a["TaskGroup"] == group)]

    def node(self):
        return self.api("GET", "/v1/nodes")[0]

    def wait_for(self, what, predicate, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")

    # -- environment for the modules ----------------------------------------------------------
    def env(self, **overrides):
        env = dict(os.environ)
        for key in list(env):
            if key.startswith("NOMAD_"):
                del env[key]
        env.update({
            "NOMAD_ADDR": self.address,
            "NOMAD_TOKEN": self.token,
            "NOMAD_CACERT": self.ca,
            "NOMAD_CLIENT_CERT": self.cli_cert,
            "NOMAD_CLIENT_KEY": self.cli_key,
            "PYTHONPATH": str(COLLECTIONS),
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


def _write_agent_config(nomad, ports):
    (nomad.workdir / "agent.hcl").write_text(f"""
bind_addr = "127.0.0.1"
data_dir  = "{nomad.workdir}/data"
ports {{
  http = {ports[0]}
  rpc  = {ports[1]}
  serf = {ports[2]}
}}
acl {{
  enabled = true
}}
tls {{
  http                = true
  rpc                 = true
  ca_file             = "{nomad.ca}"
  cert_file           = "{nomad.workdir}/global-server-nomad.pem"
  key_file            = "{nomad.workdir}/global-server-nomad-key.pem"
  verify_https_client = true
}}
client {{
  options {{
    # cloud metadata probes only slow the start (and env_aws trips on AWS_CA_BUNDLE)
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }}
}}
# never talk to a Consul some other test may run on this host
disable_update_check = true

consul {{
  address          = "127.0.0.1:1"
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}}
plugin "docker" {{
  config {{
    allow_privileged = false
    gc {{
      image = false
    }}
  }}
}}
""")


def unmount_under(directory):
    """Nomad's client mounts a tmpfs for each task's secrets/ and private/ and leaves them when a
    dev agent exits; unmount those under our work directory (deepest first) so it can be removed."""
    prefix = os.path.realpath(directory) + os.sep
    with open("/proc/mounts") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _stop(nomad):
    if nomad.proc is None or nomad.proc.poll() is not None:
        return
    nomad.proc.send_signal(signal.SIGINT)
    try:
        nomad.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        nomad.proc.kill()
        nomad.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def nomad():
    binary = _nomad_binary()
    if not binary:
        pytest.skip("no nomad binary (scripts/build-binaries.sh nomad builds it; or set NOMAD_BINARY)")
    if not _docker_ok():
        pytest.skip("no working Docker engine (scripts/lib.sh ensure_docker starts one)")
    ensure_collection_link()
    workdir = tempfile.mkdtemp(prefix="nomad-it-")
    http_port = free_port()
    nomad = Nomad(binary, workdir, http_port)
    for args in (["tls", "ca", "create"], ["tls", "cert", "create", "-server", "-region", "global"],
                 ["tls", "cert", "create", "-cli", "-region", "global"]):
        subprocess.run([binary, *args], cwd=workdir, check=True, capture_output=True)
    _write_agent_config(nomad, (http_port, free_port(), free_port()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMAD_") and k != "AWS_CA_BUNDLE"}
    log = open(os.path.join(workdir, "agent.log"), "w")
    nomad.proc = subprocess.Popen([binary, "agent", "-dev", "-config", os.path.join(workdir, "agent.hcl")],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env, start_new_session=True)
    try:
        deadline = time.time() + 90
        while nomad.token is None:
            if nomad.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("nomad agent did not come up:\n" + Path(workdir, "agent.log").read_text()[-4000:])
            try:
                resp = nomad.session.post(nomad.address + "/v1/acl/bootstrap", timeout=5)
                if resp.status_code == 200:
                    nomad.token = resp.json()["SecretID"]
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)

        def ready():
            nodes = nomad.api("GET", "/v1/nodes")
            return nodes and nodes[0]["Status"] == "ready" and nodes[0]["Drivers"].get("docker", {}).get("Healthy")
        nomad.wait_for("the dev agent's client with a healthy docker driver", ready, timeout=90)
        yield nomad
    finally:
        alloc_ids = set()
        try:
            if nomad.token:
                for job in nomad.api("GET", "/v1/jobs", namespace="*"):
                    for alloc in nomad.api("GET", f"/v1/job/{job['ID']}/allocations", namespace=job["Namespace"]):
                        alloc_ids.add(alloc["ID"])
                    nomad.api("DELETE", f"/v1/job/{job['ID']}", namespace=job["Namespace"], purge="true")
        except Exception:  # best effort; the agent may already be gone
            pass
        _stop(nomad)
        log.close()
        # containers of our allocations only (other engineers share this Docker engine)
        for alloc_id in alloc_ids:
            out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.hashicorp.nomad.alloc_id={alloc_id}"],
                                 capture_output=True, text=True, check=False).stdout.split()
            if out:
                subprocess.run(["docker", "rm", "-f", *out], capture_output=True, check=False)
        unmount_under(workdir)
        if os.environ.get("KEEP_NOMAD_WORKDIR"):
            print(f"nomad workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_image():
    """The workload image (scripts/lab-image.sh), by ID: there is no registry here, and Nomad's
    Docker driver always pulls a `:latest` tag while an image ID is looked up locally."""
    candidates = [os.environ.get("CLOUDVIRT_BUSYBOX_IMAGE"), "cloudvirt/busybox:1", "cloudvirt/busybox:latest"]
    for image in filter(None, candidates):
        out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            return out.stdout.strip()
    pytest.fail("the busybox workload image is missing: build it with scripts/lab-image.sh")


class ModuleRunner:
    def __init__(self, nomad, tmp):
        self.nomad = nomad
        self.tmp = Path(tmp)
        self.count = 0

    def __call__(self, module, check=False, diff=False, env=None, process_timeout=400, **args):
        """Run a module like Ansible would on the target; returns its JSON result (plus `_elapsed`)."""
        self.count += 1
        payload = dict(args)
        payload["_ansible_check_mode"] = check
        payload["_ansible_diff"] = diff
        argfile = self.tmp / f"args-{self.count}.json"
        argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
        start = time.time()
        proc = subprocess.run([PYTHON, "-m", f"ansible_collections.cloudvirt.platform.plugins.modules.{module}", str(argfile)],
                              capture_output=True, text=True, env=self.nomad.env(**(env or {})), timeout=process_timeout, check=False)
        elapsed = time.time() - start
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"{module} printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        result["_elapsed"] = elapsed
        # ansible-core 2.19 returns structured warnings; tests read their text
        result["warnings"] = [w if isinstance(w, str) else _event_msg(w.get("event") or {})
                              for w in result.get("warnings", [])]
        return result


def _event_msg(event):
    text = event.get("msg") or ""
    if event.get("chain"):
        text += " " + _event_msg(event["chain"].get("event") or {})
    return text


@pytest.fixture
def run(nomad, tmp_path):
    return ModuleRunner(nomad, tmp_path)


def job_hcl(name, image, count=1, args=("sleep", "3600"), group_extra="", task_extra="", job_extra="", update=None):
    """A small service job on the busybox image that becomes healthy in about a second."""
    update = update or 'min_healthy_time = "1s"\n      healthy_deadline = "20s"\n      progress_deadline = "0"'
    cmd = json.dumps(list(args[1:]))
    return f'''
variable "image" {{
  type    = string
  default = "{image}"
}}

job "{name}" {{
  datacenters = ["*"]
  {job_extra}
  group "web" {{
    count = {count}
    update {{
      {update}
    }}
    restart {{
      attempts = 0
      mode     = "fail"
    }}
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    {group_extra}
    task "server" {{
      driver = "docker"
      kill_timeout = "1s"
      config {{
        image      = var.image
        force_pull = false
        command    = "{args[0]}"
        args       = {cmd}
      }}
      resources {{
        cpu    = 20
        memory = 16
      }}
      {task_extra}
    }}
  }}
}}
'''


@pytest.fixture
def make_job(busybox_image):
    """`make_job(name, count=..., args=..., ...)` -> HCL text of a small service job."""
    def make(name, **kwargs):
        kwargs.setdefault("image", busybox_image)
        return job_hcl(name, **kwargs)
    return make

"""The scenario's Nomad API as the controller reaches it: HTTPS with the controller's client
certificate (the scenario's PKI directory) and the management token from the vaulted file."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
PKI = EPHEMERAL / "pki"


def secrets():
    password = (EPHEMERAL / "vault-pass").read_text().strip().encode()
    vault = VaultLib([("default", VaultSecret(password))])
    return yaml.safe_load(vault.decrypt((EPHEMERAL / "secrets.vault.yml").read_bytes()))


SERVERS = ["172.30.22.11", "172.30.22.12", "172.30.22.13"]


def api(port, method, path, header, token, **kwargs):
    """A call to the first server that answers (the lifecycle tests stop one)."""
    error = None
    for server in SERVERS:
        try:
            r = requests.request(method, f"https://{server}:{port}{path}", timeout=(3, 10), verify=str(PKI / "ca.pem"),
                                 cert=(str(PKI / "cli.pem"), str(PKI / "cli-key.pem")), headers={header: token}, **kwargs)
        except requests.ConnectionError as e:
            error = e
            continue
        if not r.ok:
            raise requests.HTTPError(f"{r.status_code} {method} {path}: {r.text.strip()[:500]}", response=r)
        return r.json() if r.content else None
    raise error


def nomad_get(path, namespace="app"):
    return api(4646, "GET", path, "X-Nomad-Token", secrets()["nomad_management_token"], params={"namespace": namespace})


def nomad_jobs_text():
    """Every registered job of the app, as Nomad stores it (JSON text)."""
    return "\n".join(json.dumps(nomad_get(f"/v1/job/{job['ID']}")) for job in nomad_get("/v1/jobs"))


def nomad_request(method, path, body=None, namespace="app"):
    """A Nomad API call with the management token (the operator's view)."""
    return api(4646, method, path, "X-Nomad-Token", secrets()["nomad_management_token"], params={"namespace": namespace},
               json=body)


def consul_get(path):
    return api(8501, "GET", path, "X-Consul-Token", secrets()["consul_management_token"])


ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))


def run_playbook(playbook, *args, inventories=(), timeout=1800):
    """ansible-playbook on the scenario's inventory (plus `inventories`), as an operator runs it
    from a checkout; the CompletedProcess, with .output = stdout + stderr."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".build" / "collections"),
           "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(EPHEMERAL / "inventory")]
    for inventory in inventories:
        command += ["-i", str(inventory)]
    done = subprocess.run(command + [str(ROOT / "playbooks" / playbook), *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)
    done.output = done.stdout + done.stderr
    return done


def recap(output):
    """{host: {'ok': n, 'changed': n, ...}} from a PLAY RECAP."""
    counts = {}
    for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        counts[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return counts

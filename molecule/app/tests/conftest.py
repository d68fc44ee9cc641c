"""The scenario's Nomad API as the controller reaches it: HTTPS with the controller's client
certificate (the scenario's PKI directory) and the management token from the vaulted file."""
import json
import os
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
sys.path.insert(0, str(ROOT / "tests" / "support"))
from playbooks import recap, run_playbook, said  # noqa: E402,F401  (the tests import them from here)


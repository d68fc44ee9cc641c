"""The scenario's Nomad API as the controller reaches it: HTTPS with the controller's client
certificate (the scenario's PKI directory) and the management token from the vaulted file."""
import json
import os
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


def nomad_get(path, namespace="app"):
    r = requests.get(f"https://172.30.22.11:4646{path}", params={"namespace": namespace}, timeout=10,
                     verify=str(PKI / "ca.pem"), cert=(str(PKI / "cli.pem"), str(PKI / "cli-key.pem")),
                     headers={"X-Nomad-Token": secrets()["nomad_management_token"]})
    r.raise_for_status()
    return r.json()


def nomad_jobs_text():
    """Every registered job of the app, as Nomad stores it (JSON text)."""
    return "\n".join(json.dumps(nomad_get(f"/v1/job/{job['ID']}")) for job in nomad_get("/v1/jobs"))

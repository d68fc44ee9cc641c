"""The lab (`make lab`) as the benchmark scripts see it: its inventory, and its Nomad and Consul
APIs over HTTPS with the controller's client certificate and the vaulted tokens (the secure
defaults; see docs/security.md)."""
import json
import os
import ssl
import sys
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".build" / "collections"))

from ansible.parsing.vault import VaultLib, VaultSecret  # noqa: E402
from ansible_collections.cloudvirt.platform.plugins.module_utils.nomad import NomadClient, NomadError  # noqa: E402,F401

INVENTORY = REPO / "inventories" / "lab"
KEY_DIR = Path(os.environ.get("CLOUDVIRT_CACHE", Path.home() / ".cache" / "cloudvirt")) / "lab"
PKI = KEY_DIR / "pki"


def inventory():
    """(hosts {name: address}, groups {name: [hosts]}, group_vars of all)."""
    if not (INVENTORY / "hosts.yml").exists():
        raise SystemExit("no lab inventory; run `make lab` first")
    data = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]
    hosts = {name: h["ansible_host"] for name, h in data["hosts"].items()}
    groups = {name: list(g["hosts"]) for name, g in data["children"].items()}
    group_vars = yaml.safe_load((INVENTORY / "group_vars" / "all" / "main.yml").read_text())
    return hosts, groups, group_vars


def secrets():
    password = (KEY_DIR / "vault-pass").read_text().strip().encode()
    vault = VaultLib([("default", VaultSecret(password))])
    return yaml.safe_load(vault.decrypt((KEY_DIR / "secrets.vault.yml").read_bytes()))


def nomad(namespace="app"):
    """A Nomad client with the deploy token; NOMAD_* variables override the lab's defaults."""
    hosts, groups, _ = inventory()
    first = hosts[groups["nomad_servers"][0]]
    return NomadClient(address=os.environ.get("NOMAD_ADDR") or f"https://{first}:4646",
                       token=os.environ.get("NOMAD_TOKEN") or secrets()["nomad_deploy_token"],
                       ca_cert=os.environ.get("NOMAD_CACERT") or str(PKI / "ca.pem"),
                       client_cert=os.environ.get("NOMAD_CLIENT_CERT") or str(PKI / "cli.pem"),
                       client_key=os.environ.get("NOMAD_CLIENT_KEY") or str(PKI / "cli-key.pem"),
                       namespace=namespace)


def consul_get(address, path):
    context = ssl.create_default_context(cafile=str(PKI / "ca.pem"))
    context.load_cert_chain(str(PKI / "cli.pem"), str(PKI / "cli-key.pem"))
    request = urllib.request.Request(f"https://{address}:8501{path}",
                                     headers={"X-Consul-Token": secrets()["consul_management_token"]})
    with urllib.request.urlopen(request, timeout=5, context=context) as r:
        return json.load(r)

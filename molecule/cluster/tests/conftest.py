"""Fixtures for the cluster scenario: load the lab's busybox image into every node's Docker
(no registry exists here) before the job test runs; the scenario's tokens, read from the
vaulted token file on the controller the way the roles read them; and the controller's view of
the Nomad and Consul APIs (HTTPS with the controller's client certificate, tokens)."""
import functools
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

NODES = ["cluster-node1", "cluster-node2", "cluster-node3"]
ADDRESSES = ["172.30.20.11", "172.30.20.12", "172.30.20.13"]
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
PKI = EPHEMERAL / "pki"
# Jobs of the tests go where the deploy token may write.
NAMESPACE = "app"


@pytest.fixture(scope="session")
def busybox_loaded():
    for node in NODES:
        have = subprocess.run(
            ["docker", "exec", node, "docker", "image", "inspect", "cloudvirt/busybox:1"],
            capture_output=True,
        )
        if have.returncode != 0:
            save = subprocess.Popen(["docker", "save", "cloudvirt/busybox:1"], stdout=subprocess.PIPE)
            subprocess.run(["docker", "exec", "-i", node, "docker", "load", "-q"], stdin=save.stdout, check=True,
                           capture_output=True)
            assert save.wait() == 0
    return "cloudvirt/busybox:1"


@functools.lru_cache(maxsize=None)
def load_secrets():
    password = (EPHEMERAL / "vault-pass").read_text().strip().encode()
    vault = VaultLib([("default", VaultSecret(password))])
    return yaml.safe_load(vault.decrypt((EPHEMERAL / "secrets.vault.yml").read_bytes()))


@pytest.fixture(scope="session")
def secrets():
    return load_secrets()


def _api(port, header, token, method, path, body=None, params=None):
    errors = []
    for address in ADDRESSES:
        try:
            r = requests.request(method, f"https://{address}:{port}{path}", json=body, params=params, timeout=10,
                                 verify=str(PKI / "ca.pem"), cert=(str(PKI / "cli.pem"), str(PKI / "cli-key.pem")),
                                 headers={header: token})
        except requests.ConnectionError as e:
            errors.append(f"{address}: {e}")
            continue
        r.raise_for_status()
        return r.json() if r.content else None
    raise AssertionError(f"no API answers on port {port}: {errors}")


def nomad_api(method, path, body=None):
    """One call to Nomad's API from the controller with the deploy token in its namespace,
    through the first node that answers (a test may have stopped one)."""
    return _api(4646, "X-Nomad-Token", load_secrets()["nomad_deploy_token"], method, path, body,
                params={"namespace": NAMESPACE})


def consul_api(method, path, body=None):
    """One call to Consul's HTTPS API from the controller with the management token."""
    return _api(8501, "X-Consul-Token", load_secrets()["consul_management_token"], method, path, body)


def sh(node, command):
    """`command` in a node's shell; its stdout (fails the test on a non-zero exit)."""
    done = subprocess.run(["docker", "exec", node, "sh", "-c", command], capture_output=True, text=True)
    assert done.returncode == 0, f"{node}: {command!r}: {done.stderr or done.stdout}"
    return done.stdout


def wait_for(predicate, timeout, what):
    """Polls `predicate` every second until it is true; fails naming `what` after `timeout` s."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return
        except (AssertionError, OSError):  # requests' errors are OSErrors
            pass
        time.sleep(1)
    raise AssertionError(f"not within {timeout} s: {what}")

"""Fixtures for the cluster scenario: load the lab's busybox image into every node's Docker
(no registry exists here) before the job test runs; the scenario's tokens, read from the
vaulted token file on the controller the way the roles read them."""
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

NODES = ["cluster-node1", "cluster-node2", "cluster-node3"]


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


@pytest.fixture(scope="session")
def secrets():
    ephemeral = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    password = (ephemeral / "vault-pass").read_text().strip().encode()
    vault = VaultLib([("default", VaultSecret(password))])
    return yaml.safe_load(vault.decrypt((ephemeral / "secrets.vault.yml").read_bytes()))

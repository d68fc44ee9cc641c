"""Secrets of the scenario, read on the controller the way the roles read them: the vaulted
token file and the CA in the scenario's ephemeral directory (molecule.yml group_vars)."""
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret


@pytest.fixture(scope="session")
def ephemeral():
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


@pytest.fixture(scope="session")
def secrets(ephemeral):
    password = (ephemeral / "vault-pass").read_text().strip().encode()
    vault = VaultLib([("default", VaultSecret(password))])
    return yaml.safe_load(vault.decrypt((ephemeral / "secrets.vault.yml").read_bytes()))


@pytest.fixture(scope="session")
def busybox_loaded():
    """The lab's busybox image in the node's Docker (no registry exists here)."""
    node = "nomad-node1"
    have = subprocess.run(["docker", "exec", node, "docker", "image", "inspect", "cloudvirt/busybox:1"],
                          capture_output=True, check=False)
    if have.returncode != 0:
        save = subprocess.Popen(["docker", "save", "cloudvirt/busybox:1"], stdout=subprocess.PIPE)
        subprocess.run(["docker", "exec", "-i", node, "docker", "load", "-q"], stdin=save.stdout, check=True,
                       capture_output=True)
        assert save.wait() == 0
    return "cloudvirt/busybox:1"

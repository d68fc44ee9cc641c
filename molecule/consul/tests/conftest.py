"""Secrets of the scenario, read on the controller the way the roles read them: the vaulted
token file and the CA in the scenario's ephemeral directory (molecule.yml group_vars)."""
import os
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

"""Every plugin's documentation renders with ansible-doc (no Nomad needed)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import COLLECTIONS, REPO, ensure_collection_link  # noqa: E402

MODULES = ["nomad_job", "nomad_job_revert", "nomad_job_scale", "nomad_node", "nomad_variable", "nomad_job_info", "nomad_node_info"]


@pytest.mark.parametrize("kind,name", [("module", m) for m in MODULES] + [("inventory", "nomad")])
def test_ansible_doc_renders(kind, name):
    ensure_collection_link()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(["ansible-doc", "-t", kind, f"cloudvirt.platform.{name}"], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "[WARNING]" not in proc.stderr, proc.stderr
    for option in ("address", "token", "ca_cert", "client_cert", "client_key", "validate_certs"):
        assert option in proc.stdout, (name, option)
    if kind == "module":
        assert "EXAMPLES" in proc.stdout and "RETURN VALUES" in proc.stdout

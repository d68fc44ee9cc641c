"""The collection tarball installs, ships only the collection, and its roles, playbooks and
plugins resolve by FQCN from the installed copy (not this checkout)."""
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("collection")
    subprocess.run(["ansible-galaxy", "collection", "build", "--force", "--output-path", str(work), str(ROOT)],
                   check=True, capture_output=True, cwd=work)
    tarball = next(work.glob("cloudvirt-platform-*.tar.gz"))
    dest = work / "installed"
    subprocess.run(["ansible-galaxy", "collection", "install", "--force", "-p", str(dest), str(tarball)],
                   check=True, capture_output=True, cwd=work)
    # Outside the checkout, with only the installed copy on the collections path.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_COLLECTIONS_PATH"] = str(dest)
    return tarball, env, work


def test_tarball_leaves_out_what_is_not_the_collection(installed):
    tarball = installed[0]
    with tarfile.open(tarball) as tar:
        top = {name.split("/")[0] for name in tar.getnames()}
    assert {"roles", "plugins", "playbooks", "meta"} <= top
    assert not top & {"app", "scripts", "molecule", ".venv", ".build", ".git", "ansible.cfg"}, top


def test_deploy_playbook_runs_by_fqcn(installed):
    env, work = installed[1], installed[2]
    out = subprocess.run(
        ["ansible-playbook", "-i", str(ROOT / "inventories/example"), "cloudvirt.platform.deploy", "--syntax-check"],
        capture_output=True, text=True, env=env, cwd=work, check=False)
    assert out.returncode == 0, out.stderr
    assert "installed/ansible_collections/cloudvirt/platform/playbooks/deploy.yml" in out.stdout


@pytest.mark.parametrize("kind,name", [("module", "nomad_job"), ("role", "consul"), ("role", "nomad"),
                                       ("filter", "inventory_addresses"), ("inventory", "nomad")])
def test_docs_render_from_the_installed_copy(installed, kind, name):
    env, work = installed[1], installed[2]
    out = subprocess.run(["ansible-doc", "-t", kind, f"cloudvirt.platform.{name}"],
                         capture_output=True, text=True, env=env, cwd=work, check=False)
    assert out.returncode == 0 and "installed/ansible_collections" in out.stdout, out.stderr

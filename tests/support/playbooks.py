"""The project's playbooks run from a Molecule test the way an operator runs them from a
checkout: ansible-playbook on the scenario's inventory (which carries the scenario's settings
and vault password), the collection from the checkout, plain output to assert on."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[2]))
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))


def run_playbook(playbook, *args, inventories=(), timeout=1800):
    """ansible-playbook playbooks/<playbook> on the scenario's inventory (plus `inventories`);
    the CompletedProcess, with .output = stdout + stderr."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".build" / "collections"),
           "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(EPHEMERAL / "inventory")]
    for inventory in inventories:
        command += ["-i", str(inventory)]
    done = subprocess.run(command + [str(ROOT / "playbooks" / playbook), *args], env=env, stdin=subprocess.DEVNULL,
                          check=False, capture_output=True, text=True, timeout=timeout)
    done.output = done.stdout + done.stderr
    return done


def recap(output):
    """{host: {'ok': n, 'changed': n, ...}} from a PLAY RECAP."""
    counts = {}
    for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        counts[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return counts


def said(done, text):
    """Whether the play's output says `text` (the YAML callback folds long messages)."""
    return " ".join(text.split()) in " ".join(done.output.split())

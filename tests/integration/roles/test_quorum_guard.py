"""The consul and nomad roles refuse an inventory that cannot keep quorum, before touching
any host, and say what to do. Runs the roles' real assert tasks with ansible-playbook."""
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def run_assert(tmp_path, role, servers, extra=""):
    hosts = "\n".join(f"        n{i}: {{ansible_connection: local, ansible_python_interpreter: python3}}"
                      for i in range(servers))
    inv = tmp_path / "hosts.yml"
    inv.write_text(textwrap.dedent(f"""\
        all:
          children:
            {role}_servers:
              hosts:
        """) + hosts + "\n")
    play = tmp_path / "play.yml"
    play.write_text(textwrap.dedent(f"""\
        - hosts: all
          gather_facts: false
          tasks:
            - ansible.builtin.include_role:
                name: cloudvirt.platform.{role}
                tasks_from: assert
        """))
    return subprocess.run(
        ["ansible-playbook", "-i", str(inv), str(play)] + (["-e", extra] if extra else []),
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        # One JSON result per line: messages are not folded, so they can be matched.
        env={**os.environ, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_NOCOLOR": "1",
             "ANSIBLE_FORCE_COLOR": "0"},
    )


@pytest.mark.parametrize("role", ["consul", "nomad"])
def test_two_servers_are_refused_with_advice(tmp_path, role):
    result = run_assert(tmp_path, role, 2)
    assert result.returncode != 0
    assert "has 2" in result.stdout and "Use 3 (or 5) servers" in result.stdout, result.stdout


@pytest.mark.parametrize("role", ["consul", "nomad"])
def test_two_servers_pass_when_explicitly_allowed(tmp_path, role):
    result = run_assert(tmp_path, role, 2, f"{role}_allow_unsafe_server_count=true")
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("role", ["consul", "nomad"])
def test_four_servers_warn(tmp_path, role):
    result = run_assert(tmp_path, role, 4)
    assert result.returncode == 0, result.stdout
    assert "An even number tolerates no more failures" in result.stdout


@pytest.mark.parametrize("role", ["consul", "nomad"])
def test_three_servers_pass_silently(tmp_path, role):
    result = run_assert(tmp_path, role, 3)
    assert result.returncode == 0, result.stdout
    assert "WARNING" not in result.stdout

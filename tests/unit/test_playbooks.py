"""Structural rules of the playbooks: every play that applies the haproxy role first runs
tasks/edge_tls.yml, which gives HAProxy its certificate from the internal CA when
cloudvirt_edge_tls_internal is on; a play without it would configure HAProxy without TLS."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yml"))
HAPROXY = {"cloudvirt.platform.haproxy", "haproxy"}


def steps(tasks):
    """What a task list runs, in order, through blocks: ('role', name) or ('tasks', file)."""
    for task in tasks or []:
        for key in ("block", "rescue", "always"):
            yield from steps(task.get(key))
        for action in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
            if action in task:
                yield "role", task[action]["name"]
        for action in ("ansible.builtin.include_tasks", "ansible.builtin.import_tasks", "include_tasks", "import_tasks"):
            if action in task:
                yield "tasks", Path(task[action]).name


def play_steps(play):
    yield from steps(play.get("pre_tasks"))
    for role in play.get("roles") or []:
        yield "role", role["role"] if isinstance(role, dict) else role
    yield from steps(play.get("tasks"))


def haproxy_plays():
    for path in PLAYBOOKS:
        for play in yaml.safe_load(path.read_text()) or []:
            run = list(play_steps(play))
            if any(kind == "role" and name in HAPROXY for kind, name in run):
                yield pytest.param(run, id=f"{path.name}: {play.get('name')}")


@pytest.mark.parametrize("run", list(haproxy_plays()))
def test_edge_certificate_comes_before_the_haproxy_role(run):
    first_haproxy = next(i for i, (kind, name) in enumerate(run) if kind == "role" and name in HAPROXY)
    assert ("tasks", "edge_tls.yml") in run[:first_haproxy], run


def test_the_rule_sees_the_plays_that_apply_haproxy():
    assert len(list(haproxy_plays())) >= 2  # deploy.yml's edge play and upgrade.yml's node play

"""Fixtures for the cluster scenario: load the lab's busybox image into every node's Docker
(no registry exists here) before the job test runs."""
import subprocess

import pytest

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

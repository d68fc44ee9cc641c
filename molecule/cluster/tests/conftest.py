"""Fixtures for the cluster scenario: load the lab's busybox image into every node's Docker
(no registry exists here) before the job test runs."""
import subprocess

import pytest
import requests

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


ADDRESSES = ["172.30.20.11", "172.30.20.12", "172.30.20.13"]


def nomad_api(method, path, body=None):
    """One call to the Nomad HTTP API from the controller, through the first node that answers
    (a test may have stopped one). Returns the decoded JSON, or None for an empty answer."""
    errors = []
    for address in ADDRESSES:
        try:
            r = requests.request(method, f"http://{address}:4646{path}", json=body, timeout=10)
        except requests.ConnectionError as e:
            errors.append(f"{address}: {e}")
            continue
        r.raise_for_status()
        return r.json() if r.content else None
    raise AssertionError(f"no Nomad API answers: {errors}")

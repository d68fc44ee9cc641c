"""Helpers for the keepalived scenario: commands on the nodes through `docker exec`, and the
VIP as the controller sees it (the host reaches the scenario's docker network directly)."""
import subprocess
import time
import urllib.request

import pytest

NODES = ["keepalived-node1", "keepalived-node2"]
VIP = "172.30.13.100"


def sh(node, command, check=True):
    done = subprocess.run(["docker", "exec", node, "sh", "-c", command], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"{node}: {command!r} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def holders():
    """Nodes with the VIP on an interface."""
    return [n for n in NODES if f" {VIP}/" in sh(n, "ip -o -4 addr show")]


def vip_answer():
    """Which node answers on the VIP (the stand-in health endpoint returns the node name)."""
    try:
        with urllib.request.urlopen(f"http://{VIP}:8404/healthz", timeout=1) as r:
            return r.read().decode().strip()
    except OSError:
        return None


def wait_for(predicate, timeout, what, step=0.1):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(step)
    raise AssertionError(f"not within {timeout}s: {what}")


@pytest.fixture
def settled():
    """The steady state every test starts from: node1 (highest priority) holds the VIP alone."""
    wait_for(lambda: holders() == ["keepalived-node1"] and vip_answer() == "keepalived-node1", 30,
             "node1 alone holds the VIP and answers on it")

"""The edge, seen from the controller: the floating IP reaches a service Nomad runs, requests
spread over its instances, and the IP moves when the holder's HAProxy stops or the holder
itself goes away.

A small web job (three busybox httpd instances registered in Consul as `frontend`, the
default route of the haproxy role) stands in for the app. The failover tests run last in this
file (pytest keeps file order) because they stop services and a whole node."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import NAMESPACE, NODES, consul_api, nomad_api

sys.path.insert(0, str(Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
                       / "tests" / "support"))
from requestloop import RequestLoop  # noqa: E402

VIP = "172.30.20.100"
ADDRESSES = {"cluster-node1": "172.30.20.11", "cluster-node2": "172.30.20.12", "cluster-node3": "172.30.20.13"}
JOB = "edge-web"

# Measured times go to the JUnit report as properties (molecule's report uses xunit2).
pytestmark = pytest.mark.filterwarnings("ignore:record_property is incompatible")


def sh(node, command, check=True):
    done = subprocess.run(["docker", "exec", node, "sh", "-c", command], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"{node}: {command!r} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def holders():
    """Nodes with the VIP on an interface (a stopped node holds nothing)."""
    found = []
    for node in NODES:
        done = subprocess.run(["docker", "exec", node, "ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
        if done.returncode == 0 and f" {VIP}/" in done.stdout:
            found.append(node)
    return found


def get(address=VIP, path="/", timeout=2):
    """(status, body) of one request on a fresh connection; (None, error) when it fails."""
    try:
        r = requests.get(f"http://{address}{path}", timeout=timeout, headers={"Connection": "close"})
        return r.status_code, r.text.strip()
    except requests.RequestException as e:
        return None, type(e).__name__


def wait_for(predicate, timeout, what, step=0.2):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(step)
    raise AssertionError(f"not within {timeout}s: {what}")


@pytest.fixture(scope="module")
def web(busybox_loaded):
    job = {
        "Job": {
            "ID": JOB, "Name": JOB, "Namespace": NAMESPACE, "Type": "service", "Datacenters": ["*"],
            "TaskGroups": [{
                "Name": "web", "Count": 3,
                "Spreads": [{"Attribute": "${node.unique.id}", "Weight": 100}],
                "Networks": [{"DynamicPorts": [{"Label": "http", "To": 8080}]}],
                "Services": [{
                    "Name": "frontend", "PortLabel": "http", "Provider": "consul",
                    "Checks": [{"Type": "http", "Path": "/healthz", "Interval": 2_000_000_000,
                                "Timeout": 1_000_000_000}],
                }],
                "Tasks": [{
                    "Name": "httpd", "Driver": "docker",
                    "Config": {"image": busybox_loaded, "force_pull": False, "ports": ["http"],
                               "command": "httpd", "args": ["-f", "-p", "8080", "-h", "/local/www"]},
                    "Templates": [
                        {"EmbeddedTmpl": '{{ env "NOMAD_ALLOC_NAME" }}\n',
                         "DestPath": "local/www/index.html"},
                        {"EmbeddedTmpl": "ok\n", "DestPath": "local/www/healthz"},
                    ],
                    "Resources": {"CPU": 50, "MemoryMB": 32},
                }],
            }],
        }
    }
    nomad_api("PUT", "/v1/jobs", job)

    def passing():
        allocs = nomad_api("GET", f"/v1/job/{JOB}/allocations") or []
        running = [a for a in allocs if a["ClientStatus"] == "running"]
        checks = consul_api("GET", "/v1/health/service/frontend?passing")
        return len(running) == 3 and len(checks) == 3

    wait_for(passing, 180, "three instances running and passing their Consul check", step=1)
    yield JOB
    nomad_api("DELETE", f"/v1/job/{JOB}?purge=true")


def test_exactly_one_node_holds_the_vip_the_first_of_the_group():
    wait_for(lambda: holders() == ["cluster-node1"], 30, "node1 (highest priority) alone holds the VIP")


def test_unicast_vrrp_peers_are_the_other_edge_nodes():
    config = sh("cluster-node1", "cat /etc/keepalived/keepalived.conf")
    peers = config.split("unicast_peer {")[1].split("}")[0].split()
    assert sorted(peers) == ["172.30.20.12", "172.30.20.13"]


@pytest.mark.usefixtures("web")
def test_floating_ip_reaches_the_service_and_spreads_over_instances():
    # HAProxy learns new instances from the local Consul DNS (every haproxy_resolver_hold_valid)
    # and puts each in rotation after its own checks pass (rise): seconds after Consul has them
    # passing, which is when the fixture returns.
    seen = []

    def spread():
        bodies = [get()[1] for _ in range(30)]
        seen[:] = bodies
        return {b for b in bodies if b.startswith(JOB)} == {f"{JOB}.web[{i}]" for i in range(3)}

    try:
        wait_for(spread, 30, "30 requests through the VIP reach all three instances", step=1)
    except AssertionError as e:
        raise AssertionError(f"{e}; the last 30 answers: {seen}") from None
    # The instances run on three different nodes (the job spreads them).
    running = [a for a in nomad_api("GET", f"/v1/job/{JOB}/allocations") if a["ClientStatus"] == "running"]
    assert len({a["NodeID"] for a in running}) == 3


@pytest.mark.usefixtures("web")
def test_every_edge_node_serves_on_its_own_address():
    for node, address in ADDRESSES.items():
        wait_for(lambda: get(address)[0] == 200, 30, f"{node}'s HAProxy serves the service (see the test above)")
        status, body = get(address)
        assert status == 200 and body.startswith(JOB), (node, status, body)


@pytest.mark.usefixtures("web")
def test_vip_leaves_a_node_whose_haproxy_stops(record_property):
    wait_for(lambda: holders() == ["cluster-node1"], 30, "node1 holds the VIP")
    loop = RequestLoop(f"http://{VIP}/", timeout=1.0)
    loop.start()
    sh("cluster-node1", "systemctl stop haproxy")
    try:
        moved = wait_for(lambda: len(holders()) == 1 and holders()[0] != "cluster-node1", 15,
                         "the VIP moves off the node whose HAProxy stopped")
        wait_for(lambda: get()[0] == 200, 10, "the VIP serves again from the new holder")
        record_property("vip_moved_after_haproxy_stop_s", round(moved, 2))
    finally:
        sh("cluster-node1", "systemctl start haproxy")
    back = wait_for(lambda: holders() == ["cluster-node1"], 30, "node1 takes the VIP back once HAProxy serves")
    record_property("vip_back_after_haproxy_start_s", round(back, 2))
    time.sleep(2)
    loop.stop()
    record_property("haproxy_stop_failed_requests", len(loop.failed()))
    record_property("haproxy_stop_failure_window_s", round(loop.window(), 2))
    assert loop.window() < 5, f"requests failed for {loop.window():.2f}s ({len(loop.failed())} failed)"
    assert loop.results[-1][2] == 200, "the VIP does not answer after node1 took it back"


@pytest.mark.usefixtures("web")
def test_vip_moves_and_service_answers_when_the_holder_stops(record_property):
    wait_for(lambda: holders() == ["cluster-node1"], 30, "node1 holds the VIP")
    loop = RequestLoop(f"http://{VIP}/", timeout=1.0)
    loop.start()
    time.sleep(1)
    subprocess.run(["docker", "stop", "cluster-node1"], check=True, capture_output=True)
    try:
        moved = wait_for(lambda: len(holders()) == 1, 15, "another node takes the VIP")
        record_property("vip_moved_after_node_stop_s", round(moved, 2))
        # The instance on the stopped node is taken out by HAProxy's checks and Consul.
        wait_for(lambda: all(get()[0] == 200 for _ in range(10)), 30,
                 "ten requests in a row succeed through the VIP")
        time.sleep(1)
        loop.stop()
        record_property("node_stop_failed_requests", len(loop.failed()))
        record_property("node_stop_failure_window_s", round(loop.window(), 2))
        print(f"node stop: {len(loop.failed())} of {len(loop.results)} requests failed, "
              f"window {loop.window() * 1000:.0f} ms")
        assert loop.window() < 5, f"requests failed for {loop.window():.2f}s ({len(loop.failed())} failed)"
    finally:
        if loop.is_alive():
            loop.stop()
        subprocess.run(["docker", "start", "cluster-node1"], check=True, capture_output=True)
    # The node boots again, rejoins and takes the VIP back (preemption).
    wait_for(lambda: holders() == ["cluster-node1"], 180, "the restarted node1 rejoins and holds the VIP", step=1)
    wait_for(lambda: get()[0] == 200, 30, "the VIP serves from node1 again")

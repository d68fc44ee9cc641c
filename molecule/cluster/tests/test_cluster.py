"""Three nodes, each a Consul and Nomad server and client: the cluster a user gets.

Runs on every node (testinfra), asserting what an operator would check by hand."""
import json
import time

import pytest

ADDRESSES = {"172.30.20.11", "172.30.20.12", "172.30.20.13"}


def api(host, url):
    return json.loads(host.check_output(f"curl -sf {url}"))


def consul(host, path):
    return api(host, f"http://127.0.0.1:8500{path}")


def nomad(host, path):
    return api(host, f"http://127.0.0.1:4646{path}")


def test_consul_has_three_alive_members(host):
    members = consul(host, "/v1/agent/members")
    alive = {m["Addr"] for m in members if m["Status"] == 1}
    assert alive == ADDRESSES


def test_consul_raft_has_leader_and_three_voters(host):
    raft = consul(host, "/v1/operator/raft/configuration")
    voters = [s for s in raft["Servers"] if s["Voter"]]
    assert len(voters) == 3
    assert sum(1 for s in raft["Servers"] if s["Leader"]) == 1


def test_consul_gossip_uses_one_shared_key(host):
    out = host.check_output("consul keyring -list")
    assert "[3/3]" in out or "3/3" in out, out


def test_nomad_three_servers_with_a_leader(host):
    members = nomad(host, "/v1/agent/members")["Members"]
    assert {m["Addr"] for m in members if m["Status"] == "alive"} == ADDRESSES
    assert nomad(host, "/v1/status/leader").split(":")[0] in ADDRESSES
    assert len(nomad(host, "/v1/status/peers")) == 3


def test_nomad_three_ready_clients_with_docker_healthy(host):
    nodes = nomad(host, "/v1/nodes?resources=false")
    assert len(nodes) == 3
    for n in nodes:
        assert n["Status"] == "ready" and n["SchedulingEligibility"] == "eligible", n
        docker = n["Drivers"]["docker"]
        assert docker["Detected"] and docker["Healthy"], (n["Name"], docker)


def test_nomad_registered_in_consul(host):
    services = consul(host, "/v1/catalog/services")
    assert "nomad" in services and "nomad-client" in services


@pytest.mark.usefixtures("busybox_loaded")
def test_docker_job_runs_on_every_client(host):
    if host.backend.get_hostname() != "cluster-node1":
        pytest.skip("submitted once, from node1")
    job = {
        "Job": {
            "ID": "smoke", "Name": "smoke", "Type": "system", "Datacenters": ["*"],
            "TaskGroups": [{
                "Name": "smoke",
                "Tasks": [{
                    "Name": "web", "Driver": "docker",
                    "Config": {"image": "cloudvirt/busybox:1", "force_pull": False,
                               "command": "httpd", "args": ["-f", "-p", "8080", "-h", "/www"]},
                    "Resources": {"CPU": 50, "MemoryMB": 32},
                }],
            }],
        }
    }
    host.check_output("curl -sf -X PUT -d %s http://127.0.0.1:4646/v1/jobs", json.dumps(job))
    deadline = time.time() + 120
    running = []
    while time.time() < deadline:
        allocs = nomad(host, "/v1/job/smoke/allocations")
        running = [a for a in allocs if a["ClientStatus"] == "running"]
        if len(running) == 3:
            break
        time.sleep(2)
    states = [(a["NodeName"], a["ClientStatus"], a.get("TaskStates")) for a in allocs]
    host.run("curl -sf -X DELETE 'http://127.0.0.1:4646/v1/job/smoke?purge=true'")
    assert len(running) == 3, states
    assert len({a["NodeID"] for a in running}) == 3

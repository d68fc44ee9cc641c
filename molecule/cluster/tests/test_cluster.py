"""Three nodes, each a Consul and Nomad server and client: the cluster a user gets, with TLS
and ACLs on (the defaults).

Runs on every node (testinfra), asserting what an operator would check by hand."""
import json
import time

import pytest

ADDRESSES = {"172.30.20.11", "172.30.20.12", "172.30.20.13"}
CONSUL_TLS = "--cacert /etc/consul.d/tls/ca.pem --cert /etc/consul.d/tls/cert.pem --key /etc/consul.d/tls/key.pem"
NOMAD_TLS = "--cacert /etc/nomad.d/tls/ca.pem --cert /etc/nomad.d/tls/cert.pem --key /etc/nomad.d/tls/key.pem"


@pytest.fixture
def consul(host, secrets):
    def get(path):
        return json.loads(host.check_output(
            f"curl -sf {CONSUL_TLS} -H 'X-Consul-Token: {secrets['consul_management_token']}' https://127.0.0.1:8501{path}"))
    return get


@pytest.fixture
def nomad(host, secrets):
    def get(path, token=None):
        token = token or secrets["nomad_management_token"]
        return json.loads(host.check_output(
            f"curl -sf {NOMAD_TLS} -H 'X-Nomad-Token: {token}' 'https://127.0.0.1:4646{path}'"))
    return get


def test_consul_has_three_alive_members(consul):
    members = consul("/v1/agent/members")
    alive = {m["Addr"] for m in members if m["Status"] == 1}
    assert alive == ADDRESSES


def test_consul_raft_has_leader_and_three_voters(consul):
    raft = consul("/v1/operator/raft/configuration")
    voters = [s for s in raft["Servers"] if s["Voter"]]
    assert len(voters) == 3
    assert sum(1 for s in raft["Servers"] if s["Leader"]) == 1


def test_consul_gossip_uses_one_shared_key(host, secrets):
    env = ("CONSUL_HTTP_ADDR=https://127.0.0.1:8501 CONSUL_CACERT=/etc/consul.d/tls/ca.pem "
           "CONSUL_CLIENT_CERT=/etc/consul.d/tls/cert.pem CONSUL_CLIENT_KEY=/etc/consul.d/tls/key.pem "
           f"CONSUL_HTTP_TOKEN={secrets['consul_management_token']}")
    out = host.check_output(f"{env} consul keyring -list")
    assert "[3/3]" in out or "3/3" in out, out


def test_nomad_three_servers_with_a_leader(nomad):
    members = nomad("/v1/agent/members")["Members"]
    assert {m["Addr"] for m in members if m["Status"] == "alive"} == ADDRESSES
    assert nomad("/v1/status/leader").split(":")[0] in ADDRESSES
    assert len(nomad("/v1/status/peers")) == 3


def test_nomad_three_ready_clients_with_docker_healthy(nomad):
    nodes = nomad("/v1/nodes?resources=false")
    assert len(nodes) == 3
    for n in nodes:
        assert n["Status"] == "ready" and n["SchedulingEligibility"] == "eligible", n
        docker = n["Drivers"]["docker"]
        assert docker["Detected"] and docker["Healthy"], (n["Name"], docker)


def test_nomad_registered_in_consul(consul):
    # Nomad registers itself with its Consul token (consul_nomad_token)
    services = consul("/v1/catalog/services")
    assert "nomad" in services and "nomad-client" in services


@pytest.mark.usefixtures("busybox_loaded")
def test_docker_job_runs_on_every_client(host, nomad, secrets):
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
    # submitted with the deploy token, in the applications' namespace
    deploy = secrets["nomad_deploy_token"]
    job["Job"]["Namespace"] = "app"
    host.check_output(f"curl -sf {NOMAD_TLS} -H 'X-Nomad-Token: {deploy}' -X PUT -d %s "
                      "'https://127.0.0.1:4646/v1/jobs?namespace=app'", json.dumps(job))
    deadline = time.time() + 120
    running = []
    while time.time() < deadline:
        allocs = nomad("/v1/job/smoke/allocations?namespace=app", token=deploy)
        running = [a for a in allocs if a["ClientStatus"] == "running"]
        if len(running) == 3:
            break
        time.sleep(2)
    states = [(a["NodeName"], a["ClientStatus"], a.get("TaskStates")) for a in allocs]
    host.run(f"curl -sf {NOMAD_TLS} -H 'X-Nomad-Token: {deploy}' -X DELETE "
             "'https://127.0.0.1:4646/v1/job/smoke?purge=true&namespace=app'")
    assert len(running) == 3, states
    assert len({a["NodeID"] for a in running}) == 3

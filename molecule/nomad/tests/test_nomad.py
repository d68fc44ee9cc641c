"""Nomad on one node: server elected, client ready with a healthy docker driver."""
import json


def nomad_api(host, path):
    return json.loads(host.check_output(f"curl -sf http://127.0.0.1:4646{path}"))


def test_agent_running(host):
    svc = host.service("nomad")
    assert svc.is_running and svc.is_enabled


def test_leader_elected(host):
    assert nomad_api(host, "/v1/status/leader").startswith("172.30.11.11:")


def test_client_ready_with_docker_driver_healthy(host):
    nodes = nomad_api(host, "/v1/nodes")
    assert len(nodes) == 1 and nodes[0]["Status"] == "ready"
    node = nomad_api(host, f"/v1/node/{nodes[0]['ID']}")
    docker = node["Drivers"]["docker"]
    assert docker["Detected"] and docker["Healthy"], docker


def test_gossip_key_written_and_private(host):
    f = host.file("/etc/nomad.d/gossip.hcl")
    assert f.exists and f.mode == 0o640
    members = nomad_api(host, "/v1/agent/members")
    assert members["Members"][0]["Status"] == "alive"

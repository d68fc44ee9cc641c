"""playbooks/rotate_tokens.yml on the running cluster: --check changes nothing; a bad selection is
refused; a rotation replaces Consul's and Nomad's management tokens and every token made from them
(agents, DNS, Nomad's Consul token, deploy, node-read), the old ones are refused, the nodes hold the
new ones, no token shows in the output, and a job registered in Consul before the rotation keeps
running and keeps its health in sync: a check that fails afterwards shows as critical in Consul's
catalog (Consul syncs it with the token the service was registered with, so this fails when that
token was deleted without Nomad registering the service again)."""
import os
import re
import sys
from pathlib import Path

import pytest
import requests

from conftest import ADDRESSES, EPHEMERAL, NAMESPACE, NODES, PKI, _api, load_secrets, sh, wait_for

sys.path.insert(0, str(Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
                       / "tests" / "support"))
from playbooks import run_playbook, said  # noqa: E402

JOB = "token-rotation"
ROTATED = ["consul_management_token", "consul_nomad_token", "nomad_management_token", "nomad_deploy_token",
           "nomad_node_read_token"]
BOOKKEEPING = ["consul_management_token_next", "consul_management_token_previous", "consul_tokens_replaced",
               "nomad_management_token_next", "nomad_management_token_previous", "nomad_tokens_replaced"]


def consul(method, path, body=None):
    return _api(8501, "X-Consul-Token", load_secrets()["consul_management_token"], method, path, body)


def nomad(method, path, body=None, token_key="nomad_deploy_token"):
    return _api(4646, "X-Nomad-Token", load_secrets()[token_key], method, path, body, params={"namespace": NAMESPACE})


def status_with(port, header, token, path="/v1/acl/token/self"):
    r = requests.get(f"https://{ADDRESSES[0]}:{port}{path}", headers={header: token}, timeout=10,
                     verify=str(PKI / "ca.pem"), cert=(str(PKI / "cli.pem"), str(PKI / "cli-key.pem")))
    return r.status_code


def check_status():
    """The status of the job's check in Consul's catalog (what DNS and HAProxy see)."""
    entries = consul("GET", f"/v1/health/service/{JOB}")
    statuses = [c["Status"] for e in entries for c in e["Checks"] if c["ServiceName"] == JOB]
    return statuses[0] if len(statuses) == 1 else statuses


def in_task(alloc, command):
    """Runs `command` in the job's container, through the Docker of the node running it."""
    for node in NODES:
        container = sh(node, f"docker ps -q --filter name=web-{alloc['ID']}").strip()
        if container:
            return sh(node, f"docker exec {container} {command}")
    raise AssertionError(f"no container of allocation {alloc['ID']} on any node")


def token_file(node, path):
    """The token a node's file holds (a bare token, or the `token = "..."` of an HCL file)."""
    content = sh(node, f"cat {path}")
    found = re.search(r'token\s*=\s*"([^"]+)"', content)
    return found.group(1) if found else content.strip()


@pytest.fixture
def job(busybox_loaded):
    spec = {"Job": {
        "ID": JOB, "Name": JOB, "Type": "service", "Datacenters": ["*"], "Namespace": NAMESPACE,
        "TaskGroups": [{
            "Name": "web", "Count": 1,
            "Networks": [{"DynamicPorts": [{"Label": "http", "To": 8080}]}],
            "Services": [{"Name": JOB, "PortLabel": "http", "Provider": "consul",
                          "Checks": [{"Name": "ok", "Type": "http", "Path": "/ok", "Interval": 2_000_000_000,
                                      "Timeout": 1_000_000_000}]}],
            "Tasks": [{
                "Name": "web", "Driver": "docker",
                "Config": {"image": busybox_loaded, "force_pull": False, "ports": ["http"],
                           "command": "sh", "args": ["-c", "echo ok > /www/ok && exec httpd -f -p 8080 -h /www"]},
                "Resources": {"CPU": 50, "MemoryMB": 32},
            }],
        }],
    }}
    nomad("PUT", "/v1/jobs", spec)
    wait_for(lambda: check_status() == "passing", 120, f"{JOB}'s check passing in Consul")
    yield
    nomad("DELETE", f"/v1/job/{JOB}?purge=true")


def test_check_mode_and_bad_selection_change_nothing():
    vault = EPHEMERAL / "secrets.vault.yml"
    before = vault.read_bytes()
    plan = run_playbook("rotate_tokens.yml", "--check")
    assert plan.returncode == 0, plan.output[-4000:]
    assert said(plan, "Consul: would replace the management token"), plan.output[-3000:]
    assert said(plan, "Nomad: would replace the management token"), plan.output[-3000:]
    bad = run_playbook("rotate_tokens.yml", "-e", "rotate_tokens=vault")
    assert bad.returncode != 0 and said(bad, "rotate_tokens naming consul, nomad or both"), bad.output[-3000:]
    limited = run_playbook("rotate_tokens.yml", "-l", NODES[0])
    assert limited.returncode != 0 and said(limited, "without -l"), limited.output[-3000:]
    assert vault.read_bytes() == before


@pytest.mark.usefixtures("job")
def test_rotation_replaces_every_token_and_keeps_the_job_in_sync():
    old = {key: load_secrets()[key] for key in ROTATED}
    # cloudvirt's tokens and the bootstrap (management) token
    old_accessors = {t["AccessorID"] for t in consul("GET", "/v1/acl/tokens")
                     if t.get("Description", "").startswith(("cloudvirt: ", "Bootstrap Token"))}
    assert len(old_accessors) >= len(NODES) + 3, old_accessors  # agents, DNS, Nomad's, bootstrap
    (alloc,) = [a for a in nomad("GET", f"/v1/job/{JOB}/allocations") if a["ClientStatus"] == "running"]
    since = sh(NODES[0], "date +%s").strip()

    done = run_playbook("rotate_tokens.yml")
    assert done.returncode == 0, done.output[-6000:]
    assert said(done, "the old management token is refused"), done.output[-3000:]
    load_secrets.cache_clear()
    new = load_secrets()
    # (booleans, so that a failure does not print a token)
    kept = [key for key in ROTATED if new[key] == old[key]]
    assert not kept, f"not replaced: {kept}"
    assert not [key for key in BOOKKEEPING if key in new], sorted(new)
    shown = any(secret in done.output for secret in list(old.values()) + [new[key] for key in ROTATED])
    assert not shown, "a token shows in the play's output"

    # The old tokens are refused, the new ones accepted.
    for key in ("consul_management_token", "consul_nomad_token"):
        assert status_with(8501, "X-Consul-Token", old[key]) == 403, key
        assert status_with(8501, "X-Consul-Token", new[key]) == 200, key
    for key in ("nomad_management_token", "nomad_deploy_token", "nomad_node_read_token"):
        assert status_with(4646, "X-Nomad-Token", old[key]) == 403, key
        assert status_with(4646, "X-Nomad-Token", new[key]) == 200, key
    # Every token cloudvirt made before is gone (agents, DNS, Nomad's, the bootstrap token).
    left = old_accessors & {t["AccessorID"] for t in consul("GET", "/v1/acl/tokens")}
    assert not left, f"tokens of before the rotation still exist: {left}"
    # The nodes hold the new ones.
    for node in NODES:
        node_read = token_file(node, "/etc/nomad.d/node-read.token") == new["nomad_node_read_token"]
        assert node_read, f"{node}: node-read.token holds another token"
        consul_token = token_file(node, "/etc/nomad.d/consul-token.hcl") == new["consul_nomad_token"]
        assert consul_token, f"{node}: consul-token.hcl holds another token"

    # The job ran on through it, and Consul syncs its health with a token that is still valid.
    (after,) = [a for a in nomad("GET", f"/v1/job/{JOB}/allocations") if a["ClientStatus"] == "running"]
    assert after["ID"] == alloc["ID"]
    assert check_status() == "passing"
    in_task(after, "busybox rm /www/ok")
    wait_for(lambda: check_status() == "critical", 30, f"{JOB}'s failing check critical in Consul's catalog")
    in_task(after, "sh -c 'echo ok > /www/ok'")
    wait_for(lambda: check_status() == "passing", 30, f"{JOB}'s check passing again in Consul's catalog")
    for node in NODES:
        logs = sh(node, f"journalctl -u consul -u nomad --since @{since} --no-pager -o cat")
        for sign in ("blocked by ACLs", "failed to update services in Consul"):
            assert sign not in logs, f"{node}: {sign!r} since the rotation:\n" + "\n".join(
                line for line in logs.splitlines() if sign in line)[-3000:]

    # And the deploy token of the vaulted file runs the job's life to the end.
    nomad("DELETE", f"/v1/job/{JOB}?purge=true")
    wait_for(lambda: consul("GET", f"/v1/health/service/{JOB}") == [], 60, f"{JOB} gone from Consul's catalog")

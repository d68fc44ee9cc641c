"""playbooks/rotate_certs.yml on the running cluster and app. --check and a bad selection change
nothing. A rotation, under a steady request loop over HTTPS through the floating IP, fails no
request; afterwards every node serves a new certificate with a new key on Consul's and Nomad's
HTTPS ports and on HAProxy's, the same as the controller's files, while the agents kept running
(same PIDs: reloaded, not restarted), the allocations kept running untouched, and both Raft
clusters kept their three voters; the controller's client certificate is new and accepted; no
private key shows in the output. A due-only run then changes nothing, and -l with one kind
renews that one certificate of that node only."""
import hashlib
import socket
import ssl
import subprocess

import pytest
from conftest import PKI, consul_get, nomad_get, recap, run_playbook, said
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from requestloop import RequestLoop

NODES = {"app-node1": "172.30.22.11", "app-node2": "172.30.22.12", "app-node3": "172.30.22.13"}
PORTS = {"consul": 8501, "nomad": 4646, "edge": 443}
VIP = "https://172.30.22.100/"
CA = str(PKI / "ca.pem")
CLIENT = (str(PKI / "cli.pem"), str(PKI / "cli-key.pem"))

pytestmark = pytest.mark.filterwarnings("ignore:record_property is incompatible")


def served(address, port):
    """sha256 of the certificate served on address:port, verified against the CA and the address."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(CA)
    context.load_cert_chain(*CLIENT)
    with socket.create_connection((address, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=address) as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def served_all():
    return {(node, kind): served(address, port) for node, address in NODES.items() for kind, port in PORTS.items()}


def files():
    """{(node, kind): (sha256 of the certificate's DER, sha256 of its public key)} of the
    controller's files, plus the controller's own under ('controller', 'cli')."""
    paths = {(node, kind): PKI / "nodes" / node / f"{kind}.pem" for node in NODES for kind in PORTS}
    paths["controller", "cli"] = PKI / "cli.pem"
    found = {}
    for key, path in paths.items():
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        public = cert.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        found[key] = (hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
                      hashlib.sha256(public).hexdigest())
    return found


def main_pids():
    """{node: (consul's, nomad's, haproxy's MainPID)}: a restart changes them, a reload does not."""
    pids = {}
    for node in NODES:
        done = subprocess.run(["docker", "exec", node, "systemctl", "show", "-p", "MainPID", "--value",
                               "consul", "nomad", "haproxy"], capture_output=True, text=True, check=True)
        pids[node] = tuple(done.stdout.split())
        assert len(pids[node]) == 3 and "0" not in pids[node], f"{node}: an agent is not running: {done.stdout}"
    return pids


def allocations():
    """{alloc ID: total task restarts} of the running allocations."""
    return {a["ID"]: sum(t.get("Restarts", 0) for t in (a.get("TaskStates") or {}).values())
            for a in nomad_get("/v1/allocations") if a["ClientStatus"] == "running"}


def voters():
    nomad = sorted(s["Node"].split(".")[0] for s in nomad_get("/v1/operator/raft/configuration")["Servers"]
                   if s["Voter"])
    consul = sorted(s["Node"] for s in consul_get("/v1/operator/raft/configuration")["Servers"] if s["Voter"])
    return nomad, consul


def assert_ok(done):
    assert done.returncode == 0, done.output[-4000:]


def changed_hosts(done):
    return {host: counts["changed"] for host, counts in recap(done.output).items() if counts.get("changed")}


def test_check_mode_and_a_bad_selection_change_nothing():
    before, certs = served_all(), files()

    plan = run_playbook("rotate_certs.yml", "--check")
    assert_ok(plan)
    for node in NODES:
        assert said(plan, f"{node}: would renew with new keys consul (expires"), plan.output[-3000:]
    assert "edge (expires" in plan.output

    bad = run_playbook("rotate_certs.yml", "-e", "rotate_certs=consul,vault")
    assert bad.returncode != 0
    assert said(bad, "rotate_certs names some of consul, nomad, edge and cli"), bad.output[-3000:]

    assert files() == certs and served_all() == before


def test_rotation_renews_every_certificate_without_a_failed_request_or_a_restart(record_property, monkeypatch):
    before, certs, pids, allocs = served_all(), files(), main_pids(), allocations()
    assert voters() == (sorted(NODES), sorted(NODES))
    assert allocs, "the app runs"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", CA)  # the loop verifies HAProxy's certificate

    with RequestLoop([VIP, VIP + "api/images?limit=1"]) as loop:
        done = run_playbook("rotate_certs.yml")
    assert_ok(done)
    failed = loop.failed()
    record_property("rotate_certs_requests", len(loop.results))
    record_property("rotate_certs_failed", len(failed))
    assert len(loop.results) > 100, f"only {len(loop.results)} requests"
    assert not failed, f"{len(failed)} of {len(loop.results)} requests failed during the rotation: {failed[:10]}"

    after, new = served_all(), files()
    for key in before:
        assert after[key] != before[key], f"{key} serves its old certificate"
        assert after[key] == new[key][0], f"{key} serves another certificate than the controller's file"
        assert new[key][1] != certs[key][1], f"{key}: the new certificate kept the old key"
    assert new["controller", "cli"][1] != certs["controller", "cli"][1], "the controller's key is the old one"
    for node in NODES:
        assert said(done, f"{node}: renewed consul, nomad, edge; it serves"), done.output[-3000:]

    assert main_pids() == pids, "an agent was restarted instead of reloaded"
    assert allocations() == allocs, "allocations were replaced or restarted"
    assert voters() == (sorted(NODES), sorted(NODES))
    assert "PRIVATE KEY" not in done.output

    # The due-only run (what a timer would run) finds nothing due and changes nothing.
    again = run_playbook("rotate_certs.yml", "-e", "rotate_certs_due_only=true")
    assert_ok(again)
    assert not changed_hosts(again), f"a due-only run changed something: {changed_hosts(again)}\n{again.output[-3000:]}"
    for node in NODES:
        assert said(again, f"{node}: none was due; it serves"), again.output[-3000:]
    assert files() == new and served_all() == after


def test_one_kind_on_one_node():
    before, certs = served_all(), files()
    done = run_playbook("rotate_certs.yml", "-l", "app-node2", "-e", "rotate_certs=nomad")
    assert_ok(done)
    assert set(changed_hosts(done)) == {"app-node2"}, done.output[-3000:]
    assert said(done, "app-node2: renewed nomad; it serves"), done.output[-3000:]
    after, new = served_all(), files()
    renewed = {key for key in before if after[key] != before[key]}
    assert renewed == {("app-node2", "nomad")}, renewed
    assert after["app-node2", "nomad"] == new["app-node2", "nomad"][0]
    assert {key for key in certs if new[key] != certs[key]} == {("app-node2", "nomad")}

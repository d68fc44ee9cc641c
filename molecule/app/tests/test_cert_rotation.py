"""playbooks/rotate_certs.yml and rotate_ca.yml on the running cluster and app.

rotate_certs.yml: --check and a bad selection change nothing; -l with one kind renews that one
certificate of that node only, and a due-only run then changes nothing.

rotate_ca.yml replaces the CA in two runs under a steady request loop over HTTPS through the
floating IP. The first stops once every node trusts both CAs (clients trusting the old CA alone
still verify). The second has the new CA sign every certificate again (its step 4 is a full
rotate_certs.yml) and then be trusted alone. No request fails; every node serves new
certificates with new keys on Consul's, Nomad's and HAProxy's ports, as on the controller,
verified against the new CA alone; the agents kept running (same PIDs: reloaded, not
restarted), the allocations too, and both Raft clusters their three voters; the controller's
client certificate is new; a client certificate from the old CA no longer gets in; no private
key shows in the output. -l is refused."""
import datetime
import hashlib
import socket
import ssl
import subprocess

import pytest
from conftest import PKI, consul_get, nomad_get, recap, run_playbook, said
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
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
    assert said(plan, "edge (expires"), plan.output[-3000:]

    bad = run_playbook("rotate_certs.yml", "-e", "rotate_certs=consul,vault")
    assert bad.returncode != 0
    assert said(bad, "rotate_certs names some of consul, nomad, edge and cli"), bad.output[-3000:]

    assert files() == certs and served_all() == before


def test_one_kind_on_one_node_then_a_due_only_run_changes_nothing():
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

    # The due-only run (what a timer would run) finds nothing due and changes nothing.
    again = run_playbook("rotate_certs.yml", "-l", "app-node2", "-e", "rotate_certs_due_only=true")
    assert_ok(again)
    assert not changed_hosts(again), f"a due-only run changed something: {changed_hosts(again)}\n{again.output[-3000:]}"
    assert said(again, "app-node2: none was due; it serves"), again.output[-3000:]
    assert files() == new and served_all() == after


def certificates_in(pem):
    return x509.load_pem_x509_certificates(pem if isinstance(pem, bytes) else pem.encode())


def client_certificate_from(ca_pem, ca_key_pem, directory):
    """A client certificate and key (files in `directory`) signed by the given CA."""
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old-ca-client")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / "old-client.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "old-client-key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                                     serialization.PrivateFormat.PKCS8,
                                                                     serialization.NoEncryption()))
    return str(directory / "old-client.pem"), str(directory / "old-client-key.pem")


def accepts(address, port, client):
    """Whether the server completes a request from this client certificate (HTTPS, not verified:
    the question is the server's trust)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.load_cert_chain(*client)
    try:
        with socket.create_connection((address, port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=address) as tls:
                tls.sendall(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return tls.recv(64).startswith(b"HTTP/1.1 200")
    except (ssl.SSLError, OSError):
        return False


def node_cas(node):
    return {service: sh_out(node, f"cat /etc/{service}.d/tls/ca.pem") for service in ("consul", "nomad")}


def sh_out(node, command):
    return subprocess.run(["docker", "exec", node, "sh", "-c", command], capture_output=True, text=True,
                          check=True).stdout


def test_ca_rotation_refuses_a_limit():
    done = run_playbook("rotate_ca.yml", "-l", "app-node1")
    assert done.returncode != 0
    assert said(done, "Run it on the whole inventory, without -l"), done.output[-3000:]
    assert not (PKI / "next").exists() and not (PKI / "trust.pem").exists()


def test_ca_rotation_in_two_runs_fails_no_request(record_property, monkeypatch, tmp_path):
    old_ca, old_key = (PKI / "ca.pem").read_bytes(), (PKI / "ca-key.pem").read_bytes()
    old_client = client_certificate_from(old_ca, old_key, tmp_path)
    assert all(accepts(address, PORTS[s], old_client) for address in NODES.values() for s in ("consul", "nomad"))
    before, certs, pids, allocs = served_all(), files(), main_pids(), allocations()
    assert voters() == (sorted(NODES), sorted(NODES))
    assert allocs, "the app runs"
    (tmp_path / "old.pem").write_bytes(old_ca)

    # Run 1 stops once every node trusts both CAs; clients that trust the old CA alone still work.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "old.pem"))
    with RequestLoop([VIP, VIP + "api/images?limit=1"]) as loop:
        first = run_playbook("rotate_ca.yml", "-e", "rotate_ca_stop_after=trust")
    assert_ok(first)
    assert not loop.failed(), f"{len(loop.failed())} of {len(loop.results)} failed: {loop.failed()[:10]}"
    trust = (PKI / "trust.pem").read_bytes()
    assert [c.serial_number for c in certificates_in(trust)][0] == x509.load_pem_x509_certificate(old_ca).serial_number
    assert len(certificates_in(trust)) == 2
    assert (PKI / "ca-rotation").read_text().strip() == "start"
    for node in NODES:
        for service, pem in node_cas(node).items():
            assert certificates_in(pem) == certificates_in(trust), f"{node}: {service} does not trust both CAs"
    assert served_all() == before, "a certificate changed before the new CA signs"

    # Run 2 goes on: the new CA signs every certificate, then is trusted alone.
    (tmp_path / "trust.pem").write_bytes(trust)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "trust.pem"))
    with RequestLoop([VIP, VIP + "api/images?limit=1"]) as loop:
        second = run_playbook("rotate_ca.yml")
    assert_ok(second)
    failed = loop.failed()
    record_property("rotate_ca_requests", len(loop.results))
    record_property("rotate_ca_failed", len(failed))
    assert not failed, f"{len(failed)} of {len(loop.results)} requests failed: {failed[:10]}"

    new_ca = (PKI / "ca.pem").read_bytes()
    new_serial = x509.load_pem_x509_certificate(new_ca).serial_number
    assert new_ca != old_ca and certificates_in(trust)[1].serial_number == new_serial
    assert not any((PKI / name).exists() for name in ("trust.pem", "next", "ca-rotation"))
    retired = PKI / "retired" / ("%x" % x509.load_pem_x509_certificate(old_ca).serial_number)
    assert (retired / "ca.pem").read_bytes() == old_ca and not (retired / "ca-key.pem").exists()
    assert (PKI / "ca-key.pem").read_bytes() != old_key
    assert said(second, "every node and the controller trust it alone"), second.output[-3000:]

    # Step 4 is rotate_certs.yml: every certificate new, with a new key, served as on file.
    after, new = served_all(), files()  # served ones verified against the new CA alone
    for key in before:
        assert after[key] != before[key], f"{key} serves its old certificate"
        assert after[key] == new[key][0], f"{key} serves another certificate than the controller's file"
        assert new[key][1] != certs[key][1], f"{key}: the new certificate kept the old key"
    assert new["controller", "cli"][1] != certs["controller", "cli"][1], "the controller's key is the old one"
    for node in NODES:
        assert said(second, f"{node}: renewed consul, nomad, edge; it serves"), second.output[-3000:]
    for node in NODES:
        for service, pem in node_cas(node).items():
            assert certificates_in(pem) == certificates_in(new_ca), f"{node}: {service} still trusts the old CA"
    assert not any(accepts(address, PORTS[s], old_client) for address in NODES.values() for s in ("consul", "nomad")), \
        "a certificate from the old CA still gets in"
    issued = x509.load_pem_x509_certificate((PKI / "cli.pem").read_bytes())
    assert issued.issuer == x509.load_pem_x509_certificate(new_ca).subject
    assert main_pids() == pids, "an agent was restarted instead of reloaded"
    assert allocations() == allocs, "allocations were replaced or restarted"
    assert voters() == (sorted(NODES), sorted(NODES))
    assert "PRIVATE KEY" not in first.output + second.output

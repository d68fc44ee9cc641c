"""HTTPS on the floating IP with a certificate from the scenario's internal CA
(cloudvirt_edge_tls_internal): a client that trusts the CA verifies the edge by its address,
TLS 1.1 is refused and 1.2 and 1.3 are spoken, each edge node serves its own certificate (a
server certificate only), and each node's key is private in the controller's PKI directory and
on that node only. Plain HTTP keeps serving (haproxy_tls_redirect: false)."""
import hashlib
import re
import socket
import ssl
import subprocess

import pytest
import requests
from conftest import PKI
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

VIP = "172.30.22.100"
NODES = {"app-node1": "172.30.22.11", "app-node2": "172.30.22.12", "app-node3": "172.30.22.13"}
CA = str(PKI / "ca.pem")
PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----(.*?)-----END \1PRIVATE KEY-----", re.S)


def sh(node, command):
    done = subprocess.run(["docker", "exec", node, "sh", "-c", command], capture_output=True, text=True)
    assert done.returncode == 0, f"{node}: {command!r} failed ({done.returncode}): {done.stderr.strip()}"
    return done.stdout


def handshake(address, minimum, maximum, legacy=False):
    """A TLS handshake with HAProxy on `address`, verifying its certificate against the CA and
    the address (check_hostname); (TLS version, the certificate). `legacy` lets the client offer
    versions OpenSSL's defaults no longer allow, so that a refusal is the server's."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the name
    context.load_verify_locations(CA)
    if legacy:
        context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version, context.maximum_version = minimum, maximum
    with socket.create_connection((address, 443), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=address) as tls:
            return tls.version(), x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def key_digests(text):
    """sha256 of each private key in a PEM text: compared instead of the keys, so that a failed
    assertion never prints one."""
    return {hashlib.sha256("".join(body.split()).encode()).hexdigest() for dummy, body in PRIVATE_KEY.findall(text)}


def test_https_on_the_floating_ip_is_verified_against_the_internal_ca():
    for path in ("/", "/api/images?limit=1"):
        r = requests.get(f"https://{VIP}{path}", verify=CA, timeout=10)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


def test_plain_http_keeps_serving_without_a_redirect():
    r = requests.get(f"http://{VIP}/", allow_redirects=False, timeout=10)
    assert r.status_code == 200, (r.status_code, r.headers.get("Location"))


def test_the_certificate_names_the_floating_ip_and_serves_as_a_server_only():
    dummy, cert = handshake(VIP, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert VIP in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)], names
    # The agents accept any client certificate of this CA: the edge's must not be one.
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH], usage


def test_each_edge_node_serves_its_own_certificate_on_its_address():
    for node, address in NODES.items():
        dummy, served = handshake(address, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
        issued = x509.load_pem_x509_certificate((PKI / "nodes" / node / "edge.pem").read_bytes())
        assert served == issued, f"{address} serves {served.subject}, not {node}'s certificate"
        ips = [str(ip) for ip in served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
               .get_values_for_type(x509.IPAddress)]
        assert ips == [VIP, address], ips


def test_tls_12_and_13_are_spoken():
    assert handshake(VIP, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"
    assert handshake(VIP, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"


def test_tls_11_is_refused_by_the_server():
    with pytest.raises(ssl.SSLError) as refused:
        handshake(VIP, ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, legacy=True)
    # The server's protocol_version alert, not a client that could not offer TLS 1.1 at all.
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value


def test_each_edge_key_is_private_on_the_controller_and_on_its_node_only():
    keys = sorted(PKI.glob("nodes/*/edge-key.pem"))
    assert {path.parent.name for path in keys} >= set(NODES), keys
    for path in keys:
        assert path.stat().st_mode & 0o777 == 0o600, f"{path} is {oct(path.stat().st_mode & 0o777)}"
    own = {node: key_digests((PKI / "nodes" / node / "edge-key.pem").read_text()) for node in NODES}
    for node in NODES:
        assert len(own[node]) == 1, f"{node}: {len(own[node])} keys in edge-key.pem"
        assert sh(node, "stat -c '%U %a' /etc/haproxy/certs/edge.pem").split() == ["root", "600"]
        # HAProxy's file holds this node's key and no other's.
        on_node = key_digests(sh(node, "cat /etc/haproxy/certs/edge.pem"))
        assert on_node == own[node], f"{node}: HAProxy's file holds keys {sorted(on_node)}, its own is {sorted(own[node])}"

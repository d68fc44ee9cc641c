"""playbooks/files/served_certificate.py (rotate_certs.yml's check that a node serves its new
certificate) against real TLS servers on loopback: the fingerprint matches the one
community.crypto reports for the file, a server that wants a client certificate gets one, a
server outside the CA or the name fails, and --expect waits for the certificate or fails
saying what it saw."""
import datetime
import hashlib
import importlib.util
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("served_certificate", ROOT / "playbooks" / "files" / "served_certificate.py")
served_certificate = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(served_certificate)


def issue(directory, name, issuer=None, ca=False, usage=ExtendedKeyUsageOID.SERVER_AUTH):
    """A key and certificate under directory/name{.pem,-key.pem}; returns (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1)))
    if ca:
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True))
    else:
        builder = (builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                         critical=False)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}-key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                                  serialization.PrivateFormat.PKCS8,
                                                                  serialization.NoEncryption()))
    return cert, key


def fingerprint(cert):
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


class Server(threading.Thread):
    """A TLS server on 127.0.0.1 that completes handshakes (and requires a client certificate
    from the CA when `ca` is given) until stopped."""

    def __init__(self, cert, key, ca=None):
        super().__init__(daemon=True)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        if ca:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(ca)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.halt = threading.Event()
        self.client_certificates = []

    def run(self):
        while not self.halt.is_set():
            try:
                conn, dummy = self.sock.accept()
            except socket.timeout:
                continue
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    self.client_certificates.append(tls.getpeercert() is not None)
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        self.join()
        self.sock.close()


@pytest.fixture(name="pki")
def fixture_pki(tmp_path):
    ca = issue(tmp_path, "ca", ca=True)
    server = issue(tmp_path, "server", issuer=ca)
    issue(tmp_path, "cli", issuer=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return tmp_path, server[0]


def test_prints_the_fingerprint_of_the_served_certificate(pki, capsys):
    directory, cert = pki
    with Server(directory / "server.pem", directory / "server-key.pem") as server:
        rc = served_certificate.main(["x", "127.0.0.1", str(server.port), str(directory / "ca.pem")])
    assert rc == 0
    assert capsys.readouterr().out.strip() == fingerprint(cert)


def test_presents_the_client_certificate_to_a_server_that_requires_one(pki, capsys):
    directory, cert = pki
    with Server(directory / "server.pem", directory / "server-key.pem", ca=directory / "ca.pem") as server:
        rc = served_certificate.main(["x", "--expect", fingerprint(cert), "127.0.0.1", str(server.port),
                                      str(directory / "ca.pem"), str(directory / "cli.pem"), str(directory / "cli-key.pem")])
    assert rc == 0, capsys.readouterr().err
    assert server.client_certificates and all(server.client_certificates)


def test_a_server_outside_the_ca_fails(pki, tmp_path_factory, capsys):
    directory, dummy = pki
    other = tmp_path_factory.mktemp("other")
    issue(other, "server", issuer=issue(other, "ca", ca=True))
    with Server(other / "server.pem", other / "server-key.pem") as server:
        rc = served_certificate.main(["x", "127.0.0.1", str(server.port), str(directory / "ca.pem")])
    assert rc == 1
    assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err


def test_a_name_the_certificate_does_not_hold_fails(pki, capsys):
    directory, dummy = pki
    with Server(directory / "server.pem", directory / "server-key.pem") as server:
        rc = served_certificate.main(["x", "localhost", str(server.port), str(directory / "ca.pem")])
    assert rc == 1
    assert "localhost" in capsys.readouterr().err


def test_expect_another_certificate_waits_then_says_what_it_saw(pki, capsys):
    directory, cert = pki
    with Server(directory / "server.pem", directory / "server-key.pem") as server:
        rc = served_certificate.main(["x", "--expect", "00:11", "--wait", "1.5", "127.0.0.1", str(server.port),
                                      str(directory / "ca.pem")])
    out = capsys.readouterr()
    assert rc == 1
    assert f"serves {fingerprint(cert)}, not 00:11" in out.err
    assert len(server.client_certificates) >= 2, "it did not try again while waiting"


def test_nothing_listening_fails_with_the_reason(pki, capsys):
    directory, dummy = pki
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    rc = served_certificate.main(["x", "127.0.0.1", str(port), str(directory / "ca.pem")])
    assert rc == 1
    assert f"127.0.0.1:{port}:" in capsys.readouterr().err


def test_a_client_certificate_without_its_key_is_refused(pki):
    directory, dummy = pki
    with pytest.raises(SystemExit):
        served_certificate.main(["x", "127.0.0.1", "1", str(directory / "ca.pem"), str(directory / "cli.pem")])

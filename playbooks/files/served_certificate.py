"""The certificate a TLS server presents, by SHA-256 fingerprint (playbooks/rotate_certs.yml).

    python3 served_certificate.py [--expect FP --wait SECONDS] HOST PORT CA_FILE [CLIENT_CERT CLIENT_KEY]

Connects to HOST:PORT, verifies the server's certificate against CA_FILE and HOST (a name or an
address in its subject alternative names), presents the client certificate when given (servers
that verify incoming connections), and prints the fingerprint of the server's certificate as
aa:bb:..., the form of community.crypto.x509_certificate_info's fingerprints. With --expect, it
tries again every second for up to --wait seconds until the server presents that certificate.
Exits 1, with what it saw last on stderr, when the connection, the verification or the wait fails.
"""
import argparse
import hashlib
import socket
import ssl
import sys
import time


def served_fingerprint(host, port, ca_file, client_cert=None, client_key=None, timeout=5.0):
    context = ssl.create_default_context(cafile=ca_file)
    if client_cert:
        context.load_cert_chain(client_cert, client_key)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    digest = hashlib.sha256(der).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--expect", help="fingerprint to wait for (aa:bb:...)")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for it")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("ca_file")
    parser.add_argument("client", nargs="*", help="client certificate and key")
    args = parser.parse_args(argv[1:])
    if len(args.client) not in (0, 2):
        parser.error("give the client certificate and its key, or neither")
    deadline = time.monotonic() + args.wait
    while True:
        try:
            seen = served_fingerprint(args.host, args.port, args.ca_file, *args.client)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            seen, error = None, "%s:%s: %s" % (args.host, args.port, exc)
        else:
            error = "%s:%s serves %s, not %s" % (args.host, args.port, seen, args.expect)
        if seen is not None and args.expect in (None, seen.lower()):
            print(seen)
            return 0
        if time.monotonic() >= deadline:
            if seen is not None:
                print(seen)
            sys.stderr.write(error + "\n")
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

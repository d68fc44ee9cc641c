"""Secrets audit: a verbose (-vvv) run of deploy.yml, and every node's journal since it booted
(which holds the converge's module invocations, the agents' and the app's logs), must not
contain any secret the scenario knows: the vaulted tokens, the vault password, the gossip keys,
the app's broker and S3 credentials, or the private part of any key of the PKI directory (nor
any PEM private key at all)."""
import base64
import re
import subprocess

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import EPHEMERAL, PKI, run_playbook, secrets

NODES = ["app-node1", "app-node2", "app-node3", "app-infra"]
# The scenario's test-only credentials (molecule.yml group_vars; real sites keep them in Vault).
APP_CREDENTIALS = {"app_s3_secret_key": "molecule-app-s3-secret", "app_broker_password": "molecule-app-broker"}


def sh(node, command):
    done = subprocess.run(["docker", "exec", node, "sh", "-c", command], capture_output=True, text=True)
    assert done.returncode == 0, f"{node}: {command!r}: {done.stderr or done.stdout}"
    return done.stdout


def private_parts(path):
    """{what: text} that only the private key holds: its scalar in hex, and the PEM lines that
    encode it. (An EC key's PEM also carries its public key, which certificates show: lines of
    the PEM made of public bytes only are not secret.)"""
    pem = path.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    body = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return {f"PEM line {i + 1}": line for i, line in enumerate(body)}
    size = (key.curve.key_size + 7) // 8
    scalar = key.private_numbers().private_value.to_bytes(size, "big")
    at = base64.b64decode("".join(body)).find(scalar)
    assert at >= 0, f"the private scalar is not in {path}'s DER"
    lines = range(at // 48, (at + size - 1) // 48 + 1)  # a PEM line encodes 48 bytes
    return {"private scalar (hex)": scalar.hex(), **{f"PEM line {i + 1}": body[i] for i in lines}}


def known_secrets():
    """{name: value} of every secret to look for."""
    found = {f"vault: {name}": value for name, value in secrets().items() if isinstance(value, str)}
    found["vault password"] = (EPHEMERAL / "vault-pass").read_text().strip()
    found.update(APP_CREDENTIALS)
    for service in ("consul", "nomad"):
        key = re.search(r'encrypt\s*=\s*"([^"]+)"', sh("app-node1", f"cat /etc/{service}.d/gossip.hcl"))
        assert key, f"no gossip key in app-node1's /etc/{service}.d/gossip.hcl"
        found[f"{service} gossip key"] = key.group(1)
    keys = sorted(p for p in PKI.rglob("*.pem") if "key" in p.name)
    assert len(keys) >= 4, f"expected the CA's, the controller's and the nodes' private keys in {PKI}, found {keys}"
    for path in keys:
        found.update({f"{path.relative_to(PKI)} {what}": value for what, value in private_parts(path).items()})
    short = {name: value for name, value in found.items() if len(value) < 12}
    assert not short, f"secrets too short to search for without false hits: {sorted(short)}"
    return found


def test_no_secret_in_a_verbose_deploy_nor_in_any_journal():
    done = run_playbook("deploy.yml", "-vvv")
    assert done.returncode == 0, done.output[-4000:]
    texts = {"deploy.yml -vvv": done.output}
    for node in NODES:
        texts[f"{node}'s journal"] = sh(node, "journalctl --no-pager -o cat")
    # What is searched is what the audit means to search: the verbose run shows module
    # arguments, and the journals hold the converge's module invocations and the agents' logs.
    assert "module_args" in texts["deploy.yml -vvv"], "the verbose run shows no module arguments"
    for node in NODES:
        assert "Invoked with" in texts[f"{node}'s journal"], f"{node}'s journal has no module invocations"
    assert "consul" in texts["app-node1's journal"] and "nomad" in texts["app-node1's journal"]

    leaks = [(secret, where) for secret, value in known_secrets().items() for where, text in texts.items()
             if value in text]
    leaks += [("a PEM private key", where) for where, text in texts.items() if "PRIVATE KEY-----" in text]
    assert not leaks, "secrets found (name, where): " + "; ".join(f"{s} in {w}" for s, w in leaks)

"""Consul on one node, secure by default: TLS on RPC and the HTTPS API (client certificates
required), plain HTTP on loopback only, ACLs denying anonymous requests, DNS still answering."""
import json
import os
import stat

NODE = "172.30.10.11"
TLS = "/etc/consul.d/tls"
CURL_TLS = f"--cacert {TLS}/ca.pem --cert {TLS}/cert.pem --key {TLS}/key.pem"


def https(host, path, token=None, extra=""):
    """(status, body) of an HTTPS request with this node's client certificate."""
    header = f"-H 'X-Consul-Token: {token}'" if token else ""
    out = host.check_output(f"curl -s {CURL_TLS} {header} {extra} -w '\\n%{{http_code}}' https://127.0.0.1:8501{path}")
    body, _, status = out.rpartition("\n")
    return int(status), body


def dns_query(host, name, qtype):
    """Number of answers Consul's DNS gives for name/qtype (1 = A, 33 = SRV), asked without a token."""
    script = (
        "import socket,struct;"
        "q=b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00'"
        f"+b''.join(bytes([len(p)])+p.encode() for p in '{name}'.split('.'))+b'\\x00'+struct.pack('>HH',{qtype},1);"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3);s.sendto(q,('127.0.0.1',8600));"
        "r=s.recv(512);print(struct.unpack('>H',r[6:8])[0])"
    )
    return int(host.check_output(f'python3 -c "{script}"'))


def test_agent_runs_as_consul_user(host):
    svc = host.service("consul")
    assert svc.is_running and svc.is_enabled
    assert host.process.get(comm="consul").user == "consul"


def test_single_server_elected_itself_leader_over_https(host):
    status, body = https(host, "/v1/status/leader")
    assert status == 200 and json.loads(body).startswith(f"{NODE}:")


def test_plain_http_refused_on_the_node_address(host):
    # curl exit 7: connection refused (HTTP listens on 127.0.0.1 only)
    assert host.run(f"curl -s -m 5 http://{NODE}:8500/v1/status/leader").rc == 7
    assert host.run("curl -sf -m 5 http://127.0.0.1:8500/v1/status/leader").rc == 0


def test_https_without_client_certificate_refused(host):
    without = host.run(f"curl -s -m 5 --cacert {TLS}/ca.pem https://{NODE}:8501/v1/status/leader")
    assert without.rc != 0, without.stdout
    with_cert = host.run(f"curl -sf -m 5 {CURL_TLS} https://{NODE}:8501/v1/status/leader")
    assert with_cert.rc == 0, with_cert.stderr


def test_running_agent_verifies_rpc_both_ways(host, secrets):
    status, body = https(host, "/v1/agent/self", token=secrets["consul_management_token"])
    assert status == 200
    rpc = json.loads(body)["DebugConfig"]["TLS"]["InternalRPC"]
    assert rpc["VerifyIncoming"] and rpc["VerifyOutgoing"] and rpc["VerifyServerHostname"], rpc


def test_anonymous_cannot_read_kv_or_catalog(host, secrets):
    token = secrets["consul_management_token"]
    status, _ = https(host, "/v1/kv/cloudvirt-test/secret", token=token, extra="-X PUT -d s3cr3t")
    assert status == 200
    status, body = https(host, "/v1/kv/cloudvirt-test/secret?raw")
    assert status == 403 and "s3cr3t" not in body
    status, body = https(host, "/v1/kv/?recurse")
    assert status in (403, 404) and "cloudvirt-test" not in body
    status, body = https(host, "/v1/catalog/services")
    assert status == 403 or json.loads(body) == {}
    status, body = https(host, "/v1/kv/cloudvirt-test/secret?raw", token=token)
    assert status == 200 and body == "s3cr3t"
    https(host, "/v1/kv/cloudvirt-test?recurse", token=token, extra="-X DELETE")


def test_dns_answers_without_a_token(host):
    assert dns_query(host, "consul.service.consul", 1) >= 1
    assert dns_query(host, "_consul._tcp.service.consul", 33) >= 1


def test_agent_token_is_least_privilege(host, secrets):
    config = host.file("/etc/consul.d/acl-tokens.hcl")
    assert config.mode == 0o640 and config.user == "root" and config.group == "consul"
    agent = config.content_string.split('agent = "')[1].split('"')[0]
    status, body = https(host, "/v1/acl/token/self", token=agent)
    assert status == 200
    assert [i["NodeName"] for i in json.loads(body)["NodeIdentities"]] == ["consul-node1"]
    assert https(host, "/v1/acl/tokens", token=agent)[0] == 403
    assert https(host, "/v1/kv/?recurse", token=agent)[0] in (403, 404)
    assert agent != secrets["consul_management_token"]


def test_restart_helper_uses_tls_and_the_agent_token(host):
    out = host.run("/usr/local/sbin/consul-restart 60")
    assert out.rc == 0, out.stderr
    assert "is alive" in out.stdout


def test_gossip_is_encrypted(host, secrets):
    env = (f"CONSUL_HTTP_ADDR=https://127.0.0.1:8501 CONSUL_CACERT={TLS}/ca.pem CONSUL_CLIENT_CERT={TLS}/cert.pem "
           f"CONSUL_CLIENT_KEY={TLS}/key.pem CONSUL_HTTP_TOKEN={secrets['consul_management_token']}")
    keyring = host.check_output(f"{env} consul keyring -list")
    assert "1/1" in keyring or "[1/1]" in keyring


def test_key_and_config_are_private_on_the_node(host):
    assert host.file("/etc/consul.d").mode == 0o750
    gossip = host.file("/etc/consul.d/gossip.hcl")
    assert gossip.mode == 0o640 and gossip.group == "consul" and gossip.user == "root"
    key = host.file(f"{TLS}/key.pem")
    assert key.mode == 0o640 and key.user == "root" and key.group == "consul"


def test_controller_keeps_keys_and_tokens_private(ephemeral):
    pki = ephemeral / "pki"
    assert stat.S_IMODE(os.stat(pki).st_mode) == 0o700
    for key in list(pki.glob("*-key.pem")) + list(pki.glob("nodes/*/*-key.pem")):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600, key
    vault = ephemeral / "secrets.vault.yml"
    assert stat.S_IMODE(os.stat(vault).st_mode) == 0o600
    assert vault.read_text().startswith("$ANSIBLE_VAULT;")

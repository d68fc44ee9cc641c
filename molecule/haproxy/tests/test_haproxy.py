"""HAProxy on one node with a local Consul agent: what an operator relies on.

The stand-in instances (prepare.yml) are registered in and removed from Consul by the tests;
HAProxy must follow through DNS alone, with no configuration change and no reload."""
import csv
import functools
import http.client
import io
import json
import os
import socket
import ssl
import subprocess
import threading
import time

from pathlib import Path

import pytest
import requests
import urllib3
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

NODE = "haproxy-node1"
ADDRESS = "172.30.14.11"
VIP = "172.30.14.100"
# Consul's API: HTTPS with the controller's client certificate and the management token (the
# secure defaults); its DNS, which HAProxy uses, answers without a token.
CONSUL = f"https://{ADDRESS}:8501"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
STATS = f"http://{ADDRESS}:8404"
STATS_AUTH = ("admin", "molecule-stats")
INSTANCES = {"frontend-a": ("frontend", 9001), "frontend-b": ("frontend", 9002), "backend-a": ("backend", 9003)}


def sh(command, check=True):
    done = subprocess.run(["docker", "exec", NODE, "sh", "-c", command], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"{command!r} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


@functools.lru_cache(maxsize=None)
def consul_token():
    password = (EPHEMERAL / "vault-pass").read_text().strip().encode()
    vault = VaultLib([("default", VaultSecret(password))])
    return yaml.safe_load(vault.decrypt((EPHEMERAL / "secrets.vault.yml").read_bytes()))["consul_management_token"]


def consul_put(path, body=None):
    pki = EPHEMERAL / "pki"
    return requests.put(f"{CONSUL}{path}", data=json.dumps(body) if body else None, timeout=5,
                        verify=str(pki / "ca.pem"), cert=(str(pki / "cli.pem"), str(pki / "cli-key.pem")),
                        headers={"X-Consul-Token": consul_token()})


def register(instance):
    service, port = INSTANCES[instance]
    body = {"ID": instance, "Name": service, "Address": ADDRESS, "Port": port}
    consul_put("/v1/agent/service/register", body).raise_for_status()


def deregister(instance):
    r = consul_put(f"/v1/agent/service/deregister/{instance}")
    if r.status_code != 404:  # not registered: nothing to do
        r.raise_for_status()


def get(path, host=ADDRESS):
    """One request over HTTPS without certificate verification (self-signed); (status, body)."""
    try:
        r = requests.get(f"https://{host}{path}", verify=False, timeout=3, allow_redirects=False)
        return r.status_code, r.text.strip()
    except requests.RequestException as e:
        return None, str(e)


def wait_for(predicate, timeout, what, step=0.3):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(step)
    raise AssertionError(f"not within {timeout}s: {what}")


def workers():
    master = sh("systemctl show -p MainPID --value haproxy").strip()
    return sh(f"pgrep -P {master} haproxy", check=False).split()


@pytest.fixture
def clean_catalog():
    for instance in INSTANCES:
        deregister(instance)
    yield
    for instance in INSTANCES:
        deregister(instance)
    for unit in INSTANCES:
        sh(f"systemctl start {unit}")


# --- the node ---------------------------------------------------------------------------------

def test_installed_configuration_is_valid_and_private(host):
    assert host.run("haproxy -c -f /etc/haproxy/haproxy.cfg").rc == 0
    config = host.file("/etc/haproxy/haproxy.cfg")
    assert (config.user, config.group, config.mode) == ("root", "haproxy", 0o640)
    cert = host.file("/etc/haproxy/certs/edge.pem")
    assert (cert.user, cert.mode) == ("root", 0o600)
    assert host.service("haproxy").is_running and host.service("haproxy").is_enabled


def test_nonlocal_bind_sysctl_is_persisted_and_active(host):
    assert "net.ipv4.ip_nonlocal_bind=1" in host.file("/etc/sysctl.d/60-haproxy-nonlocal-bind.conf").content_string
    assert host.file("/proc/sys/net/ipv4/ip_nonlocal_bind").content_string.strip() == "1"


def test_listens_on_the_vip_it_does_not_hold_and_on_the_node(host):
    assert f" {VIP}/" not in host.check_output("ip -o -4 addr show")
    for address in (VIP, ADDRESS):
        for port in (80, 443):
            assert host.socket(f"tcp://{address}:{port}").is_listening
    assert host.socket("tcp://127.0.0.1:8404").is_listening
    assert not host.socket(f"tcp://{VIP}:8404").is_listening


# --- health, stats, metrics -------------------------------------------------------------------

def test_health_endpoint_answers_on_the_node():
    r = requests.get(f"{STATS}/healthz", timeout=3)
    assert (r.status_code, r.text) == (200, "ok")


def test_prometheus_metrics_are_exported():
    r = requests.get(f"{STATS}/metrics", timeout=5)
    assert r.status_code == 200
    assert "haproxy_process_uptime_seconds" in r.text
    assert 'haproxy_backend_active_servers{proxy="svc_frontend"}' in r.text


def test_stats_page_needs_the_password():
    assert requests.get(f"{STATS}/stats", timeout=3).status_code == 401
    r = requests.get(f"{STATS}/stats;csv", auth=STATS_AUTH, timeout=3)
    assert r.status_code == 200 and "svc_backend" in r.text


# --- TLS --------------------------------------------------------------------------------------

def test_http_redirects_to_https():
    r = requests.get(f"http://{ADDRESS}/some/page?x=1", allow_redirects=False, timeout=3)
    assert r.status_code == 301
    assert r.headers["Location"] == f"https://{ADDRESS}/some/page?x=1"


def tls_handshake(minimum, maximum):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")  # let the client offer old versions; the server must refuse
    context.minimum_version, context.maximum_version = minimum, maximum
    with socket.create_connection((ADDRESS, 443), timeout=3) as raw:
        with context.wrap_socket(raw, server_hostname="edge.molecule.test") as tls:
            return tls.version(), tls.selected_alpn_protocol()


def test_tls_12_and_13_accepted():
    assert tls_handshake(ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"
    assert tls_handshake(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"


def test_tls_before_12_refused():
    with pytest.raises(ssl.SSLError):
        tls_handshake(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)


def test_https_answers_with_hsts_and_no_backend_gives_503(clean_catalog):
    r = requests.get(f"https://{ADDRESS}/", verify=False, timeout=3)
    assert r.status_code == 503
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


# --- Consul discovery -------------------------------------------------------------------------

def test_instances_follow_consul_without_reload(clean_catalog):
    config_before = sh("sha256sum /etc/haproxy/haproxy.cfg")
    workers_before = workers()

    register("frontend-a")
    took = wait_for(lambda: get("/") == (200, "frontend-a"), 30, "a registered instance receives requests")
    print(f"first instance served after {took:.1f}s")

    register("frontend-b")
    seen = set()
    wait_for(lambda: seen.add(get("/")[1]) or {"frontend-a", "frontend-b"} <= seen, 30,
             "requests spread over both registered instances")

    deregister("frontend-a")
    deregister("frontend-b")
    wait_for(lambda: get("/")[0] == 503, 30, "no instance left: 503")

    assert sh("sha256sum /etc/haproxy/haproxy.cfg") == config_before
    assert workers() == workers_before, "HAProxy was reloaded"


def test_routes_by_path_prefix(clean_catalog):
    register("frontend-a")
    register("backend-a")
    wait_for(lambda: get("/api/ping") == (200, "backend-a") and get("/") == (200, "frontend-a"), 30,
             "/api goes to the backend, the rest to the frontend")
    # A prefix matches whole path segments only.
    assert get("/apiary") == (200, "frontend-a")


def test_a_dead_instance_is_taken_out_by_health_checks(clean_catalog):
    # Consul has no check on these registrations: only HAProxy's own checks can notice.
    register("frontend-a")
    register("frontend-b")
    seen = set()
    wait_for(lambda: seen.add(get("/")[1]) or {"frontend-a", "frontend-b"} <= seen, 30, "both instances serve")
    sh("systemctl stop frontend-a")
    wait_for(lambda: server_status("svc_frontend", 9001) == "DOWN", 15, "HAProxy marks the dead instance down")
    assert all(get("/") == (200, "frontend-b") for _ in range(6))


def server_status(backend, port):
    """Status of the server of a backend that has this port, from the stats CSV."""
    text = requests.get(f"{STATS}/stats;csv", auth=STATS_AUTH, timeout=3).text.lstrip("# ")
    for row in csv.DictReader(io.StringIO(text)):
        if row["pxname"] == backend and row.get("addr", "").endswith(f":{port}"):
            return row["status"]
    return None


# --- the floating IP and reloads --------------------------------------------------------------

def test_serves_on_the_vip_as_soon_as_the_node_holds_it(clean_catalog):
    register("frontend-a")
    wait_for(lambda: get("/") == (200, "frontend-a"), 30, "the instance serves")
    sh(f"ip addr add {VIP}/32 dev eth0")
    try:
        wait_for(lambda: get("/", host=VIP) == (200, "frontend-a"), 10, "the VIP serves without a reload")
    finally:
        sh(f"ip addr del {VIP}/32 dev eth0")


def test_reload_is_hitless(clean_catalog):
    register("frontend-a")
    register("frontend-b")
    wait_for(lambda: get("/")[0] == 200, 30, "an instance serves")
    results, stop = [], threading.Event()

    def load():
        while not stop.is_set():
            conn = http.client.HTTPSConnection(ADDRESS, 443, timeout=3, context=ssl._create_unverified_context())
            try:
                conn.request("GET", "/")
                results.append(conn.getresponse().status)
            except OSError as e:
                results.append(repr(e))
            finally:
                conn.close()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            time.sleep(0.5)
            sh("systemctl reload haproxy")
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    failures = [r for r in results if r != 200]
    assert len(results) > 50
    assert not failures, f"{len(failures)} of {len(results)} requests failed during reloads: {failures[:5]}"

"""The inventory plugin through ansible-inventory: groups, host variables, TLS/token from the
environment, and caching."""
import json
import subprocess

from conftest import free_port  # noqa: E402


def unwrap(value):
    """ansible-inventory --list marks inventory-provided strings as unsafe ({"__ansible_unsafe": ...})."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def inventory(nomad, path, *extra, env=None):
    proc = subprocess.run(["ansible-inventory", "-i", str(path), "--list", *extra], capture_output=True, text=True,
                          env=nomad.env(**(env or {})), timeout=120, check=False)
    return proc


def test_nodes_grouped_by_datacenter_class_pool_status_and_eligibility(nomad, tmp_path):
    path = tmp_path / "nomad.yml"
    path.write_text(
        "plugin: cloudvirt.platform.nomad\n"
        "keyed_groups:\n"
        "  - key: nomad_attributes['os.name']\n"
        "    prefix: os\n"
        "compose:\n"
        "  node_short_id: nomad_node_id[:8]\n")
    proc = inventory(nomad, path)
    assert proc.returncode == 0, proc.stderr
    data = unwrap(json.loads(proc.stdout))
    node = nomad.node()
    host = node["Name"]
    os_name = nomad.api("GET", f"/v1/node/{node['ID']}")["Attributes"]["os.name"]
    for group in ("nomad_dc_dc1", "nomad_class_none", "nomad_pool_default", "nomad_status_ready", "nomad_eligible",
                  f"os_{os_name}"):
        assert host in data[group]["hosts"], (group, data.keys())
    hostvars = data["_meta"]["hostvars"][host]
    assert hostvars["nomad_node_id"] == node["ID"]
    assert hostvars["ansible_host"] == node["Address"]
    assert hostvars["nomad_eligibility"] == "eligible" and "docker" in hostvars["nomad_drivers"]
    assert hostvars["node_short_id"] == node["ID"][:8]
    assert nomad.token not in proc.stdout


def test_cache_serves_the_inventory_when_nomad_is_away(nomad, tmp_path):
    path = tmp_path / "nomad.yml"
    path.write_text(
        "plugin: cloudvirt.platform.nomad\n"
        "cache: true\n"
        "cache_plugin: ansible.builtin.jsonfile\n"
        f"cache_connection: {tmp_path / 'cache'}\n"
        "cache_timeout: 600\n")
    first = inventory(nomad, path)
    assert first.returncode == 0, first.stderr
    host = nomad.node()["Name"]
    assert host in json.loads(first.stdout)["nomad_status_ready"]["hosts"]

    away = {"NOMAD_ADDR": f"http://127.0.0.1:{free_port()}"}
    cached = inventory(nomad, path, env=away)
    assert cached.returncode == 0 and host in json.loads(cached.stdout)["nomad_status_ready"]["hosts"], cached.stderr

    flushed = inventory(nomad, path, "--flush-cache", env=away)
    assert "Cannot reach Nomad at http://127.0.0.1:" in flushed.stderr, flushed.stderr
    assert host not in flushed.stdout

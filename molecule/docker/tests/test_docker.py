"""Docker as the Nomad client will use it: the engine runs with the settings from the
inventory, containers run, and they survive an engine restart (live-restore)."""
import json
import subprocess

import pytest

NODE = "docker-node1"


def sh(command):
    """A command on the node through `docker exec`: Go templates ({{ }}) would be taken for
    Jinja by testinfra's Ansible backend."""
    done = subprocess.run(["docker", "exec", NODE, "sh", "-c", command], capture_output=True, text=True)
    assert done.returncode == 0, f"{command!r}: {done.stderr}"
    return done.stdout.strip()


def info():
    return json.loads(sh("docker info --format '{{json .}}'"))


@pytest.fixture(scope="module")
def busybox():
    """The lab's busybox image, loaded into the node's Docker (no registry here)."""
    have = subprocess.run(["docker", "exec", NODE, "docker", "image", "inspect", "cloudvirt/busybox:1"],
                          capture_output=True)
    if have.returncode != 0:
        save = subprocess.Popen(["docker", "save", "cloudvirt/busybox:1"], stdout=subprocess.PIPE)
        subprocess.run(["docker", "exec", "-i", NODE, "docker", "load", "-q"], stdin=save.stdout, check=True,
                       capture_output=True)
        assert save.wait() == 0
    return "cloudvirt/busybox:1"


def test_engine_enabled_and_running(host):
    assert host.service("docker").is_enabled and host.service("docker").is_running


def test_daemon_json_settings_are_live(host):
    daemon = info()
    assert daemon["LoggingDriver"] == "json-file"
    assert daemon["LiveRestoreEnabled"] is True
    assert "172.30.12.1:5000" in daemon["RegistryConfig"]["IndexConfigs"]
    assert daemon["RegistryConfig"]["IndexConfigs"]["172.30.12.1:5000"]["Secure"] is False
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["log-opts"] == {"max-size": "5m", "max-file": "3"}


def test_socket_user_is_in_the_docker_group(host):
    assert "docker" in host.user("deploy").groups


def test_container_logs_rotate_as_configured(host, busybox):
    host.check_output(f"docker run -d --name logs {busybox} sh -c 'echo hello; sleep 600'")
    try:
        config = json.loads(sh("docker inspect --format '{{json .HostConfig.LogConfig}}' logs"))
        assert config == {"Type": "json-file", "Config": {"max-size": "5m", "max-file": "3"}}
        assert host.check_output("docker logs logs") == "hello"
    finally:
        host.run("docker rm -f logs")


def test_containers_survive_an_engine_restart(host, busybox):
    host.check_output(f"docker run -d --name survivor {busybox} sleep 600")
    try:
        pid = sh("docker inspect --format '{{.State.Pid}}' survivor")
        host.check_output("systemctl restart docker")
        assert sh("docker inspect --format '{{.State.Running}} {{.State.Pid}}' survivor") == f"true {pid}"
    finally:
        host.run("docker rm -f survivor")

#!/usr/bin/env python3
"""The lifecycle playbooks on the lab (`make lab`, with the app), as clients see them.

A request loop through the floating IP (every 50 ms, each request on a new connection, the
frontend and the API in turn) runs during each step; one run, in this order:

  add        LAB_NODES=4 scripts/lab.sh add-node (playbooks/add_node.yml -l node4), then
             deploy.yml -l edge --tags keepalived: wall time of add_node.yml
  drain      drain.yml -l <floating IP holder>, then -e maintenance=off
  release    deploy.yml -e app_version=<next>: a rolling release with a canary per job (the
             images of the running version tagged anew in the lab's registry)
  upgrade    upgrade.yml to Consul and Nomad relinked as +cloudvirt.1 (scripts/build-binaries.sh
             with CLOUDVIRT_BIN_METADATA), node by node with drains, then upgrade.yml back to
             the inventory's binaries
  certs      rotate_certs.yml: every node's certificates and keys renewed node by node, loaded
             without a restart (the loop also requests HTTPS on the floating IP, verified
             against the lab's CA)
  tokens     rotate_tokens.yml: Consul's and Nomad's management tokens and every token made
             from them replaced, Nomad restarted node by node, the old tokens deleted
  remove     remove_node.yml -l node4 -e confirm=yes
  loss       docker stop of the floating IP's holder under uploads: the failure window, and the
             seconds until every allocation of the app runs on the other nodes; the node is
             started again and made eligible afterwards

It prints, per step, the failed requests (target 0; `loss` is an unplanned outage and has a
window instead) and its time.

  scripts/bench_lifecycle.py [--steps add,drain,release,upgrade,certs,tokens,remove,loss]
"""
import argparse
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import lablib  # noqa: E402
from requestloop import RequestLoop  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NAME_PREFIX = os.environ.get("LAB_NAME_PREFIX", "lab-")


def log(msg):
    print(f"[bench_lifecycle {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def playbook(*args, env=None):
    """ansible-playbook on the lab inventory; its output goes to stderr as it comes."""
    command = ["ansible-playbook", "-i", str(lablib.INVENTORY), *args]
    log("$ " + " ".join(command[1:]))
    full_env = {**os.environ, "ANSIBLE_VAULT_PASSWORD_FILE": str(lablib.KEY_DIR / "vault-pass"), **(env or {})}
    done = subprocess.run(command, cwd=REPO, env=full_env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    recap = "\n".join(re.findall(r"^\S+\s+: ok=.*$", done.stdout, re.M))
    print(recap, file=sys.stderr)
    if done.returncode != 0:
        print(done.stdout[-4000:], file=sys.stderr)
        raise SystemExit(f"{args[0]} failed ({done.returncode})")


def holder(hosts):
    for name, address in hosts.items():
        out = subprocess.run(["docker", "exec", NAME_PREFIX + name, "ip", "-o", "-4", "addr"],
                             capture_output=True, text=True).stdout
        if f" {lablib.inventory()[2]['keepalived_vip']}/" in out:
            return name
    return None


def png(seed, width=640, height=480):
    """A PNG made here (no image library needed)."""
    rows = b"".join(b"\x00" + bytes((x + y + seed) % 256 for x in range(width * 3)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b""))


def nomad_mgmt():
    # read anew each time: the tokens step replaces it
    os.environ["NOMAD_TOKEN"] = lablib.secrets()["nomad_management_token"]
    return lablib.nomad()


def wait_for(predicate, timeout, what, step=1.0):
    """Seconds until predicate() holds; an API error (e.g. no leader yet) counts as not yet."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except (OSError, lablib.NomadError, requests.RequestException):
            pass
        time.sleep(step)
    raise SystemExit(f"not within {timeout} s: {what}")


def measured(name, urls, action):
    with RequestLoop(urls) as loop:
        start = time.monotonic()
        action()
        took = time.monotonic() - start
        time.sleep(2)
    log(f"{name}: {loop.summary()} in {took:.0f} s {loop.failed()[:5] if loop.failed() else ''}")
    return {"step": name, "failed": len(loop.failed()), "requests": len(loop.results), "seconds": round(took, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="add,drain,release,upgrade,certs,tokens,remove,loss")
    steps = parser.parse_args().steps.split(",")
    hosts, groups, group_vars = lablib.inventory()
    vip = f"http://{group_vars['keepalived_vip']}/"
    urls = [vip, vip + "api/images?limit=1"]
    rows = []

    if "add" in steps:
        def add():
            env = {**os.environ, "LAB_NODES": "4"}
            subprocess.run([str(REPO / "scripts" / "lab.sh"), "add-node"], cwd=REPO, env=env, check=True,
                           stdout=sys.stderr)
        rows.append(measured("add_node.yml", urls, add))
        rows.append(measured("deploy.yml --tags keepalived", urls,
                             lambda: playbook("playbooks/deploy.yml", "-l", "edge", "--tags", "keepalived",
                                              env={"LAB_NODES": "4"})))
        hosts, groups, group_vars = lablib.inventory()

    if "drain" in steps:
        node = holder(hosts)
        rows.append(measured(f"drain.yml ({node}, the IP holder)", urls,
                             lambda: playbook("playbooks/drain.yml", "-l", node)))
        rows.append(measured(f"drain.yml maintenance=off ({node})", urls,
                             lambda: playbook("playbooks/drain.yml", "-l", node, "-e", "maintenance=off")))

    if "release" in steps:
        nomad = nomad_mgmt()
        current = nomad.read_job("imagehost-backend")["TaskGroups"][0]["Tasks"][0]["Config"]["image"].rsplit(":", 1)[1]
        major, minor, patch = (int(x) for x in current.split("-")[0].split("."))
        nxt = f"{major}.{minor}.{patch + 1}"
        for component in ("backend", "worker", "frontend"):
            subprocess.run(["docker", "tag", f"cloudvirt/app-{component}:{current}", f"cloudvirt/app-{component}:{nxt}"],
                           check=True)
        rows.append(measured(f"deploy.yml app {current} -> {nxt}", urls,
                             lambda: playbook("playbooks/deploy.yml", "-e", f"app_version={nxt}")))

    if "upgrade" in steps:
        built = subprocess.run([str(REPO / "scripts" / "build-binaries.sh"), "consul", "nomad"], check=True,
                               env={**os.environ, "CLOUDVIRT_BIN_METADATA": "cloudvirt.1"}, capture_output=True, text=True)
        consul, nomad = built.stdout.split()
        rows.append(measured("upgrade.yml to +cloudvirt.1", urls,
                             lambda: playbook("playbooks/upgrade.yml", "-e", f"consul_binary_src={consul}",
                                              "-e", f"nomad_binary_src={nomad}")))
        rows.append(measured("upgrade.yml back", urls, lambda: playbook("playbooks/upgrade.yml")))

    if "certs" in steps:
        os.environ["REQUESTS_CA_BUNDLE"] = str(lablib.KEY_DIR / "pki" / "ca.pem")
        https = vip.replace("http://", "https://")
        rows.append(measured("rotate_certs.yml", urls + [https, https + "api/images?limit=1"],
                             lambda: playbook("playbooks/rotate_certs.yml")))

    if "tokens" in steps:
        rows.append(measured("rotate_tokens.yml", urls, lambda: playbook("playbooks/rotate_tokens.yml")))

    if "remove" in steps and "node4" in hosts:
        rows.append(measured("remove_node.yml node4", urls,
                             lambda: playbook("playbooks/remove_node.yml", "-l", "node4", "-e", "confirm=yes")))

    if "loss" in steps:
        victim = holder({h: hosts[h] for h in groups["nomad_servers"]})
        # the API of a server that stays
        os.environ["NOMAD_ADDR"] = f"https://{hosts[next(h for h in groups['nomad_servers'] if h != victim)]}:4646"
        nomad = nomad_mgmt()
        node_id = next(n["ID"] for n in nomad.list_nodes() if n["Name"] == victim)
        accepted, halt = [], threading.Event()

        def upload():
            i = 0
            while not halt.is_set():
                i += 1
                data = png(i)
                try:
                    r = requests.post(vip + "api/images", files={"file": (f"b{i}.png", data, "image/png")}, timeout=10)
                    if r.status_code == 201:
                        accepted.append(r.json()["id"])
                except requests.RequestException:
                    pass
                halt.wait(0.3)

        uploader = threading.Thread(target=upload, daemon=True)
        uploader.start()
        with RequestLoop(urls, timeout=1.0) as loop:
            time.sleep(2)
            lost = time.monotonic()
            subprocess.run(["docker", "stop", NAME_PREFIX + victim], check=True, capture_output=True)

            def rescheduled():
                wanted = sum(g["Count"] for j in nomad.list_jobs() if j["ID"].startswith("imagehost-")
                             for g in nomad.read_job(j["ID"])["TaskGroups"])
                running = [a for a in nomad.get("/v1/allocations") if a["ClientStatus"] == "running"
                           and a["JobID"].startswith("imagehost-")]
                return len(running) == wanted and all(a["NodeID"] != node_id for a in running)
            wait_for(rescheduled, 300, "every allocation running elsewhere")
            reschedule = time.monotonic() - lost
            time.sleep(2)
        halt.set()
        uploader.join()
        pending = set(accepted)

        def all_done():
            for image_id in list(pending):
                if requests.get(f"{vip}api/images/{image_id}", timeout=10).json().get("status") == "done":
                    pending.discard(image_id)
            return not pending
        wait_for(all_done, 300, "every accepted upload resized")
        log(f"node loss ({victim}): window {loop.window():.2f} s, {loop.summary()}, rescheduled in {reschedule:.0f} s, "
            f"{len(accepted)} uploads accepted, all done")
        rows.append({"step": f"docker stop {victim} (unplanned)", "failed": len(loop.failed()),
                     "requests": len(loop.results), "seconds": round(reschedule, 1),
                     "note": f"window {loop.window():.2f} s; {len(accepted)} accepted uploads all resized"})
        subprocess.run(["docker", "start", NAME_PREFIX + victim], check=True, capture_output=True)
        wait_for(lambda: any(n["Name"] == victim and n["Status"] == "ready" for n in nomad.list_nodes()), 180,
                 f"{victim} ready again")

    print()
    print(f"{'step':48} {'failed':>7} {'requests':>9} {'seconds':>8}  note")
    for row in rows:
        print(f"{row['step']:48} {row['failed']:>7} {row['requests']:>9} {row['seconds']:>8}  {row.get('note', '')}")
    print(json.dumps(rows), file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Failover of the floating IP, as a client sees it, on the lab cluster (`make lab`).

A bounded request loop hits http://<floating-ip>/ at a fixed rate (default every 50 ms, 1 s
timeout, each request on a new connection) while the node holding the IP is taken away in three
ways, one after the other in the same run:

  haproxy-stop  `systemctl stop haproxy` on the holder: keepalived's track script notices
  node-stop     `docker stop` of the holder: keepalived says goodbye (priority-0 advert)
  node-crash    `docker kill` of the holder: silence, the backups' down timer must expire

For each it prints the failure window (first failed request to the first success after the
last failure), the number of failed requests, and how long until another node held the IP.
After each case the node is brought back and the script waits until it holds the IP again.

If no `frontend` service runs in Consul (the app is not deployed), a small busybox web job
registered as `frontend` (the edge's default route) stands in for it and is removed at the end.

  scripts/bench_failover.py [--interval 0.05] [--cases haproxy-stop,node-stop,node-crash]

Nomad and Consul are reached as the lab's controller reaches them (scripts/lablib.py: HTTPS with
its client certificate, the vaulted tokens); NOMAD_ADDR, NOMAD_TOKEN, ... override.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import lablib  # noqa: E402
import requestloop  # noqa: E402

NAME_PREFIX = os.environ.get("LAB_NAME_PREFIX", "lab-")
JOB = "bench-failover-web"


def log(msg):
    print(f"[bench_failover {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def lab():
    """(edge node name -> address, VIP) from the inventory make lab wrote."""
    hosts, groups, group_vars = lablib.inventory()
    return {name: hosts[name] for name in groups["edge"]}, group_vars["keepalived_vip"]


def container(node):
    return NAME_PREFIX + node


def holder(nodes, vip):
    found = []
    for node in nodes:
        done = subprocess.run(["docker", "exec", container(node), "ip", "-o", "-4", "addr", "show"],
                              capture_output=True, text=True)
        if done.returncode == 0 and f" {vip}/" in done.stdout:
            found.append(node)
    return found[0] if len(found) == 1 else None


def get(url, timeout):
    return requestloop.get(url, timeout=timeout)[0]


def wait_for(predicate, timeout, what, step=0.2):
    start, last_note = time.monotonic(), time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - last_note >= 15:
            log(f"… still waiting ({time.monotonic() - start:.0f} s of at most {timeout} s): {what}")
            last_note = time.monotonic()
        time.sleep(step)
    raise SystemExit(f"bench_failover: not within {timeout} s: {what}")


def stand_in_job():
    return {"Job": {
        "ID": JOB, "Name": JOB, "Namespace": "app", "Type": "service", "Datacenters": ["*"],
        "TaskGroups": [{
            "Name": "web", "Count": 3,
            "Spreads": [{"Attribute": "${node.unique.id}", "Weight": 100}],
            "Networks": [{"DynamicPorts": [{"Label": "http", "To": 8080}]}],
            "Services": [{"Name": "frontend", "PortLabel": "http", "Provider": "consul",
                          "Checks": [{"Type": "http", "Path": "/healthz", "Interval": 2_000_000_000,
                                      "Timeout": 1_000_000_000}]}],
            "Tasks": [{
                "Name": "httpd", "Driver": "docker",
                "Config": {"image": "cloudvirt/busybox:1", "force_pull": False, "ports": ["http"],
                           "command": "httpd", "args": ["-f", "-p", "8080", "-h", "/local/www"]},
                "Templates": [{"EmbeddedTmpl": "ok\n", "DestPath": "local/www/index.html"},
                              {"EmbeddedTmpl": "ok\n", "DestPath": "local/www/healthz"}],
                "Resources": {"CPU": 50, "MemoryMB": 32},
            }],
        }],
    }}


def passing_frontends(address):
    return len(lablib.consul_get(address, "/v1/health/service/frontend?passing"))


def take_away(case, node):
    if case == "haproxy-stop":
        subprocess.run(["docker", "exec", container(node), "systemctl", "stop", "haproxy"], check=True)
    elif case == "node-stop":
        subprocess.run(["docker", "stop", container(node)], check=True, capture_output=True)
    elif case == "node-crash":
        subprocess.run(["docker", "kill", container(node)], check=True, capture_output=True)


def bring_back(case, node):
    if case == "haproxy-stop":
        subprocess.run(["docker", "exec", container(node), "systemctl", "start", "haproxy"], check=True)
    else:
        subprocess.run(["docker", "start", container(node)], check=True, capture_output=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between requests")
    parser.add_argument("--timeout", type=float, default=1.0, help="timeout of one request")
    parser.add_argument("--cases", default="haproxy-stop,node-stop,node-crash")
    args = parser.parse_args()

    nodes, vip = lab()
    first = next(iter(nodes.values()))
    url = f"http://{vip}/"
    nomad = lablib.nomad()

    own_job = passing_frontends(first) == 0
    if own_job:
        log(f"no frontend service in Consul: running the stand-in job {JOB}")
        nomad.request("PUT", "/v1/jobs", body=stand_in_job())
        wait_for(lambda: passing_frontends(first) == 3, 180, "three stand-in instances passing their checks", step=1)
    wait_for(lambda: get(url, 2) == 200, 60, f"{url} answers")

    rows = []
    try:
        for case in args.cases.split(","):
            found = []
            wait_for(lambda: found.append(holder(nodes, vip)) or found[-1] is not None, 180, "one node holds the IP")
            owner = found[-1]
            wait_for(lambda: all(get(url, 2) == 200 for _ in range(5)), 60, f"{url} answers steadily")
            log(f"{case}: taking away {owner}, the holder, under a request every {args.interval * 1000:.0f} ms")
            loop = requestloop.RequestLoop(url, interval=args.interval, timeout=args.timeout)
            loop.start()
            time.sleep(2)
            take_away(case, owner)
            try:
                moved = wait_for(lambda: holder([n for n in nodes if n != owner], vip) is not None, 30,
                                 "another node holds the IP")
                wait_for(lambda: loop.results and all(outcome == 200 for *_, outcome in loop.results[-10:]), 60,
                         "ten requests in a row succeed")
                loop.stop()
                window, failed, total = loop.window(), len(loop.failed()), len(loop.results)
            finally:
                if loop.is_alive():
                    loop.stop()
                bring_back(case, owner)
            rows.append((case, window, failed, total, moved))
            log(f"{case}: window {window * 1000:.0f} ms, {failed} of {total} requests failed; waiting for {owner} to rejoin")
            wait_for(lambda: holder(nodes, vip) == owner, 240, f"{owner} back and holding the IP", step=1)
    finally:
        if own_job:
            nomad.request("DELETE", f"/v1/job/{JOB}", params={"purge": "true"})

    print()
    print(f"Floating IP failover ({len(nodes)} lab nodes, one request every {args.interval * 1000:.0f} ms, "
          f"{args.timeout:.1f} s timeout; target window < 3000 ms)")
    print(f"{'case':<14}{'failure window':>16}{'failed requests':>17}{'IP moved after':>16}")
    for case, window, failed, total, moved in rows:
        print(f"{case:<14}{window * 1000:>13.0f} ms{f'{failed}/{total}':>17}{moved * 1000:>13.0f} ms")
    return 0 if all(r[1] < 3 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

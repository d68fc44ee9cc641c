#!/usr/bin/env python3
"""Benchmark cloudvirt.platform.nomad_job against community.general.nomad_job on one Nomad.

Starts its own `nomad agent -dev` on loopback, then times ansible-playbook runs that apply 20
jobs with each module (same playbook shape, same agent):

  no-change run       the 20 jobs are already registered as given
  register 20 changed every job differs (a meta value), registered without waiting

Each figure is the median wall time of --rounds runs (the two modules alternate, so load from
other processes hits both alike); the CPU time the runs used (user+sys of ansible-playbook and
everything it ran) is printed too, as it is far less sensitive to a busy machine. Prints both
figures and their ratio; exits non-zero when a run did not change exactly what it should (a
benchmark of a broken module is worthless).

  scripts/bench_nomad_job.py [--jobs 20] [--rounds 3]
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
COLLECTIONS = REPO / ".build" / "collections"


def log(msg):
    print(f"[bench_nomad_job {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def nomad_binary():
    if os.environ.get("NOMAD_BINARY"):
        return os.environ["NOMAD_BINARY"]
    version = re.search(r"^NOMAD_VERSION=(\S+)", (REPO / "scripts" / "versions.env").read_text(), re.M).group(1)
    cached = Path(os.environ.get("CLOUDVIRT_CACHE", Path.home() / ".cache" / "cloudvirt")) / "bin" / f"nomad-{version}"
    if cached.is_file():
        return str(cached)
    found = shutil.which("nomad")
    if not found:
        sys.exit("no nomad binary: run scripts/build-binaries.sh nomad (or set NOMAD_BINARY)")
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_agent(binary, workdir):
    http, rpc, serf = free_port(), free_port(), free_port()
    (workdir / "agent.hcl").write_text(f"""
bind_addr = "127.0.0.1"
data_dir  = "{workdir}/data"
disable_update_check = true
ports {{
  http = {http}
  rpc  = {rpc}
  serf = {serf}
}}
client {{
  options {{
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }}
}}
consul {{
  address          = "127.0.0.1:1"
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}}
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMAD_") and k != "AWS_CA_BUNDLE"}
    logfile = open(workdir / "agent.log", "w")
    proc = subprocess.Popen([binary, "agent", "-dev", "-config", str(workdir / "agent.hcl")], stdout=logfile,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = f"http://127.0.0.1:{http}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(address + "/v1/status/leader", timeout=2) as resp:
                if json.loads(resp.read()):
                    return proc, address, http
        except OSError:
            pass
        time.sleep(0.5)
    proc.kill()
    sys.exit("nomad agent did not come up:\n" + (workdir / "agent.log").read_text()[-3000:])


def job_hcl(index, rev):
    # count = 0: registering costs Nomad a plan and an evaluation but starts no container, so the
    # figures measure the modules, not Docker
    return f'''job "bench-{index:02d}" {{
  datacenters = ["*"]
  meta {{
    rev = "{rev}"
  }}
  group "g" {{
    count = 0
    task "t" {{
      driver = "docker"
      config {{
        image = "cloudvirt/busybox:1"
      }}
    }}
  }}
}}
'''


OURS = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: apply
      cloudvirt.platform.nomad_job:
        address: "{{ nomad_address }}"
        content: "{{ item }}"
        wait: false
      loop: "{{ jobs }}"
      register: applied
    - name: count
      ansible.builtin.debug:
        msg: "BENCH_CHANGED={{ applied.results | selectattr('changed') | list | length }}"
"""

COMMUNITY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: apply
      community.general.nomad_job:
        host: 127.0.0.1
        port: "{{ nomad_port | int }}"
        use_ssl: false
        state: present
        content: "{{ item }}"
        timeout: 10
      loop: "{{ jobs }}"
      register: applied
    - name: count
      ansible.builtin.debug:
        msg: "BENCH_CHANGED={{ applied.results | selectattr('changed') | list | length }}"
"""


class Bench:
    def __init__(self, workdir, address, port, jobs):
        self.workdir = workdir
        self.address = address
        self.port = port
        self.jobs = jobs
        self.rev = 0
        (workdir / "ours.yml").write_text(OURS)
        (workdir / "community.yml").write_text(COMMUNITY)
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                        ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
        for key in [k for k in self.env if k.startswith("NOMAD_")]:
            del self.env[key]

    def vars_file(self, rev):
        path = self.workdir / f"jobs-{rev}.json"
        if not path.exists():
            path.write_text(json.dumps({"jobs": [job_hcl(i, rev) for i in range(self.jobs)],
                                        "nomad_address": self.address, "nomad_port": self.port}))
        return path

    def run(self, playbook, rev, expect_changed):
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{self.vars_file(rev)}",
               str(self.workdir / playbook)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=False)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        match = re.search(r"BENCH_CHANGED=(\d+)", proc.stdout)
        if proc.returncode != 0 or not match or int(match.group(1)) != expect_changed:
            sys.exit(f"{playbook} (rev {rev}) did not change {expect_changed} job(s) as expected:\n"
                     f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        return elapsed, cpu

    def next_rev(self):
        self.rev += 1
        return self.rev


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not (COLLECTIONS / "ansible_collections" / "cloudvirt" / "platform").exists():
        sys.exit("run `make venv` first (it links this checkout as the cloudvirt.platform collection)")

    binary = nomad_binary()
    workdir = Path(tempfile.mkdtemp(prefix="bench-nomad-job-"))
    log(f"starting {binary} agent -dev in {workdir}")
    proc, address, port = start_agent(binary, workdir)
    try:
        bench = Bench(workdir, address, port, args.jobs)
        log(f"seeding {args.jobs} jobs (also warms both modules up)")
        base = bench.next_rev()
        bench.run("ours.yml", base, args.jobs)
        bench.run("community.yml", base, 0)
        results = {"no_change": {"ours": [], "community": []}, "changed": {"ours": [], "community": []}}
        for round_no in range(1, args.rounds + 1):
            log(f"round {round_no}/{args.rounds}")
            # alternate who goes first so drifting load favours neither
            order = [("ours", "ours.yml"), ("community", "community.yml")]
            if round_no % 2 == 0:
                order.reverse()
            for who, playbook in order:
                results["no_change"][who].append(bench.run(playbook, base, 0))
            for who, playbook in order:
                rev = bench.next_rev()
                results["changed"][who].append(bench.run(playbook, rev, args.jobs))
                base = rev
            # leave the jobs at `base` for the next round's no-change runs
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    def paired_ratio(key, i):
        # runs of one round are adjacent in time and see the same machine load: compare within rounds
        return statistics.median(o[i] / c[i] for o, c in zip(results[key]["ours"], results[key]["community"]))

    version = subprocess.run([binary, "version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    load = os.getloadavg()[0]
    print(f"nomad_job benchmark: {args.jobs} jobs per ansible-playbook run, median of {args.rounds} rounds, "
          f"{version} dev agent, load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':26}{'cloudvirt.platform':>20}{'community.general':>20}{'ratio':>8}")
    for key, label in (("no_change", "no-change run"), ("changed", f"register {args.jobs} changed")):
        for i, kind in ((0, "wall"), (1, "cpu")):
            ours = statistics.median(x[i] for x in results[key]["ours"])
            theirs = statistics.median(x[i] for x in results[key]["community"])
            print(f"{label + ' (' + kind + ')':26}{ours:>18.2f} s{theirs:>18.2f} s{paired_ratio(key, i):>8.2f}")
    ratio = paired_ratio("no_change", 0)
    print("ratio = median over rounds of ours/community.general (below 1: ours is faster)")
    print(f"target (no-change run no slower than community.general): {'met' if ratio <= 1.0 else 'NOT met'} "
          f"(wall ratio {ratio:.2f})")
    print("all runs (wall, cpu): " + json.dumps(
        {k: {w: [[round(x, 2) for x in pair] for pair in v] for w, v in d.items()} for k, d in results.items()}))


if __name__ == "__main__":
    main()

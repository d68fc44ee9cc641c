"""playbooks/rotate_gossip.yml on the running cluster: --check changes nothing; a rotation
leaves Consul (every agent, LAN and WAN pools) and Nomad (the servers) with one new key on
every member, every node's configuration holding it and every member alive; an agent restarted
afterwards rejoins with it; the keys never appear in the play's output; rotating again to the
same key changes nothing."""
import os
import sys
from pathlib import Path

from conftest import NODES, _api, load_secrets, sh, wait_for

sys.path.insert(0, str(Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
                       / "tests" / "support"))
from playbooks import recap, run_playbook, said  # noqa: E402


def consul(method, path):
    return _api(8501, "X-Consul-Token", load_secrets()["consul_management_token"], method, path)


def nomad(method, path):
    return _api(4646, "X-Nomad-Token", load_secrets()["nomad_management_token"], method, path)


def keyrings():
    """{pool: {key: members holding it}, ...} and {pool: members} for Consul's pools and Nomad's."""
    rings, members = {}, {}
    for pool in consul("GET", "/v1/operator/keyring"):
        name = "consul " + ("WAN" if pool["WAN"] else "LAN")
        rings[name], members[name] = pool["Keys"], pool["NumNodes"]
    ring = nomad("GET", "/v1/agent/keyring/list")
    rings["nomad"], members["nomad"] = ring["Keys"], ring["NumNodes"]
    return rings, members


def assert_ok(done):
    assert done.returncode == 0, done.output[-4000:]


def test_rotate_gossip_keys_of_consul_and_nomad():
    before, members = keyrings()
    assert all(len(keys) == 1 for keys in before.values()), "one key per pool after deploy"
    old = {key for keys in before.values() for key in keys}

    plan = run_playbook("rotate_gossip.yml", "--check")
    assert_ok(plan)
    assert said(plan, "would rotate"), plan.output[-3000:]
    assert keyrings()[0] == before

    done = run_playbook("rotate_gossip.yml")
    assert_ok(done)
    after, members_after = keyrings()
    assert members_after == members, (members, members_after)
    new = {}
    for pool, keys in after.items():
        assert len(keys) == 1, f"{pool}: {len(keys)} keys after the rotation"
        (key, holders), = keys.items()
        assert key not in old and holders == members[pool], (pool, holders, members[pool])
        new[pool.split()[0]] = key
    assert new["consul"] != new["nomad"]
    for secret in old | set(new.values()):
        assert secret not in done.output and secret not in plan.output, "a gossip key shows in the play's output"

    for node in NODES:
        assert new["consul"] in sh(node, "cat /etc/consul.d/gossip.hcl")
        assert new["nomad"] in sh(node, "cat /etc/nomad.d/gossip.hcl")  # every node is a server here
    alive = consul("GET", "/v1/agent/members")
    assert sorted(m["Name"] for m in alive if m["Status"] == 1) == NODES, alive

    # A restarted agent loads its keyring (the new key) from its data directory and rejoins.
    sh(NODES[1], "systemctl restart consul nomad")
    wait_for(lambda: all(m["Status"] == 1 for m in consul("GET", "/v1/agent/members")) and
             len(consul("GET", "/v1/agent/members")) == len(NODES), 60, f"{NODES[1]}'s Consul rejoined")
    wait_for(lambda: [m["Status"] for m in nomad("GET", "/v1/agent/members")["Members"]] == ["alive"] * len(NODES), 60,
             f"{NODES[1]}'s Nomad server rejoined")
    assert keyrings()[0] == after

    again = run_playbook("rotate_gossip.yml", "-e", f"consul_gossip_key={new['consul']}",
                         "-e", f"nomad_gossip_key={new['nomad']}")
    assert_ok(again)
    assert said(again, "nothing to do"), again.output[-3000:]
    changed = {host: counts["changed"] for host, counts in recap(again.output).items() if counts.get("changed")}
    assert not changed, f"rotating to the keys in use changed something: {changed}\n{again.output[-3000:]}"
    assert keyrings()[0] == after

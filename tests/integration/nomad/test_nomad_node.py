"""nomad_node: drain a node with a running job and wait for it, undrain, eligibility, purge guard."""
import pytest


@pytest.fixture
def node(nomad):
    node = nomad.node()
    yield node
    # whatever happened, give the node back to the other tests
    nomad.api("POST", f"/v1/node/{node['ID']}/drain", body={"NodeID": node["ID"], "DrainSpec": None, "MarkEligible": True})
    nomad.api("POST", f"/v1/node/{node['ID']}/eligibility", body={"NodeID": node["ID"], "Eligibility": "eligible"})


def test_drain_waits_until_the_job_left_and_undrain_brings_it_back(nomad, run, make_job, node):
    assert run("nomad_job", content=make_job("pinned", count=1))["changed"]
    assert len(nomad.running("pinned")) == 1

    # other tests' jobs share the node: a short deadline bounds the wait for their migration
    drained = run("nomad_node", node=node["Name"], drain=True, deadline="10s", reason="kernel upgrade", diff=True)
    assert drained["changed"] is True, drained
    assert drained["node"]["eligibility"] == "ineligible" and drained["node"]["draining"] is False
    assert drained["remaining_allocations"] == []
    assert any("drained" in e for e in drained["events"]), drained["events"]
    assert "draining = false" in drained["diff"]["before"] and "eligible = false" in drained["diff"]["after"]
    assert nomad.running("pinned") == [], "the job's allocation left the node"
    last = nomad.api("GET", f"/v1/node/{node['ID']}")["LastDrain"]
    assert last["Status"] == "complete" and last["Meta"] == {"message": "kernel upgrade"}

    again = run("nomad_node", node=node["Name"], drain=True, deadline="10s")
    assert again["changed"] is False, again

    undrained = run("nomad_node", node=node["ID"][:8], drain=False)
    assert undrained["changed"] is True and undrained["node"]["eligibility"] == "eligible"
    nomad.wait_for("the job to run again on the eligible node", lambda: nomad.running("pinned"))
    assert run("nomad_node", node=node["ID"], drain=False)["changed"] is False


def test_eligibility_check_mode_and_contradictions(nomad, run, node):
    planned = run("nomad_node", node=node["Name"], eligible=False, check=True)
    assert planned["changed"] is True
    assert nomad.node()["SchedulingEligibility"] == "eligible"
    assert run("nomad_node", node=node["Name"], eligible=False)["changed"] is True
    assert nomad.node()["SchedulingEligibility"] == "ineligible"
    assert run("nomad_node", node=node["Name"], eligible=False)["changed"] is False
    assert run("nomad_node", node=node["Name"], eligible=True)["changed"] is True
    assert nomad.node()["SchedulingEligibility"] == "eligible"

    both = run("nomad_node", node=node["Name"], drain=True, eligible=True)
    assert both["failed"] is True and "contradict" in both["msg"]
    unknown = run("nomad_node", node="no-such-node", drain=True)
    assert unknown["failed"] is True and "No Nomad node matches 'no-such-node'" in unknown["msg"]
    nothing = run("nomad_node", node=node["Name"])
    assert nothing["failed"] is True and "drain, eligible or purge" in nothing["msg"]


def test_purge_refuses_a_live_node_and_ignores_a_missing_one(nomad, run, node):
    live = run("nomad_node", node=node["Name"], purge=True)
    assert live["failed"] is True and "is ready" in live["msg"] and "Stop its Nomad agent" in live["msg"]
    assert nomad.node()["ID"] == node["ID"]
    missing = run("nomad_node", node="0123abcd-0000-0000-0000-000000000000", purge=True)
    assert missing["changed"] is False and "nothing to purge" in missing["msg"]

"""nomad_job_scale: absolute and relative counts, the reason recorded by Nomad, waiting for the
allocations to start or stop, bounds."""

SCALING = 'scaling {\n      enabled = true\n      min     = 0\n      max     = 4\n    }'


def test_scale_up_relative_records_the_message_and_waits_for_running_allocations(nomad, run, make_job):
    assert run("nomad_job", content=make_job("scaler", count=1, group_extra=SCALING))["changed"]

    up = run("nomad_job_scale", name="scaler", count="+2", reason="load test", diff=True)
    assert up["changed"] is True, up
    assert (up["previous_count"], up["count"], up["group"]) == (1, 3, "web")
    assert up["running"] == 3 and len(nomad.running("scaler")) == 3
    assert up["diff"] == {"before": 'group "web" count = 1\n', "after": 'group "web" count = 3\n',
                          "before_header": "job 'scaler'", "after_header": "job 'scaler'"}
    events = nomad.api("GET", "/v1/job/scaler/scale")["TaskGroups"]["web"]["Events"]
    assert events[0]["Message"] == "load test" and events[0]["PreviousCount"] == 1 and events[0]["Count"] == 3

    same = run("nomad_job_scale", name="scaler", group="web", count="3")
    assert same["changed"] is False and same["running"] == 3

    planned = run("nomad_job_scale", name="scaler", count="+1", check=True)
    assert planned["changed"] is True and planned["count"] == 4
    assert nomad.job("scaler")["TaskGroups"][0]["Count"] == 3

    down = run("nomad_job_scale", name="scaler", count="-2")
    assert down["changed"] is True and down["count"] == 1
    assert len(nomad.running("scaler")) == 1, "the surplus allocations stopped before the module returned"
    assert any("stopping" in e for e in down["events"]) or down["running"] == 1


def test_scale_refuses_bad_counts_and_unknown_groups(nomad, run, make_job):
    assert run("nomad_job", content=make_job("bounded", count=1, group_extra=SCALING), wait=False)["changed"]
    too_many = run("nomad_job_scale", name="bounded", count="5")
    assert too_many["failed"] is True and "above the scaling policy maximum 4" in too_many["msg"]
    negative = run("nomad_job_scale", name="bounded", count="-2")
    assert negative["failed"] is True and "cannot be negative" in negative["msg"]
    garbage = run("nomad_job_scale", name="bounded", count="lots")
    assert garbage["failed"] is True and "relative change" in garbage["msg"]
    no_group = run("nomad_job_scale", name="bounded", group="db", count="2")
    assert no_group["failed"] is True and "has no task group 'db' (it has web)" in no_group["msg"]
    no_job = run("nomad_job_scale", name="nope", count="2")
    assert no_job["failed"] is True and "job 'nope' does not exist" in no_job["msg"]

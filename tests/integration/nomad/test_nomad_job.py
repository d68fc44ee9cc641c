"""nomad_job against a real Nomad: idempotence through the plan, diff, check mode, waiting for
deployments with useful failures, auto-revert, canaries, absent/purge, guarded writes."""
import json
import time

# A task that dies at once must not look healthy: on a loaded machine Docker may report the exit
# later than a 1s min_healthy_time, so jobs meant to fail get a margin.
FAILING_UPDATE = 'min_healthy_time = "5s"\n      healthy_deadline = "30s"\n      progress_deadline = "0"'


def test_submit_waits_for_health_then_resubmit_is_unchanged_and_a_change_shows_its_diff(nomad, run, make_job):
    first = run("nomad_job", content=make_job("web", count=1), diff=True)
    assert first["changed"] is True, first
    assert first["deployment"]["status"] == "successful", first
    assert first["deployment"]["task_groups"]["web"]["healthy"] == 1
    assert any("evaluation" in e for e in first["events"]) and any("successful" in e for e in first["events"])
    assert len(nomad.running("web")) == 1
    # the HCL source is stored with the job, like `nomad job run` does
    submission = nomad.api("GET", "/v1/job/web/submission", version=0)
    assert 'job "web"' in submission["Source"] and submission["Format"] == "hcl2"

    again = run("nomad_job", content=make_job("web", count=1), diff=True)
    assert again["changed"] is False, again
    assert "diff" not in again and again["changes"] == []
    assert nomad.job("web")["Version"] == 0

    changed = run("nomad_job", content=make_job("web", count=2, args=("sleep", "3601")), diff=True)
    assert changed["changed"] is True
    before, after = changed["diff"]["before"], changed["diff"]["after"]
    assert 'group "web"' in before and "Count = 1" in before and "args[0] = 3600" in before
    assert "Count = 2" in after and "args[0] = 3601" in after
    assert "Namespace" not in before + after, "only changed fields belong in the diff"
    assert any(c.startswith("group web: Count 1 -> 2") for c in changed["changes"]), changed["changes"]
    assert changed["plan"]["updates"]["web"], changed["plan"]
    assert changed["deployment"]["status"] == "successful" and changed["job_version"] == 1
    assert len(nomad.running("web")) == 2


def test_check_mode_returns_the_plan_and_registers_nothing(nomad, run, make_job):
    assert run("nomad_job", content=make_job("checked"), wait=False)["changed"]
    index = nomad.job("checked")["JobModifyIndex"]
    evals = len(nomad.api("GET", "/v1/job/checked/evaluations"))

    planned = run("nomad_job", content=make_job("checked", count=3), check=True, diff=True)
    assert planned["changed"] is True
    assert planned["plan"]["diff_type"] == "Edited"
    assert planned["plan"]["updates"]["web"].get("place") == 2, planned["plan"]
    assert "Count = 3" in planned["diff"]["after"]
    assert "eval_id" not in planned and "events" not in planned
    job = nomad.job("checked")
    assert job["JobModifyIndex"] == index and job["TaskGroups"][0]["Count"] == 1
    assert len(nomad.api("GET", "/v1/job/checked/evaluations")) == evals

    new = run("nomad_job", content=make_job("never-created"), check=True)
    assert new["changed"] is True and new["plan"]["diff_type"] == "Added"
    assert nomad.job("never-created") is None


def test_a_failing_task_fails_the_wait_naming_allocation_task_events_and_stderr(nomad, run, make_job):
    hcl = make_job("crasher", args=("sh", "-c", "echo boom-from-the-task >&2; exit 3"), update=FAILING_UPDATE)
    start = time.time()
    result = run("nomad_job", content=hcl)
    assert result.get("failed") is True, result
    assert time.time() - start < 60
    msg = result["msg"]
    alloc = nomad.allocs("crasher")[0]
    assert "Deployment" in msg and "failed" in msg
    assert alloc["ID"][:8] in msg, msg
    assert "task 'server' failed" in msg
    assert "Terminated" in msg and "3" in msg
    assert "boom-from-the-task" in msg, "the last stderr lines are quoted"
    assert result["failed_allocations"][0]["tasks"][0]["name"] == "server"
    assert result["events"], "progress is returned on failure too"

    # unchanged, but its current version never became healthy: waiting says so
    again = run("nomad_job", content=hcl)
    assert again.get("failed") is True and again["changed"] is False
    assert "is unchanged, but the deployment" in again["msg"]
    # without waiting, an unchanged job is just unchanged
    assert run("nomad_job", content=hcl, wait=False)["changed"] is False


def test_auto_revert_is_reported_and_the_previous_version_runs_again(nomad, run, make_job):
    update = ('min_healthy_time = "1s"\n      healthy_deadline = "20s"\n      progress_deadline = "0"\n'
              '      auto_revert = true')
    good = make_job("reverting", update=update)
    assert run("nomad_job", content=good)["deployment"]["status"] == "successful"

    bad = make_job("reverting", update=FAILING_UPDATE + "\n      auto_revert = true", args=("sh", "-c", "exit 7"))
    result = run("nomad_job", content=bad)
    assert result.get("failed") is True, result
    assert "auto-reverted the job to version 0" in result["msg"], result["msg"]
    assert result["reverted"] is True and result["reverted_to_version"] == 0
    assert result["deployment"]["task_groups"]["web"]["auto_revert"] is True

    def back_on_good_version():
        job = nomad.job("reverting")
        running = nomad.running("reverting")
        return job["Version"] == 2 and running and all(a["JobVersion"] == 2 for a in running)
    nomad.wait_for("the reverted version to run", back_on_good_version)
    assert nomad.job("reverting")["TaskGroups"][0]["Tasks"][0]["Config"]["args"] == ["3600"]
    # the reverted job equals the good specification
    assert run("nomad_job", content=good)["changed"] is False


def test_canaries_wait_for_promotion_or_get_promoted(nomad, run, make_job):
    update = 'canary = 1\n      min_healthy_time = "1s"\n      healthy_deadline = "20s"\n      progress_deadline = "0"'
    assert run("nomad_job", content=make_job("canary", update=update))["changed"]

    v1 = make_job("canary", update=update, args=("sleep", "3700"))
    waiting = run("nomad_job", content=v1)
    assert waiting["changed"] is True and not waiting.get("failed"), waiting
    group = waiting["deployment"]["task_groups"]["web"]
    assert waiting["deployment"]["requires_promotion"] is True
    assert group["desired_canaries"] == 1 and group["placed_canaries"] == 1 and group["promoted"] is False
    assert any("awaiting promotion" in w for w in waiting.get("warnings", [])), waiting

    promoted = run("nomad_job", content=v1, promote=True)
    assert promoted["changed"] is False
    assert promoted["deployment"]["status"] == "successful"
    assert promoted["deployment"]["task_groups"]["web"]["promoted"] is True
    assert all(a["JobVersion"] == 1 for a in nomad.running("canary"))


def test_absent_stops_then_is_unchanged_and_purge_removes_the_job(nomad, run, make_job):
    assert run("nomad_job", content=make_job("doomed"))["changed"]
    stopped = run("nomad_job", name="doomed", state="absent", diff=True)
    assert stopped["changed"] is True and "stopped" in stopped["diff"]["after"]
    assert not nomad.running("doomed"), "wait=true returns once the allocations stopped"
    assert nomad.job("doomed")["Stop"] is True

    assert run("nomad_job", name="doomed", state="absent")["changed"] is False
    assert run("nomad_job", name="doomed", state="absent", purge=True, check=True)["changed"] is True
    assert nomad.job("doomed") is not None
    assert run("nomad_job", name="doomed", state="absent", purge=True)["changed"] is True
    assert nomad.job("doomed") is None
    gone = run("nomad_job", name="doomed", state="absent", purge=True)
    assert gone["changed"] is False and "does not exist" in gone["msg"]
    # the job can also be named by its specification
    assert run("nomad_job", content=make_job("doomed"), state="absent")["changed"] is False


def test_invalid_hcl_fails_pointing_at_the_line(nomad, run, tmp_path):
    hcl = 'job "broken" {\n  datacenters = ["*"]\n  group "g" {\n    count = \n  }\n}\n'
    result = run("nomad_job", content=hcl)
    assert result.get("failed") is True
    assert "content line 4" in result["msg"], result["msg"]
    assert ">" in result["msg"] and "count =" in result["msg"], "the offending line is quoted"
    assert result["error_line"] == 4

    src = tmp_path / "broken.nomad.hcl"
    src.write_text(hcl)
    from_file = run("nomad_job", src=str(src))
    assert "broken.nomad.hcl line 4" in from_file["msg"], from_file["msg"]


def test_variables_are_passed_literally_and_a_json_job_is_the_same_job(nomad, run, busybox_image):
    hcl = '''
variable "greeting" { type = string }
variable "tags" { type = list(string) }
job "vars" {
  datacenters = ["*"]
  meta {
    greeting = var.greeting
    tags     = join(",", var.tags)
  }
  group "g" {
    count = 0
    task "t" {
      driver = "docker"
      config {
        image = "%s"
      }
    }
  }
}
''' % busybox_image
    variables = {"greeting": "hello ${not_a_template} %{nor_this}", "tags": ["a", "b"]}
    result = run("nomad_job", content=hcl, variables=variables)
    assert result["changed"] is True, result
    meta = nomad.job("vars")["Meta"]
    assert meta == {"greeting": "hello ${not_a_template} %{nor_this}", "tags": "a,b"}

    parsed = nomad.api("POST", "/v1/jobs/parse", body={"JobHCL": hcl, "Variables": 'greeting = "x"\ntags = []\n'})
    parsed["Meta"] = meta
    as_json = run("nomad_job", job={"Job": parsed})
    assert as_json["changed"] is False, as_json["changes"]
    as_text = run("nomad_job", content=json.dumps(parsed))
    assert as_text["changed"] is False


def test_enforce_index_refuses_to_overwrite_a_concurrent_change(nomad, run, make_job):
    assert run("nomad_job", content=make_job("guarded"), wait=False)["changed"]
    index = nomad.job("guarded")["JobModifyIndex"]
    stale = run("nomad_job", content=make_job("guarded", count=2), wait=False, enforce_index=index - 1)
    assert stale.get("failed") is True
    assert "someone changed it" in stale["msg"] and str(index) in stale["msg"]
    assert nomad.job("guarded")["TaskGroups"][0]["Count"] == 1
    fresh = run("nomad_job", content=make_job("guarded", count=2), wait=False, enforce_index=index)
    assert fresh["changed"] is True and fresh["job_modify_index"] > index
    assert run("nomad_job", content=make_job("new-only"), wait=False, enforce_index=0)["changed"] is True


def test_preserve_counts_keeps_a_count_scaled_outside_the_job_file(nomad, run, make_job):
    # scaling is refused while a deployment runs: let it finish
    assert run("nomad_job", content=make_job("scaled", count=1))["changed"]
    nomad.api("POST", "/v1/job/scaled/scale", body={"Count": 2, "Target": {"Group": "web"}, "Message": "ops"})
    kept = run("nomad_job", content=make_job("scaled", count=1), wait=False, preserve_counts=True)
    assert kept["changed"] is False, kept["changes"]
    reset = run("nomad_job", content=make_job("scaled", count=1), wait=False, check=True)
    assert reset["changed"] is True and any("Count 2 -> 1" in c for c in reset["changes"])


def test_a_job_that_cannot_be_placed_fails_fast_with_the_reason(nomad, run, make_job):
    hcl = make_job("unplaceable", job_extra='constraint {\n    attribute = "${attr.kernel.name}"\n    value = "plan9"\n  }')
    start = time.time()
    result = run("nomad_job", content=hcl)
    assert result.get("failed") is True
    assert time.time() - start < 20
    assert "cannot place" in result["msg"] and "plan9" in result["msg"], result["msg"]
    constraint = 'constraint {\n    attribute = "${attr.kernel.name}"\n    value = "plan9"\n  }'
    checked = run("nomad_job", content=make_job("unplaceable-2", job_extra=constraint), check=True)
    assert checked["plan"]["placement_failures"], checked["plan"]

"""nomad_job_revert against a real Nomad: back to the previous stable release with its deployment
followed, nothing to do once there, check and diff mode, refusals."""

# the task dies at once; the margin keeps a loaded Docker from reporting it healthy first
FAILING_UPDATE = 'min_healthy_time = "5s"\n      healthy_deadline = "30s"\n      progress_deadline = "0"'


def test_revert_to_the_previous_stable_release_and_stay_there(nomad, run, make_job):
    good, wrong = make_job("undo", args=("sleep", "3600")), make_job("undo", args=("sleep", "3601"))
    assert run("nomad_job", content=good)["deployment"]["status"] == "successful"    # version 0, stable
    assert run("nomad_job", content=wrong)["deployment"]["status"] == "successful"   # version 1, healthy but wrong

    planned = run("nomad_job_revert", name="undo", check=True, diff=True)
    assert planned["changed"] is True and (planned["from_version"], planned["to_version"]) == (1, 0), planned
    assert planned["diff"]["before"].startswith("version = 1\n") and planned["diff"]["after"].startswith("version = 0\n")
    assert nomad.job("undo")["Version"] == 1, "check mode reverts nothing"

    reverted = run("nomad_job_revert", name="undo")
    assert reverted["changed"] is True, reverted
    assert (reverted["from_version"], reverted["to_version"], reverted["job_version"]) == (1, 0, 2)
    assert reverted["deployment"]["status"] == "successful" and reverted["deployment"]["job_version"] == 2
    assert any("successful" in e for e in reverted["events"])
    running = nomad.running("undo")
    assert running and all(a["JobVersion"] == 2 for a in running)
    assert nomad.job("undo")["TaskGroups"][0]["Tasks"][0]["Config"]["args"] == ["3600"]

    pinned = run("nomad_job_revert", name="undo", version=0)
    assert pinned["changed"] is False and "already at the spec of version 0 (current version 2)" in pinned["msg"]
    assert nomad.job("undo")["Version"] == 2
    # the release it left had been healthy: it is the previous stable version now (like kubectl rollout undo)
    assert run("nomad_job_revert", name="undo", check=True)["to_version"] == 1
    assert run("nomad_job", content=good)["changed"] is False, "the job has the good specification again"


def test_revert_refusals_say_what_to_do(nomad, run, make_job):
    crash = make_job("unproven", args=("sh", "-c", "exit 3"), update=FAILING_UPDATE)
    assert run("nomad_job", content=crash).get("failed") is True   # version 0, never stable

    no_stable = run("nomad_job_revert", name="unproven")
    assert no_stable.get("failed") is True
    assert "has no stable version older than its current version 0" in no_stable["msg"] and "version=" in no_stable["msg"]
    unknown = run("nomad_job_revert", name="unproven", version=7)
    assert unknown.get("failed") is True and "has no version 7; the versions Nomad keeps are 0 (current)." in unknown["msg"]
    missing = run("nomad_job_revert", name="nope")
    assert missing.get("failed") is True and "job 'nope' does not exist" in missing["msg"]

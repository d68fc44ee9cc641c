"""nomad_job_revert run in-process against a stand-in for Nomad's HTTP API (the client's
transport is replaced, as in tests/unit/plugins/module_utils/test_nomad.py): which version is the
target, when nothing changes, what is POSTed, check and diff mode, the waiting and its failures."""
import contextlib
import copy
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.cloudvirt.platform.plugins.module_utils import nomad as n
from ansible_collections.cloudvirt.platform.plugins.modules import nomad_job_revert as module

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    from ansible.module_utils import basic as _basic

    @contextlib.contextmanager
    def patch_module_args(args):
        saved = _basic._ANSIBLE_ARGS
        _basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            _basic._ANSIBLE_ARGS = saved

DEP_ID = "9a8b7c6d-1111-2222-3333-444455556666"
EVAL_ID = "1f0c2a4e-1111-2222-3333-444455556666"


def version(number, image, stable=False, stop=False):
    """One version of job 'web' as GET /v1/job/web/versions returns it (fields trimmed)."""
    return {
        "ID": "web", "Name": "web", "Namespace": "app", "Type": "service", "Priority": 50, "Stop": stop,
        "Version": number, "Stable": stable, "Status": "running", "StatusDescription": "",
        "SubmitTime": 1700000000000000000 + number, "CreateIndex": 10, "ModifyIndex": 100 + number,
        "JobModifyIndex": 100 + number, "NomadTokenID": "accessor-%d" % number, "VersionTag": None,
        "TaskGroups": [{
            "Name": "web", "Count": 2,
            "Scaling": {"ID": "policy-%d" % number, "Min": 1, "Max": 4, "Enabled": True, "CreateIndex": 10,
                        "ModifyIndex": 100 + number},
            "Tasks": [{"Name": "server", "Driver": "docker", "Config": {"image": image, "ports": ["http"]}},
                      {"Name": "log-shipper", "Driver": "exec", "Config": {"command": "/bin/ship"}}],
        }],
    }


def deployment(status, healthy=0, description="", job_version=6, canaries=0, promoted=False):
    return {"ID": DEP_ID, "JobID": "web", "JobVersion": job_version, "Status": status, "StatusDescription": description,
            "TaskGroups": {"web": {"DesiredTotal": 2, "PlacedAllocs": 2, "HealthyAllocs": healthy, "UnhealthyAllocs": 0,
                                   "DesiredCanaries": canaries, "PlacedCanaries": ["c1"] if canaries else [],
                                   "Promoted": promoted, "AutoPromote": bool(canaries), "AutoRevert": True}}}


FAILED_ALLOC = {
    "ID": "a259d578-708f-bb05-5d1b-ffa7573ed4a5", "Name": "web.web[0]", "TaskGroup": "web", "NodeName": "vm2",
    "ClientStatus": "failed", "ClientDescription": "Failed tasks", "JobVersion": 6, "CreateIndex": 300,
    "DeploymentStatus": {"Healthy": False},
    "TaskStates": {"server": {"State": "dead", "Failed": True, "Restarts": 0, "Events": [
        {"Type": "Driver Failure", "DisplayMessage": "Failed to pull `registry:5000/web:0.1.0`: manifest unknown",
         "FailsTask": True}]}},
}


class FakeNomad:
    """Nomad's HTTP API for job 'web' in namespace 'app': versions (newest first), the revert
    endpoint (registers the target's spec as a new version), evaluations and deployments from
    scripts (each GET takes the next answer; the last one repeats)."""

    scheme = "http"

    def __init__(self, versions, deployments=None, evaluation=None, latest=None, revert_error=None):
        self.versions = [copy.deepcopy(v) for v in versions]
        self.deployments = list(deployments or [])
        self.evaluation = evaluation or {"ID": EVAL_ID, "Status": "complete", "DeploymentID": DEP_ID}
        self.latest = latest
        self.revert_error = revert_error
        self.calls = []

    @property
    def current(self):
        return max(self.versions, key=lambda v: v["Version"])

    def posts(self):
        return [c for c in self.calls if c["method"] != "GET"]

    def _next(self, answers):
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def request(self, method, target, body, headers, timeout):
        parts = urlsplit(target)
        path, query = parts.path, dict((k, v[0]) for k, v in parse_qs(parts.query).items())
        self.calls.append(dict(method=method, path=path, query=query, body=json.loads(body) if body else None))
        status, payload = self.answer(method, path, query, json.loads(body) if body else None)
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        return status, {"X-Nomad-Index": str(len(self.calls))}, data

    def answer(self, method, path, query, body):
        if query.get("namespace") != "app":
            return 404, "not found in namespace %s" % query.get("namespace")
        if path == "/v1/job/web" and method == "GET":
            return (200, self.current) if self.versions else (404, "job not found")
        if path == "/v1/job/web/versions":
            if not self.versions:
                return 404, "job versions not found"
            return 200, {"Versions": sorted(self.versions, key=lambda v: -v["Version"]), "Diffs": None}
        if path == "/v1/job/web/revert" and method == "POST":
            if self.revert_error:
                return self.revert_error
            new = copy.deepcopy(next(v for v in self.versions if v["Version"] == body["JobVersion"]))
            new.update(Version=self.current["Version"] + 1, Stable=False)
            self.versions.append(new)
            return 200, {"EvalID": EVAL_ID, "EvalCreateIndex": 300, "JobModifyIndex": 300, "Warnings": ""}
        if path == "/v1/evaluation/" + EVAL_ID:
            return 200, self.evaluation
        if path == "/v1/deployment/" + DEP_ID:
            return 200, self._next(self.deployments)
        if path == "/v1/job/web/deployment":
            return (200, self.latest) if self.latest else (404, "no deployment")
        if path == "/v1/deployment/allocations/" + DEP_ID:
            return 200, [FAILED_ALLOC]
        if path.startswith("/v1/client/fs/logs/"):
            return 200, "pull access denied\nmanifest unknown\n"
        raise AssertionError("unexpected %s %s" % (method, path))


@pytest.fixture(autouse=True)
def module_warnings(monkeypatch):
    """AnsibleModule collects warnings in module globals, which would pile up across in-process
    runs; and once controller code is imported (the filter tests do), ansible-core >= 2.19 sends
    them to the controller's display instead of the result, unless told it runs a module."""
    from ansible.module_utils.common import warnings
    for name in ("_global_warnings", "_global_deprecations"):
        monkeypatch.setattr(warnings, name, type(getattr(warnings, name))())
    try:
        from ansible.module_utils import _internal
    except ImportError:  # ansible-core < 2.19
        return
    monkeypatch.setattr(_internal, "is_controller", False, raising=False)


@pytest.fixture
def nomad(monkeypatch):
    """Install a FakeNomad as the transport of every client the module creates."""
    def install(*versions, **kwargs):
        fake = FakeNomad(versions, **kwargs)
        monkeypatch.setattr(n, "HttpTransport", lambda *args, **kw: fake)
        return fake
    return install


def run(capsys, check=False, diff=False, **args):
    """Run the module like Ansible would; returns its result (``failed`` set when it failed)."""
    params = dict(address="http://nomad.test:4646", namespace="app", name="web")
    params.update(args)
    params.update(_ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(params), pytest.raises(SystemExit) as exited:
        module.main()
    result = json.loads(capsys.readouterr().out)
    assert bool(result.get("failed")) == (exited.value.code != 0), result
    return result


HISTORY = (
    version(5, "registry:5000/web:0.3.0"),               # current: its deployment never succeeded
    version(4, "registry:5000/web:0.2.0", stable=True),  # the previous stable release
    version(3, "registry:5000/web:0.1.0", stable=True),
)


# -- which version, and what is sent ----------------------------------------------------------

def test_default_target_is_the_previous_stable_version_and_the_revert_is_guarded(nomad, capsys):
    fake = nomad(*HISTORY)
    result = run(capsys, wait=False)
    assert result["changed"] is True
    assert (result["from_version"], result["to_version"], result["job_version"]) == (5, 4, 6)
    assert result["job_id"] == "web" and result["namespace"] == "app" and result["eval_id"] == EVAL_ID
    assert result["msg"] == "reverted job 'web' in namespace 'app' from version 5 to version 4 (now version 6)."
    [post] = fake.posts()
    assert post["path"] == "/v1/job/web/revert" and post["query"]["namespace"] == "app"
    assert post["body"] == {"JobID": "web", "JobVersion": 4, "EnforcePriorVersion": 5}
    assert "events" not in result and "deployment" not in result, "wait=false follows nothing"


def test_explicit_version(nomad, capsys):
    fake = nomad(*HISTORY)
    result = run(capsys, version=3, wait=False)
    assert result["changed"] is True and (result["from_version"], result["to_version"]) == (5, 3)
    assert fake.posts()[0]["body"] == {"JobID": "web", "JobVersion": 3, "EnforcePriorVersion": 5}


def test_the_id_alias(nomad, capsys):
    nomad(*HISTORY)
    params = dict(id="web", wait=False)
    with patch_module_args(dict(params, namespace="app", address="http://nomad.test:4646")), pytest.raises(SystemExit):
        module.main()
    assert json.loads(capsys.readouterr().out)["to_version"] == 4


def test_a_stopped_version_is_never_the_default_target(nomad, capsys):
    # stopping a job copies the running version's Stable flag into the stopped version
    fake = nomad(version(6, "registry:5000/web:0.3.0"), version(5, "registry:5000/web:0.2.0", stable=True, stop=True),
                 *HISTORY[1:])
    result = run(capsys, wait=False)
    assert result["to_version"] == 4
    assert fake.posts()[0]["body"]["JobVersion"] == 4


def test_already_at_the_target_spec_changes_nothing_and_posts_nothing(nomad, capsys):
    # version 6 is version 4 registered again (a revert): other version, indexes, times, token, policy ID
    fake = nomad(version(6, "registry:5000/web:0.2.0", stable=True), *HISTORY,
                 latest=deployment("successful", healthy=2))
    result = run(capsys, version=4)
    assert result["changed"] is False
    assert result["msg"] == "job 'web' in namespace 'app' is already at the spec of version 4 (current version 6)."
    assert (result["from_version"], result["to_version"], result["job_version"]) == (6, 4, 6)
    assert fake.posts() == []
    assert "deployment" not in result, "a finished deployment is not followed again"


def test_a_second_default_run_after_a_revert_changes_nothing(nomad, capsys):
    # the release left (5) never became stable: the previous stable version is the one reverted to
    fake = nomad(version(6, "registry:5000/web:0.2.0", stable=True), *HISTORY, latest=deployment("successful", healthy=2))
    result = run(capsys)
    assert result["changed"] is False and result["to_version"] == 4
    assert fake.posts() == []


def test_the_current_version_as_target_changes_nothing(nomad, capsys):
    fake = nomad(*HISTORY)
    result = run(capsys, version=5, wait=False)
    assert result["changed"] is False and "already at the spec of version 5" in result["msg"]
    assert fake.posts() == []


def test_already_at_the_target_waits_for_a_running_deployment_of_the_current_version(nomad, capsys):
    nomad(version(6, "registry:5000/web:0.2.0"), *HISTORY, latest=deployment("running", healthy=1),
          deployments=[deployment("running", healthy=1), deployment("successful", healthy=2)])
    result = run(capsys, version=4)
    assert result["changed"] is False
    assert result["deployment"]["status"] == "successful" and result["deployment"]["task_groups"]["web"]["healthy"] == 2
    assert result["events"][-1].endswith("deployment 9a8b7c6d successful: web 2/2 healthy")


def test_already_at_the_target_with_a_failed_deployment_fails(nomad, capsys):
    nomad(version(6, "registry:5000/web:0.2.0"), *HISTORY,
          latest=deployment("failed", description="Failed due to unhealthy allocations"))
    result = run(capsys, version=4)
    assert result["failed"] is True
    assert result["msg"].startswith("job 'web' in namespace 'app' is already at the spec of version 4, but the deployment "
                                    "9a8b7c6d of its current version 6 failed: Failed due to unhealthy allocations.")
    assert result["deployment"]["status"] == "failed"


# -- check and diff mode ----------------------------------------------------------------------

def test_check_mode_reports_the_change_without_reverting(nomad, capsys):
    fake = nomad(*HISTORY)
    result = run(capsys, check=True)
    assert result["changed"] is True and (result["from_version"], result["to_version"]) == (5, 4)
    assert result["msg"] == "would revert job 'web' in namespace 'app' from version 5 to version 4."
    assert fake.posts() == [] and "job_version" not in result and "diff" not in result


def test_diff_mode_shows_versions_and_images(nomad, capsys):
    nomad(*HISTORY)
    result = run(capsys, check=True, diff=True)
    assert result["diff"] == {
        "before": 'version = 5\ngroup "web" task "server" image = "registry:5000/web:0.3.0"\n',
        "after": 'version = 4\ngroup "web" task "server" image = "registry:5000/web:0.2.0"\n',
        "before_header": "job 'web' in namespace 'app' (current, version 5)",
        "after_header": "job 'web' in namespace 'app' (version 4)",
    }


def test_no_diff_when_nothing_changes(nomad, capsys):
    nomad(*HISTORY)
    assert "diff" not in run(capsys, check=True, diff=True, version=5)


# -- clear failures ---------------------------------------------------------------------------

def test_missing_job(nomad, capsys):
    fake = nomad()
    result = run(capsys)
    assert result["failed"] is True
    assert result["msg"] == ("job 'web' in namespace 'app' does not exist, so there is nothing to revert. "
                             "Check name and namespace.")
    assert fake.posts() == []


def test_no_stable_version_says_what_to_do(nomad, capsys):
    fake = nomad(version(2, "web:3"), version(1, "web:2"), version(0, "web:1", stable=True, stop=True))
    result = run(capsys)
    assert result["failed"] is True
    assert result["msg"] == (
        "job 'web' in namespace 'app' has no stable version older than its current version 2 to revert to (versions "
        "kept by Nomad: 2 (current), 1, 0 (stable, stopped)). Nomad marks a version stable once its deployment "
        "succeeded; stopped versions do not count. Pass version= to revert to a given version.")
    assert fake.posts() == []


def test_unknown_version_lists_the_versions(nomad, capsys):
    fake = nomad(*HISTORY)
    result = run(capsys, version=1)
    assert result["failed"] is True
    assert result["msg"] == ("job 'web' in namespace 'app' has no version 1; the versions Nomad keeps are "
                             "5 (current), 4 (stable), 3 (stable).")
    assert result["from_version"] == 5 and "to_version" not in result
    assert fake.posts() == []


def test_negative_version(nomad, capsys):
    nomad(*HISTORY)
    assert run(capsys, version=-1)["msg"] == "version must be 0 or more, not -1."


def test_a_concurrent_change_is_refused_by_nomad_and_explained(nomad, capsys):
    nomad(*HISTORY, revert_error=(500, "Current job has version 6; enforcing version 5"))
    result = run(capsys)
    assert result["failed"] is True
    assert result["msg"] == ("job 'web' in namespace 'app' changed while it was being reverted from version 5 (Nomad: "
                             "Current job has version 6; enforcing version 5). Run again to revert from its new version.")


def test_a_reverted_stopped_version_warns(nomad, capsys):
    nomad(*HISTORY[:1], version(4, "registry:5000/web:0.2.0", stop=True))
    result = run(capsys, version=4, wait=False)
    assert result["changed"] is True
    assert any("stopped version: reverting to it stops the job" in str(w) for w in result["warnings"])


# -- waiting ----------------------------------------------------------------------------------

def test_wait_follows_the_deployment_to_success(nomad, capsys):
    fake = nomad(*HISTORY, deployments=[deployment("running", healthy=0), deployment("running", healthy=1),
                                        deployment("successful", healthy=2)])
    result = run(capsys)
    assert result["changed"] is True and result["job_version"] == 6
    assert result["deployment"] == {
        "id": DEP_ID, "status": "successful", "status_description": "", "job_version": 6, "requires_promotion": False,
        "task_groups": {"web": {"desired_total": 2, "placed": 2, "healthy": 2, "unhealthy": 0, "desired_canaries": 0,
                                "placed_canaries": 0, "promoted": False, "auto_promote": False, "auto_revert": True}}}
    assert [e.split(" ", 1)[1] for e in result["events"]] == [
        "evaluation 1f0c2a4e complete", "deployment 9a8b7c6d running: web 0/2 healthy",
        "deployment 9a8b7c6d running: web 1/2 healthy", "deployment 9a8b7c6d successful: web 2/2 healthy"]
    assert [c["path"] for c in fake.calls if c["method"] == "GET"][:3] == [
        "/v1/job/web", "/v1/job/web/versions", "/v1/job/web"]


def test_wait_does_not_stop_at_auto_promoted_canaries(nomad, capsys):
    # healthy canaries of an auto_promote group: Nomad promotes them a moment later, nothing to warn about
    nomad(*HISTORY, deployments=[deployment("running", healthy=1, canaries=1),
                                 deployment("running", healthy=1, canaries=1, promoted=True),
                                 deployment("successful", healthy=2, canaries=1, promoted=True)])
    result = run(capsys)
    assert result["deployment"]["status"] == "successful"
    assert not result.get("warnings")


def test_a_failed_deployment_fails_clearly(nomad, capsys):
    nomad(*HISTORY, deployments=[deployment("running"), deployment(
        "failed", description="Failed due to unhealthy allocations - rolling back to job version 5")])
    result = run(capsys)
    assert result["failed"] is True
    assert result["msg"].startswith(
        "Reverted job 'web' in namespace 'app' from version 5 to version 4 (now version 6), but it did not become "
        "healthy: Deployment 9a8b7c6d of job 'web' in namespace 'app' (version 6) failed and Nomad auto-reverted the "
        "job to version 5: Failed due to unhealthy allocations - rolling back to job version 5.")
    assert "Failing allocation a259d578 (web.web[0], node vm2, failed): task 'server' failed" in result["msg"]
    assert "manifest unknown" in result["msg"]
    assert result["reverted_to_version"] == 5 and result["deployment"]["status"] == "failed"
    assert result["failed_allocations"][0]["id"] == FAILED_ALLOC["ID"]
    assert (result["from_version"], result["to_version"], result["job_version"]) == (5, 4, 6)
    assert result["events"], "the progress so far comes with the failure"


def test_placement_failures_fail_the_wait(nomad, capsys):
    evaluation = {"ID": EVAL_ID, "Status": "complete", "FailedTGAllocs": {"web": {"NodesEvaluated": 0}}}
    nomad(*HISTORY, evaluation=evaluation)
    result = run(capsys)
    assert result["failed"] is True and "Nomad cannot place job 'web' in namespace 'app': group web" in result["msg"]


# -- the specification comparison -------------------------------------------------------------

def test_job_spec_ignores_what_each_registration_sets():
    a = version(4, "web:0.2.0", stable=True)
    b = version(9, "web:0.2.0")
    b.update(Status="pending", StatusDescription="x", VersionTag={"Name": "golden"})
    assert module.job_spec(a) == module.job_spec(b)
    assert a["Version"] == 4 and "ID" in a["TaskGroups"][0]["Scaling"], "the input is left alone"
    for change in (dict(Stop=True), dict(Priority=70), dict(Meta={"owner": "ops"})):
        assert module.job_spec(dict(a, **change)) != module.job_spec(a), change
    c = copy.deepcopy(a)
    c["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = "web:0.3.0"
    assert module.job_spec(c) != module.job_spec(a)
    c = copy.deepcopy(a)
    c["TaskGroups"][0]["Scaling"]["Max"] = 8
    assert module.job_spec(c) != module.job_spec(a)


def test_task_images_skip_tasks_without_an_image():
    assert module.task_images(version(1, "web:1")) == [("web", "server", "web:1")]

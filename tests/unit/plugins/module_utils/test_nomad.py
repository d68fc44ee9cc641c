"""Pure logic of plugins/module_utils/nomad.py: error translation (with a stubbed HTTP opener),
counts, durations, HCL values, plan rendering, failure descriptions, the waiting loop."""
import copy
import errno
import json
import socket
import ssl
from http.client import RemoteDisconnected
from urllib.error import URLError

import pytest

from ansible_collections.cloudvirt.platform.plugins.module_utils import nomad as n

ADDR = "https://10.0.0.5:4646"


# -- error translation ------------------------------------------------------------------------

@pytest.mark.parametrize("exc,expected", [
    (URLError(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")),
     "Cannot reach Nomad at https://10.0.0.5:4646: connection refused. Check address (NOMAD_ADDR) and that the agent is running."),
    (URLError(socket.timeout("timed out")), "Cannot reach Nomad at https://10.0.0.5:4646: no answer within 7s (timeout)."),
    (socket.timeout("timed out"), "no answer within 7s (timeout)"),
    (URLError(socket.gaierror(-2, "Name or service not known")), "the host name does not resolve"),
    (URLError(OSError(errno.EHOSTUNREACH, "No route to host")), "Cannot reach Nomad at https://10.0.0.5:4646: no route to host."),
    (RemoteDisconnected("Remote end closed connection without response"), "the address must start with https://"),
])
def test_transport_errors_name_the_address_and_the_cause(exc, expected):
    assert expected in n.describe_transport_error(exc, ADDR, 7)


def test_tls_errors_point_at_the_option_to_fix():
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    verify.verify_message = "unable to get local issuer certificate"
    msg = n.describe_transport_error(URLError(verify), ADDR, 10)
    assert "could not be verified (unable to get local issuer certificate)" in msg and "ca_cert (NOMAD_CACERT)" in msg

    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    assert "does not speak TLS on this port" in n.describe_transport_error(URLError(wrong), ADDR, 10)

    required = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")
    msg = n.describe_transport_error(URLError(required), ADDR, 10)
    assert "rejected our client certificate" in msg and "NOMAD_CLIENT_CERT" in msg


def test_http_errors():
    assert n.describe_http_error(403, "Permission denied", ADDR, "GET", "/v1/jobs") == (
        "Nomad at https://10.0.0.5:4646 refused the token (403 Permission denied) for GET /v1/jobs. Check token "
        "(NOMAD_TOKEN): it must exist, not be expired, and its ACL policy must allow this operation.")
    assert "requires an ACL token" in n.describe_http_error(403, "Permission denied", ADDR, "GET", "/v1/jobs", token_set=False)
    assert "speaks HTTPS" in n.describe_http_error(400, "Client sent an HTTP request to an HTTPS server.\n", ADDR, "GET", "/")
    assert "no leader" in n.describe_http_error(500, "No cluster leader", ADDR, "GET", "/v1/jobs")
    assert "rejected POST /v1/jobs (400): bad job" in n.describe_http_error(400, "bad job", ADDR, "POST", "/v1/jobs")


# -- the client with a stubbed transport ------------------------------------------------------

class Transport:
    """Records requests; answers from a script of (status, body[, index]) or exceptions."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, target, body, headers, timeout):
        self.calls.append(dict(method=method, target=target, body=body, headers=headers, timeout=timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        status, payload = answer[0], answer[1]
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"X-Nomad-Index": str(answer[2])} if len(answer) > 2 else {}
        return status, headers, data


def test_request_sends_token_namespace_region_and_parses_the_index():
    transport = Transport((200, {"ID": "web"}, 42))
    client = n.NomadClient(address="10.0.0.5:4646", namespace="apps", region="eu", token="s3cret", timeout=3,
                           transport=transport)
    assert client.address == "http://10.0.0.5:4646"
    resp = client.request("GET", "/v1/job/web")
    assert resp.data == {"ID": "web"} and resp.index == 42
    call = transport.calls[0]
    assert call["target"] == "/v1/job/web?namespace=apps&region=eu"
    assert call["headers"]["X-Nomad-Token"] == "s3cret" and call["timeout"] == 3


def test_request_translates_http_errors_once_and_lets_expected_statuses_through():
    client = n.NomadClient(address=ADDR, token="t", transport=Transport((403, b"Permission denied"), (404, b"job not found")))
    with pytest.raises(n.NomadError) as err:
        client.request("GET", "/v1/jobs")
    assert err.value.status == 403 and "refused the token (403 Permission denied)" in err.value.msg
    assert client.read_job("nope") is None


@pytest.mark.parametrize("exc,expected", [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "connection refused"),
    (socket.timeout("timed out"), "no answer within 10s"),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "does not speak TLS"),
])
def test_request_translates_transport_errors(exc, expected):
    client = n.NomadClient(address=ADDR, transport=Transport(exc))
    with pytest.raises(n.NomadError) as err:
        client.request("GET", "/v1/jobs")
    assert err.value.msg.startswith(("Cannot reach Nomad at https://10.0.0.5:4646", "TLS handshake with Nomad at https://10.0.0.5"))
    assert expected in err.value.msg


def test_parse_errors_keep_the_body_for_the_module():
    client = n.NomadClient(address=ADDR, transport=Transport((400, b"Failed to parse job: input.hcl:3,5-6: Bad")))
    with pytest.raises(n.NomadError) as err:
        client.parse_job('job "x" {}')
    assert err.value.status == 400 and "input.hcl:3,5-6" in err.value.body


def test_validate_certs_follows_nomad_skip_verify(monkeypatch):
    monkeypatch.setenv("NOMAD_SKIP_VERIFY", "true")
    assert n.NomadClient(address=ADDR).validate_certs is False
    assert n.NomadClient(address=ADDR, validate_certs=True).validate_certs is True
    monkeypatch.setenv("NOMAD_SKIP_VERIFY", "0")
    assert n.NomadClient(address=ADDR).validate_certs is True
    monkeypatch.delenv("NOMAD_SKIP_VERIFY")
    assert n.NomadClient(address=ADDR).validate_certs is True


def test_tls_files_are_checked_before_any_request(tmp_path):
    with pytest.raises(n.NomadError, match="client_cert file /no/cert.pem does not exist"):
        n.NomadClient(address=ADDR, client_cert="/no/cert.pem", client_key="/no/key.pem")
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(n.NomadError, match="Cannot use the TLS files for Nomad at https://10.0.0.5:4646"):
        n.NomadClient(address=ADDR, ca_cert=str(bogus))
    # plain HTTP needs no TLS files at all
    assert n.NomadClient(address="http://127.0.0.1:4646", ca_cert=str(bogus)).transport.scheme == "http"


def test_unusable_addresses_are_refused():
    with pytest.raises(n.NomadError, match="is not an http://, https:// or unix:// address"):
        n.NomadClient(address="ftp://nomad:4646")


def test_addresses_and_proxies_like_the_go_client():
    transport = n.NomadClient(address="unix:///run/nomad.sock").transport
    assert transport.unix_socket == "/run/nomad.sock" and transport.proxy is None
    env = {"HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": ".internal,10.0.0.9"}
    assert n.proxy_for("https", "nomad.example.com", env) == "http://proxy.corp:3128"
    assert n.proxy_for("https", "nomad.internal", env) is None
    assert n.proxy_for("https", "10.0.0.9", env) is None
    assert n.proxy_for("https", "127.0.0.1", env) is None, "loopback is never proxied"
    assert n.proxy_for("http", "nomad.example.com", env) is None, "HTTPS_PROXY does not apply to http://"


def test_find_node_by_name_then_prefix():
    node = {"ID": "0b1c2d3e-0000-0000-0000-000000000000", "Name": "node1"}
    transport = Transport((200, []), (200, [node]), (200, node))
    client = n.NomadClient(address=ADDR, transport=transport)
    assert client.find_node("0b1c")["Name"] == "node1"
    assert "filter=Name+%3D%3D+%220b1c%22" in transport.calls[0]["target"]
    assert "prefix=0b1c" in transport.calls[1]["target"]


def test_job_versions_newest_first_and_none_for_a_missing_job():
    versions = {"Versions": [{"Version": 3}, {"Version": 5}, {"Version": 4}], "Diffs": None}
    transport = Transport((200, versions), (404, b"job versions not found"))
    client = n.NomadClient(address=ADDR, namespace="app", transport=transport)
    assert [v["Version"] for v in client.job_versions("web")] == [5, 4, 3]
    assert transport.calls[0]["target"] == "/v1/job/web/versions?namespace=app"
    assert client.job_versions("nope") is None


def test_revert_job_enforces_the_prior_version():
    transport = Transport((200, {"EvalID": "e1"}), (200, {"EvalID": "e2"}))
    client = n.NomadClient(address=ADDR, transport=transport)
    assert client.revert_job("web", 3, enforce_prior_version=5, namespace="app") == {"EvalID": "e1"}
    call = transport.calls[0]
    assert (call["method"], call["target"]) == ("POST", "/v1/job/web/revert?namespace=app")
    assert json.loads(call["body"]) == {"JobID": "web", "JobVersion": 3, "EnforcePriorVersion": 5}
    client.revert_job("web", 0)
    assert json.loads(transport.calls[1]["body"]) == {"JobID": "web", "JobVersion": 0}


# -- counts, durations, HCL -------------------------------------------------------------------

@pytest.mark.parametrize("spec,current,expected", [
    ("3", 1, (3, False)), (3, 5, (3, False)), ("+2", 1, (3, True)), ("-1", 3, (2, True)), ("0", 4, (0, False)),
])
def test_resolve_count(spec, current, expected):
    assert n.resolve_count(spec, current) == expected


@pytest.mark.parametrize("spec,current,message", [("-5", 2, "cannot be negative"), ("lots", 1, "relative change"),
                                                  ("+-1", 1, "relative change"), ("", 1, "relative change")])
def test_resolve_count_rejects(spec, current, message):
    with pytest.raises(ValueError, match=message):
        n.resolve_count(spec, current)


def test_durations():
    assert n.parse_duration("1h30m") == 5400 and n.parse_duration("90s") == 90 and n.parse_duration("250ms") == 0.25
    assert n.parse_duration("0") == 0 and n.parse_duration(15) == 15
    with pytest.raises(ValueError):
        n.parse_duration("10 minutes")
    assert n.format_duration(5400) == "1h30m" and n.format_duration(15) == "15s" and n.format_duration(0.5) == "0.5s"


def test_hcl_values_are_literal():
    assert n.hcl_value("a ${b} %{c} \"q\"\n") == '"a $${b} %%{c} \\"q\\"\\n"'
    assert n.hcl_value([1, True, None, "x"]) == '[1, true, null, "x"]'
    assert n.hcl_value({"k": [1.5]}) == '{"k" = [1.5]}'
    assert n.hcl_variables_file({"image": "web:1", "count": 3}) == 'count = 3\nimage = "web:1"\n'
    with pytest.raises(ValueError, match="invalid HCL variable name"):
        n.hcl_variables_file({"bad name": 1})


def test_parse_errors_point_at_the_line():
    source = 'job "x" {\n  group "g" {\n    count = \n  }\n}\n'
    msg, line = n.explain_parse_error(
        "Failed to parse job: input.hcl:3,13-4,1: Invalid expression; Expected the start of an expression.",
        source, "web.nomad.hcl")
    assert line == 3
    assert msg.startswith("Nomad could not parse the job at web.nomad.hcl line 3, column 13: web.nomad.hcl:3,13-4,1: "
                          "Invalid expression")
    assert "> 3 |     count = " in msg and "  2 |   group" in msg


# -- plan rendering ---------------------------------------------------------------------------

PLAN_DIFF = {
    "Type": "Edited", "ID": "web",
    "Fields": [{"Type": "Added", "Name": "Meta[owner]", "Old": "", "New": "ops", "Annotations": None},
               {"Type": "None", "Name": "Priority", "Old": "50", "New": "50"}],
    "Objects": None,
    "TaskGroups": [{
        "Type": "Edited", "Name": "web",
        "Fields": [{"Type": "Edited", "Name": "Count", "Old": "1", "New": "2", "Annotations": ["forces create"]}],
        "Objects": [{"Type": "Edited", "Name": "Update", "Fields": [
            {"Type": "Edited", "Name": "MinHealthyTime", "Old": "10000000000", "New": "1000000000"}]}],
        "Tasks": [{"Type": "Edited", "Name": "server", "Annotations": ["forces create/destroy update"], "Objects": [
            {"Type": "Edited", "Name": "Config", "Fields": [
                {"Type": "Edited", "Name": "args[0]", "Old": "3600", "New": "3601"},
                {"Type": "Deleted", "Name": "args[1]", "Old": "x", "New": ""}]}]},
            {"Type": "Added", "Name": "sidecar", "Fields": [{"Type": "Added", "Name": "Driver", "Old": "", "New": "docker"}]}],
    }],
}


def test_plan_diff_renders_changed_fields_only_before_and_after():
    before, after, changes = n.render_plan_diff(PLAN_DIFF)
    assert before == (
        'job "web" {\n'
        '  group "web" {\n'
        '    Count = 1\n'
        '    Update {\n'
        '      MinHealthyTime = "10s"\n'
        '    }\n'
        '    task "server" {\n'
        '      Config {\n'
        '        args[0] = 3600\n'
        '        args[1] = "x"\n'
        '      }\n'
        '    }\n'
        '  }\n'
        '}\n')
    assert after == (
        'job "web" {\n'
        '  Meta[owner] = "ops"\n'
        '  group "web" {\n'
        '    Count = 2\n'
        '    Update {\n'
        '      MinHealthyTime = "1s"\n'
        '    }\n'
        '    task "server" {\n'
        '      Config {\n'
        '        args[0] = 3601\n'
        '      }\n'
        '    }\n'
        '    task "sidecar" {\n'
        '      Driver = "docker"\n'
        '    }\n'
        '  }\n'
        '}\n')
    assert 'job web: Meta[owner] added ("ops")' in changes
    assert "group web: Count 1 -> 2 [forces create]" in changes
    assert 'group web task server Config: args[1] removed (was "x")' in changes
    assert "group web task server: forces create/destroy update" in changes
    assert "group web task sidecar added" in changes


def test_no_change_renders_nothing():
    assert n.render_plan_diff({"Type": "None", "ID": "web"}) == ("", "", [])


def test_plan_summaries():
    assert n.summarize_updates({"DesiredTGUpdates": {"web": {"Place": 1, "Ignore": 0, "DestructiveUpdate": 2}}}) == {
        "web": {"place": 1, "destructive_update": 2}}
    failures = n.describe_placement_failures({"web": {
        "NodesEvaluated": 3, "NodesAvailable": {"dc1": 3}, "ConstraintFiltered": {"${attr.kernel.name} = plan9": 3},
        "DimensionExhausted": {"memory": 1}, "CoalescedFailures": 1}})
    assert failures == ["group web: 2 allocation(s) cannot be placed (3 node(s) evaluated; constraint "
                        "${attr.kernel.name} = plan9 filtered 3 node(s); memory exhausted on 1 node(s))"]


# -- failures and waiting ---------------------------------------------------------------------

FAILED_ALLOC = {
    "ID": "a259d578-708f-bb05-5d1b-ffa7573ed4a5", "Name": "web.web[0]", "TaskGroup": "web", "NodeName": "node1",
    "ClientStatus": "failed", "ClientDescription": "Failed tasks", "JobVersion": 1, "CreateIndex": 10,
    "DeploymentStatus": {"Healthy": False},
    "TaskStates": {"server": {"State": "dead", "Failed": True, "Restarts": 0, "Events": [
        {"Type": "Received", "DisplayMessage": "Task received by client"},
        {"Type": "Started", "DisplayMessage": "Task started by client"},
        {"Type": "Terminated", "DisplayMessage": "Exit Code: 3"},
        {"Type": "Not Restarting", "DisplayMessage": "Policy allows no restarts", "FailsTask": True}]}},
}


def test_failed_allocation_description_names_allocation_task_and_last_events():
    problem = n.allocation_problem(FAILED_ALLOC)
    text = n.describe_problem(problem)
    assert text == ("allocation a259d578 (web.web[0], node node1, failed): task 'server' failed; last events: "
                    "Received: Task received by client | Started: Task started by client | Terminated: Exit Code: 3 | "
                    "Not Restarting: Policy allows no restarts")
    healthy = dict(FAILED_ALLOC, ClientStatus="running", DeploymentStatus={"Healthy": True},
                   TaskStates={"server": {"State": "running", "Failed": False, "Events": []}})
    assert n.allocation_problem(healthy) is None


class FakeClient:
    """Answers blocking GETs from a script of (path-prefix -> list of answers)."""

    def __init__(self, script):
        self.script = script
        self.requests = []

    def _answer(self, path):
        for prefix, answers in self.script.items():
            if path.startswith(prefix):
                return answers.pop(0) if len(answers) > 1 else answers[0]
        raise AssertionError("unexpected " + path)

    def blocking_get(self, path, index, wait, params=None, namespace=None):
        return self._answer(path), (index or 0) + 1

    def get(self, path, params=None, missing_ok=False, namespace=None, timeout=None):
        return self._answer(path)

    def request(self, method, path, **kwargs):
        self.requests.append((method, path))
        return n.NomadResponse(404, None, None, "")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        self.now += 1
        return self.now


def deployment(status, description="", healthy=0):
    return {"ID": "9a8b7c6d-0000", "Status": status, "StatusDescription": description, "JobVersion": 1,
            "TaskGroups": {"web": {"DesiredTotal": 1, "HealthyAllocs": healthy, "PlacedAllocs": 1, "AutoRevert": True}}}


def test_a_reverted_deployment_fails_saying_so():
    client = FakeClient({
        "/v1/deployment/allocations/": [[FAILED_ALLOC]],
        "/v1/deployment/": [deployment("running"), deployment(
            "failed", "Failed due to unhealthy allocations - rolling back to job version 0")],
    })
    waiter = n.Waiter(client, timeout=60, clock=Clock())
    with pytest.raises(n.WaitFailed) as err:
        waiter.deployment("9a8b7c6d-0000", "job 'web'")
    assert "failed and Nomad auto-reverted the job to version 0" in err.value.msg
    assert "allocation a259d578" in err.value.msg and "Exit Code: 3" in err.value.msg
    assert err.value.data["reverted_to_version"] == 0 and err.value.data["deployment"]["task_groups"]["web"]["auto_revert"]
    assert len(err.value.data["events"]) == 2


def test_a_deployment_that_never_finishes_times_out_with_what_is_pending():
    client = FakeClient({"/v1/deployment/allocations/": [[]], "/v1/deployment/": [deployment("running")]})
    waiter = n.Waiter(client, timeout=5, clock=Clock())
    with pytest.raises(n.WaitFailed, match=r"Timed out after 5s waiting for deployment 9a8b7c6d of job 'web'"):
        waiter.deployment("9a8b7c6d-0000", "job 'web'")


def test_placement_failures_fail_the_evaluation_wait():
    metric = {"NodesEvaluated": 1, "NodesAvailable": {"dc1": 1}, "DimensionExhausted": {"memory": 1}}
    evaluation = {"Status": "complete", "FailedTGAllocs": {"web": metric}}
    waiter = n.Waiter(FakeClient({"/v1/evaluation/": [evaluation]}), timeout=60, clock=Clock())
    with pytest.raises(n.WaitFailed, match="Nomad cannot place job 'web': group web: 1 allocation"):
        waiter.evaluation("e1", "job 'web'")


def test_healthy_canaries_wait_for_a_manual_promotion_but_not_for_auto_promote():
    manual = deployment("running", healthy=1)
    manual["TaskGroups"]["web"].update(DesiredCanaries=1, PlacedCanaries=["c1"], Promoted=False, AutoPromote=False)
    dep, awaiting = n.Waiter(FakeClient({"/v1/deployment/": [manual]}), timeout=60, clock=Clock()).deployment("d", "job 'web'")
    assert awaiting is True
    auto = copy.deepcopy(manual)
    auto["TaskGroups"]["web"]["AutoPromote"] = True
    promoted = copy.deepcopy(auto)
    promoted["TaskGroups"]["web"]["Promoted"] = True
    done = deployment("successful", healthy=1)
    waiter = n.Waiter(FakeClient({"/v1/deployment/": [auto, promoted, done]}), timeout=60, clock=Clock())
    dep, awaiting = waiter.deployment("d", "job 'web'")
    assert (dep["Status"], awaiting) == ("successful", False), "Nomad promotes auto_promote canaries itself"


class RegistrationClient(FakeClient):
    def __init__(self, script, latest=None):
        FakeClient.__init__(self, script)
        self.latest = latest

    def latest_deployment(self, job_id, namespace=None):
        return self.latest


def test_registration_follows_the_evaluation_then_the_deployment_of_the_new_version():
    client = RegistrationClient({"/v1/evaluation/": [{"Status": "complete"}], "/v1/deployment/": [deployment("successful", healthy=1)]},
                                latest={"ID": "9a8b7c6d-0000", "JobVersion": 1})
    dep, awaiting = n.Waiter(client, timeout=60, clock=Clock()).registration("web", {"EvalID": "e1"}, 1, "job 'web'")
    assert dep["Status"] == "successful" and awaiting is False
    # the latest deployment is of another version: nothing to follow but the allocations
    alloc = {"ID": "a1", "CreateIndex": 50, "DesiredStatus": "run", "ClientStatus": "running"}
    client = RegistrationClient({"/v1/evaluation/": [{"Status": "complete"}], "/v1/job/web/allocations": [[alloc]]},
                                latest={"ID": "old", "JobVersion": 0})
    waiter = n.Waiter(client, timeout=60, clock=Clock())
    assert waiter.registration("web", {"EvalID": "e1", "EvalCreateIndex": 40}, 1, "job 'web'") == (None, False)
    assert waiter.progress.events[-1].endswith("allocations: 1 running, 0 complete, 0 pending, 0 failed")
    # periodic and parameterized jobs get no evaluation
    waiter = n.Waiter(RegistrationClient({}), timeout=60, clock=Clock())
    assert waiter.registration("web", {"EvalID": ""}, 1, "job 'web'") == (None, False)
    assert "nothing runs until launched" in waiter.progress.events[0]


def test_progress_deduplicates_and_timestamps():
    clock = iter([0.0, 0.5, 1.5]).__next__
    progress = n.Progress(clock)
    progress.add("a")
    progress.add("a")
    progress.add("b")
    assert progress.events == ["+0.5s a", "+1.5s b"], "the repeated message took no timestamp"


# -- the real transport against a throw-away local HTTP server --------------------------------

def test_transport_reuses_one_connection_and_retries_after_the_server_closed_it():
    import http.server
    import threading

    connections = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            connections.append(self.client_address)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Nomad-Index", "7")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = n.NomadClient(address="http://127.0.0.1:%d" % server.server_address[1])
        for i in range(3):
            assert client.get("/v1/job/%d" % i) == {"path": "/v1/job/%d" % i}
        assert len(connections) == 1, "one kept-alive connection serves every request"
        # the agent closes the idle connection; the next GET transparently reconnects
        client.transport._conn.sock.shutdown(socket.SHUT_RDWR)
        assert client.blocking_get("/v1/jobs", None, 1) == ({"path": "/v1/jobs"}, 7)
        assert len(connections) == 2
    finally:
        server.shutdown()
        server.server_close()

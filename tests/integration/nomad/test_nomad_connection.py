"""Connection, TLS and ACL failures end in one clear message naming the address and what to check."""
import socket
import time

from conftest import free_port  # noqa: E402  (pytest puts this directory on sys.path)


def test_connection_refused_names_the_address_and_what_to_check(run):
    address = f"http://127.0.0.1:{free_port()}"
    start = time.time()
    result = run("nomad_job_info", name="web", env={"NOMAD_ADDR": address})
    assert result["failed"] is True
    assert result["msg"] == (f"Cannot reach Nomad at {address}: connection refused. "
                             "Check address (NOMAD_ADDR) and that the agent is running.")
    assert time.time() - start < 5


def test_an_agent_that_never_answers_fails_within_the_timeout(run):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # the kernel accepts connections; nobody ever answers
    address = "http://127.0.0.1:%d" % silent.getsockname()[1]
    try:
        start = time.time()
        result = run("nomad_job", name="web", state="absent", timeout=2, address=address)
        elapsed = time.time() - start
    finally:
        silent.close()
    assert result["failed"] is True
    assert result["msg"].startswith(f"Cannot reach Nomad at {address}: no answer within 2s"), result["msg"]
    assert elapsed < 8, elapsed


def test_an_unknown_token_is_refused_with_a_hint(run):
    result = run("nomad_job_info", name="web", token="00000000-0000-0000-0000-000000000000")
    assert result["failed"] is True
    # Nomad does not tell an unknown token from one without the right policy
    assert "refused the token (403 Permission denied)" in result["msg"], result["msg"]
    assert "Check token (NOMAD_TOKEN)" in result["msg"]
    assert "00000000-0000" not in str(result), "the token never comes back"


def test_no_token_on_an_acl_cluster_says_a_token_is_needed(run):
    result = run("nomad_node_info", filter='Status == "ready"', env={"NOMAD_TOKEN": None})
    assert result["failed"] is True
    assert "requires an ACL token" in result["msg"] and "NOMAD_TOKEN" in result["msg"], result["msg"]


def test_a_read_only_token_can_read_but_not_submit(nomad, run, make_job):
    nomad.api("POST", "/v1/acl/policy/readonly",
              body={"Name": "readonly", "Rules": 'namespace "default" { policy = "read" }\nnode { policy = "read" }'})
    token = nomad.api("POST", "/v1/acl/token", body={"Name": "ro", "Type": "client", "Policies": ["readonly"]})["SecretID"]
    env = {"NOMAD_TOKEN": token}
    readable = run("nomad_job_info", prefix="", env=env)
    assert readable.get("failed") is not True and isinstance(readable["jobs"], list), readable
    denied = run("nomad_job", content=make_job("not-allowed"), env=env)
    assert denied["failed"] is True
    assert "refused the token (403 Permission denied)" in denied["msg"], denied["msg"]
    assert token not in str(denied)


def test_tls_problems_are_named(nomad, run):
    no_client_cert = run("nomad_job_info", name="web", env={"NOMAD_CLIENT_CERT": None, "NOMAD_CLIENT_KEY": None})
    assert no_client_cert["failed"] is True
    assert "rejected our client certificate" in no_client_cert["msg"], no_client_cert["msg"]
    assert "client_cert" in no_client_cert["msg"]

    # the system trust store does not know the cluster's CA
    unknown_ca = run("nomad_job_info", name="web", env={"NOMAD_CACERT": None})
    assert unknown_ca["failed"] is True
    assert "could not be verified" in unknown_ca["msg"] and "ca_cert (NOMAD_CACERT)" in unknown_ca["msg"], unknown_ca["msg"]

    plain = run("nomad_job_info", name="web", env={"NOMAD_ADDR": nomad.address.replace("https://", "http://")})
    assert plain["failed"] is True
    assert "speaks HTTPS" in plain["msg"] and "https://" in plain["msg"], plain["msg"]

    missing = run("nomad_job_info", name="web", ca_cert="/nonexistent/ca.pem")
    assert missing["failed"] is True and "ca_cert file /nonexistent/ca.pem does not exist" in missing["msg"]

    # NOMAD_SKIP_VERIFY turns verification off, like the CLI (the client certificate is still sent)
    skip = run("nomad_job_info", name="nothing-here", env={"NOMAD_CACERT": None, "NOMAD_SKIP_VERIFY": "true"})
    assert skip.get("failed") is not True and skip["exists"] is False, skip


def test_options_win_over_the_environment(nomad, run):
    result = run("nomad_job_info", name="nothing-here", address=nomad.address,
                 env={"NOMAD_ADDR": f"http://127.0.0.1:{free_port()}"})
    assert result.get("failed") is not True and result["exists"] is False, result

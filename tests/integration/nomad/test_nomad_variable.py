"""nomad_variable: changed only when content differs, check-and-set, and values that never leak."""
import json

SECRET = "s3cr3t-Pa55word-0f-the-db"
NEW_SECRET = "an0ther-s3cr3t-f0r-the-db"


def no_values(result, *values):
    text = json.dumps(result)
    return all(v not in text for v in values)


def test_write_is_idempotent_and_never_returns_values(nomad, run):
    created = run("nomad_variable", path="nomad/jobs/app", items={"user": "app", "password": SECRET}, diff=True)
    assert created["changed"] is True and created["exists"] is True
    assert created["item_keys"] == ["password", "user"] and "data" not in created
    assert created["diff"]["before"] == "" and "password = ********" in created["diff"]["after"]
    assert no_values(created, SECRET)
    stored = nomad.api("GET", "/v1/var/nomad/jobs/app")
    assert stored["Items"] == {"user": "app", "password": SECRET}

    same = run("nomad_variable", path="nomad/jobs/app", items={"user": "app", "password": SECRET})
    assert same["changed"] is False and same["modify_index"] == stored["ModifyIndex"]

    changed = run("nomad_variable", path="nomad/jobs/app", items={"user": "app", "password": NEW_SECRET}, diff=True)
    assert changed["changed"] is True and changed["changed_keys"] == ["password"]
    assert "password = ******** (changed)" in changed["diff"]["after"] and "user = ********" in changed["diff"]["after"]
    assert no_values(changed, SECRET, NEW_SECRET)

    read = run("nomad_variable", path="nomad/jobs/app", state="read")
    assert read["exists"] is True and "data" not in read and read["item_keys"] == ["password", "user"]
    shown = run("nomad_variable", path="nomad/jobs/app", state="read", return_values=True)
    assert shown["data"] == {"user": "app", "password": NEW_SECRET}

    merged = run("nomad_variable", path="nomad/jobs/app", items={"port": 5432, "tls": True}, merge=True)
    assert merged["changed"] is True and merged["item_keys"] == ["password", "port", "tls", "user"]
    assert nomad.api("GET", "/v1/var/nomad/jobs/app")["Items"]["tls"] == "true"


def test_check_and_set_detects_concurrent_writers(nomad, run):
    first = run("nomad_variable", path="shared/config", items={"mode": "alpha-mode"}, cas=0)
    assert first["changed"] is True
    index = first["modify_index"]
    # same content: nothing to write, so no conflict even with cas=0
    assert run("nomad_variable", path="shared/config", items={"mode": "alpha-mode"}, cas=0)["changed"] is False

    nomad.api("PUT", "/v1/var/shared/config", body={"Items": {"mode": "beta-mode"}})  # another writer
    current = nomad.api("GET", "/v1/var/shared/config")["ModifyIndex"]
    stale = run("nomad_variable", path="shared/config", items={"mode": "gamma-mode"}, cas=index)
    assert stale["failed"] is True and stale["conflict"] is True
    assert f"ModifyIndex is now {current}, not the expected {index}" in stale["msg"], stale["msg"]
    assert nomad.api("GET", "/v1/var/shared/config")["Items"] == {"mode": "beta-mode"}

    fresh = run("nomad_variable", path="shared/config", items={"mode": "gamma-mode"}, cas=current)
    assert fresh["changed"] is True
    create_only = run("nomad_variable", path="shared/config", items={"mode": "delta-mode"}, cas=0)
    assert create_only["failed"] is True and create_only["conflict"] is True

    stale_delete = run("nomad_variable", path="shared/config", state="absent", cas=index)
    assert stale_delete["failed"] is True and stale_delete["conflict"] is True


def test_check_mode_and_absent_twice(nomad, run):
    assert run("nomad_variable", path="tmp/x", items={"key": "value-one"})["changed"]
    planned = run("nomad_variable", path="tmp/x", items={"key": "value-two"}, check=True)
    assert planned["changed"] is True
    assert nomad.api("GET", "/v1/var/tmp/x")["Items"] == {"key": "value-one"}
    assert run("nomad_variable", path="tmp/x", state="absent", check=True)["changed"] is True
    assert run("nomad_variable", path="tmp/x", state="absent")["changed"] is True
    assert nomad.api("GET", "/v1/var/tmp/x", ok=(404,)) == "variable not found"
    gone = run("nomad_variable", path="tmp/x", state="absent")
    assert gone["changed"] is False and gone["exists"] is False

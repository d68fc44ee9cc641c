"""nomad_variable's pure helpers: values never shown in the diff, item normalization."""
import pytest

from ansible_collections.cloudvirt.platform.plugins.modules.nomad_variable import changed_keys, masked_diff, normalize_items


def test_masked_diff_shows_keys_and_marks_changes_without_values():
    before, after = masked_diff({"user": "app", "password": "old-secret"}, {"user": "app", "password": "new-secret", "port": "1"})
    assert before == "password = ********\nuser = ********\n"
    assert after == "password = ******** (changed)\nport = ********\nuser = ********\n"
    assert "secret" not in before + after


def test_changed_keys():
    assert changed_keys({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == ["b", "c"]
    assert changed_keys({"a": "1"}, {}) == ["a"]
    assert changed_keys({"a": ""}, {}) == ["a"]


def test_normalize_items():
    assert normalize_items({"port": 5432, "tls": True, "name": "x", "empty": None}) == {
        "port": "5432", "tls": "true", "name": "x", "empty": ""}
    with pytest.raises(ValueError, match="must be a string"):
        normalize_items({"nested": {"a": 1}})

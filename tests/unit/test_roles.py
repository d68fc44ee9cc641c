"""Structural rules every role follows (house style): prefixed variables, a complete
argument spec, templates marked as managed."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())


@pytest.mark.parametrize("role", ROLES)
def test_defaults_are_role_prefixed(role):
    defaults = yaml.safe_load((ROOT / f"roles/{role}/defaults/main.yml").read_text()) or {}
    bad = [k for k in defaults if not k.startswith(f"{role}_")]
    assert not bad, f"{role}: variables without the '{role}_' prefix: {bad}"


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_in_the_argument_spec(role):
    defaults = yaml.safe_load((ROOT / f"roles/{role}/defaults/main.yml").read_text()) or {}
    spec = yaml.safe_load((ROOT / f"roles/{role}/meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    missing = sorted(set(defaults) - set(options))
    assert not missing, f"{role}: defaults missing from meta/argument_specs.yml: {missing}"
    for name, opt in options.items():
        assert opt.get("description"), f"{role}: option {name} has no description"


@pytest.mark.parametrize("role", ROLES)
def test_templates_say_they_are_managed(role):
    # JSON has no comment syntax, and the agents reject unknown keys: JSON templates are exempt.
    for tpl in (ROOT / f"roles/{role}/templates").glob("*.j2"):
        if tpl.name.endswith(".json.j2"):
            continue
        head = "\n".join(tpl.read_text().splitlines()[:3])
        assert "ansible_managed" in head, f"{tpl} lacks the managed-by-Ansible header"

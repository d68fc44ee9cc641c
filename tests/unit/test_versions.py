"""One pinned version per binary: role defaults must match scripts/versions.env."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def versions_env():
    out = {}
    for line in (ROOT / "scripts/versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value
    return out


def role_default(role, name):
    return yaml.safe_load((ROOT / f"roles/{role}/defaults/main.yml").read_text())[name]


def test_consul_default_matches_pinned_version():
    assert role_default("consul", "consul_version") == versions_env()["CONSUL_VERSION"]


def test_nomad_default_matches_pinned_version():
    assert role_default("nomad", "nomad_version") == versions_env()["NOMAD_VERSION"]


def test_argument_specs_document_the_pinned_versions():
    for role, key in (("consul", "CONSUL_VERSION"), ("nomad", "NOMAD_VERSION")):
        spec = yaml.safe_load((ROOT / f"roles/{role}/meta/argument_specs.yml").read_text())
        assert spec["argument_specs"]["main"]["options"][f"{role}_version"]["default"] == versions_env()[key]

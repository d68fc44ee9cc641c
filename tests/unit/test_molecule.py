"""Every Molecule platform boots the lab image the same proven way (molecule/shared/node.yml),
on its own network and address range, so scenarios never collide."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NODE = yaml.safe_load((ROOT / "molecule/shared/node.yml").read_text())
SCENARIOS = sorted(p.parent for p in (ROOT / "molecule").glob("*/molecule.yml"))


def platforms(path):
    return yaml.safe_load((path / "molecule.yml").read_text())["platforms"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_platforms_use_the_shared_node_settings(scenario):
    for p in platforms(scenario):
        for key, value in NODE.items():
            assert p.get(key) == value, f"{scenario.name}/{p['name']}: {key} differs from molecule/shared/node.yml"
        assert p["name"].startswith(f"{scenario.name}-"), "container names are prefixed with the scenario"


def test_scenarios_use_distinct_networks():
    seen = {}
    for scenario in SCENARIOS:
        for p in platforms(scenario):
            for net in p.get("docker_networks", []):
                subnet = net["ipam_config"][0]["subnet"]
                owner = seen.setdefault(subnet, scenario.name)
                assert owner == scenario.name, f"{subnet} used by {owner} and {scenario.name}"

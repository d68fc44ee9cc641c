"""acl_token_differs compares only the fields the consul role manages."""
from ansible_collections.cloudvirt.platform.plugins.filter.acl_token_differs import acl_token_differs

WANTED = {
    "AccessorID": "a", "SecretID": "s", "Description": "cloudvirt: agent node1",
    "Policies": [], "NodeIdentities": [{"NodeName": "node1", "Datacenter": "dc1"}],
}
READ = {
    "AccessorID": "a", "SecretID": "s", "Description": "cloudvirt: agent node1", "Policies": None,
    "NodeIdentities": [{"NodeName": "node1", "Datacenter": "dc1"}], "CreateIndex": 12, "Hash": "x",
}


def test_same_token_with_api_extras_does_not_differ():
    assert not acl_token_differs(READ, WANTED)


def test_changed_secret_policy_or_identity_differs():
    assert acl_token_differs(dict(READ, SecretID="other"), WANTED)
    assert acl_token_differs(dict(READ, Policies=[{"ID": "1", "Name": "cloudvirt-dns"}]), WANTED)
    assert acl_token_differs(dict(READ, NodeIdentities=[{"NodeName": "node1", "Datacenter": "dc2"}]), WANTED)


def test_policy_order_does_not_matter():
    wanted = dict(WANTED, Policies=[{"Name": "a"}, {"Name": "b"}])
    assert not acl_token_differs(dict(READ, Policies=[{"ID": "2", "Name": "b"}, {"ID": "1", "Name": "a"}]), wanted)

import base64
import os

import pytest

from node.errors import NodeError
from node.identity import encode_node_id
from node.peers import PeerStore, make_peer


def nid():
    return encode_node_id(os.urandom(32))


def test_add_list_remove(tmp_path):
    store = PeerStore(tmp_path / "peers.toml")
    a = make_peer("alice", nid(), "view,call", address="100.64.0.2")
    store.add(a)
    assert store.load() == {"alice": a}
    assert store.find(a.node_id) == a
    assert store.find("alice").may("call") and not store.find("alice").may("trigger")
    assert store.remove("alice") == a
    assert store.load() == {}


def test_file_is_human_editable(tmp_path):
    path = tmp_path / "peers.toml"
    store = PeerStore(path)
    store.add(make_peer("cam", nid(), "view"))
    text = path.read_text()
    assert text.startswith("# media-node allowlist")
    node_id = nid()
    path.write_text(text + f'\n[peers.bob]\nnode_id = "{node_id.upper()}"\nallow = ["trigger"]\n')
    bob = store.find("bob")
    assert bob.node_id == node_id and bob.allow == {"trigger"}


def test_duplicate_id_and_name(tmp_path):
    store = PeerStore(tmp_path / "peers.toml")
    node_id = nid()
    store.add(make_peer("a", node_id))
    with pytest.raises(NodeError, match="already allowlisted"):
        store.add(make_peer("b", node_id))
    with pytest.raises(NodeError, match="--replace"):
        store.add(make_peer("a", nid()))
    store.add(make_peer("a", node_id, "call"), replace=True)
    assert store.find("a").allow == {"call"}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "bad name"}, "peer name"),
        ({"node_id": "short"}, "52 characters"),
        ({"allow": "view,admin"}, "unknown permission"),
        ({"yggdrasil_key": "abc"}, "64 hex"),
        ({"address": "not-an-ip"}, "not an IP"),
        ({"wireguard_key": "abc="}, "44 base64"),
        ({"wireguard_key": "A" * 43 + "=="}, "44 base64"),
        ({"nebula_cert": "-rf"}, "certificate name or its fingerprint"),
        ({"nebula_cert": "a b"}, "certificate name or its fingerprint"),
        ({"tailscale_node": "nodekey:abc"}, "nodekey:64 hex"),
        ({"tailscale_node": "--socket=/x"}, "nodekey:64 hex"),
    ],
)
def test_validation(kwargs, match):
    args = {"name": "ok", "node_id": nid(), "allow": "view"} | kwargs
    with pytest.raises(NodeError, match=match):
        make_peer(**args)


def test_broken_file_is_a_clear_error(tmp_path):
    path = tmp_path / "peers.toml"
    path.write_text("[peers.x]\nallow = ['view']\n")
    with pytest.raises(NodeError, match="needs a node_id"):
        PeerStore(path).load()
    path.write_text(f"[peers.x]\nnode_id = '{nid()}'\nallw = ['view']\n")
    with pytest.raises(NodeError, match="unknown keys"):
        PeerStore(path).load()


def test_overlay_bindings_round_trip_through_the_file(tmp_path):
    store = PeerStore(tmp_path / "peers.toml")
    key = base64.b64encode(os.urandom(32)).decode()
    peers = [
        make_peer("wg", nid(), wireguard_key=key),
        make_peer("neb", nid(), nebula_cert="E" * 64),
        make_peer("neb2", nid(), nebula_cert="camera-1.lab"),
        make_peer("ts", nid(), tailscale_node="NODEKEY:" + "ab" * 32),
        make_peer("ts2", nid(), tailscale_node="nCam2CNTRL"),
    ]
    for peer in peers:
        store.add(peer)
    loaded = store.load()
    assert loaded == {p.name: p for p in peers}
    assert loaded["neb"].nebula_cert == "e" * 64  # fingerprints compare lowercase
    assert loaded["ts"].tailscale_node == "nodekey:" + "ab" * 32
    assert loaded["wg"].wireguard_key == key


def test_a_bad_entry_in_the_file_names_the_file(tmp_path):
    path = tmp_path / "peers.toml"
    path.write_text(f'[peers.cam]\nnode_id = "{nid()}"\naddress = "not-an-ip"\n')
    with pytest.raises(NodeError) as e:
        PeerStore(path).load()
    assert str(e.value).startswith(f"{path}: peer cam: address")

import os

import pytest

from node.errors import NodeError
from node.identity import (
    Identity,
    InvalidNodeId,
    KeyPermissionError,
    decode_node_id,
    encode_node_id,
    normalize_node_id,
)

# Real Staex node ids (as Staex's own tools print them): our encoding must read them.
STAEX_IDS = [
    "gbkjnr7ydpj13bwjf8wcpwkemrnpfch0cfdtsvvgwpedjaa3we70",
    "h8syf1xcv3rveegh00p89ew8sqbzkr4ckpjz3zs4xxr5tvf4hs4g",
    "ctnsaj8135fsnm5t1fqda6093g95pjzfdhms77trjk6fy1ks6a80",
]


def test_node_id_shape_and_round_trip():
    for _ in range(50):
        key = os.urandom(32)
        node_id = encode_node_id(key)
        assert len(node_id) == 52
        assert node_id == node_id.lower()
        assert not set(node_id) & set("ilou")
        assert node_id[-1] in "0g"  # 4 zero pad bits
        assert decode_node_id(node_id) == key


def test_known_encoding():
    assert encode_node_id(bytes(32)) == "0" * 52
    assert encode_node_id(b"\xff" * 32) == "z" * 51 + "g"


@pytest.mark.parametrize("staex_id", STAEX_IDS)
def test_staex_ids_decode(staex_id):
    assert encode_node_id(decode_node_id(staex_id)) == staex_id


def test_crockford_lookalikes_and_case():
    node_id = encode_node_id(os.urandom(32))
    assert normalize_node_id(node_id.upper()) == node_id
    zeroed = "0" * 52
    assert normalize_node_id("O" * 51 + "0") == zeroed


@pytest.mark.parametrize("bad", ["", "abc", "u" * 52, "0" * 51 + "1", "0" * 53, 42])
def test_invalid_node_ids(bad):
    with pytest.raises(InvalidNodeId):
        decode_node_id(bad)


def test_key_file_is_0600_and_loads(tmp_path):
    path = tmp_path / "identity.key"
    ident = Identity.generate()
    ident.save(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert Identity.load(path).node_id == ident.node_id


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_readable_key_is_refused(tmp_path, mode):
    path = tmp_path / "identity.key"
    Identity.generate().save(path)
    path.chmod(mode)
    with pytest.raises(KeyPermissionError, match="chmod 600"):
        Identity.load(path)


def test_garbage_key_file(tmp_path):
    path = tmp_path / "identity.key"
    path.write_text("not a key\n")
    path.chmod(0o600)
    with pytest.raises(NodeError, match="not a media-node identity key"):
        Identity.load(path)


def test_missing_key_says_init(tmp_path):
    with pytest.raises(NodeError, match="media-node init"):
        Identity.load(tmp_path / "identity.key")


def test_save_never_overwrites(tmp_path):
    path = tmp_path / "identity.key"
    Identity.generate().save(path)
    with pytest.raises(FileExistsError):
        Identity.generate().save(path)

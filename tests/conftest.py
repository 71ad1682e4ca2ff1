"""Fixtures shared by every test package: homes with identities, and the rule for
tests that need root (they skip only when not root and CI is unset)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from node.home import Home
from node.identity import Identity
from node.peers import PeerStore, make_peer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
IS_ROOT = os.geteuid() == 0


def require_root(what: str) -> None:
    """Tests that need root (namespaces, tcpdump, sshd) call this first: under CI=true a
    missing privilege is a failure, never a skip."""
    if IS_ROOT:
        return
    if IN_CI:
        pytest.fail(f"{what} needs root, and CI=true forbids skipping")
    pytest.skip(f"{what} needs root (run as root or with CI=true)")


class NodeUnderTest:
    """A node home for tests: identity, config and allowlist, created through the API."""

    def __init__(self, path: Path, name: str):
        self.home = Home(path)
        self.home.create(name)
        self.name = name
        self.identity = Identity.load(self.home.key_file)
        self.peers = PeerStore(self.home.peers_file)

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    def trust(self, other: NodeUnderTest, allow: str = "view", **binding) -> None:
        self.peers.add(make_peer(other.name, other.node_id, allow, **binding), replace=True)


@pytest.fixture
def make_node(tmp_path):
    def factory(name: str) -> NodeUnderTest:
        return NodeUnderTest(tmp_path / name, name)

    return factory


# --- GPIO ----------------------------------------------------------------------------
# This kernel has no GPIO at all (no gpiochip, no gpio-sim, no configfs): a button press
# can only come from a fake of libgpiod's v2 Python API that follows its contract
# (tests/fakes/gpiod, see its docstring).

GPIO_FAKES = Path(__file__).resolve().parent / "fakes"


@pytest.fixture
def fake_gpiod(monkeypatch, tmp_path):
    """The fake `gpiod` imported in place of the real one, with a Pi-like board: a
    gpiochip0 without the header pins and a gpiochip4 holding GPIO0..GPIO27 (the
    Pi 5's RP1 block on older kernels), as device files under a `dev` folder."""
    monkeypatch.syspath_prepend(str(GPIO_FAKES))
    for name in [m for m in sys.modules if m == "gpiod" or m.startswith("gpiod.")]:
        monkeypatch.delitem(sys.modules, name)
    import gpiod

    assert gpiod.__version__.endswith("-fake")
    dev = tmp_path / "dev"
    dev.mkdir()
    gpiod.Board.reset()
    chips = {"gpiochip0": ["ID_SDA", "ID_SCL"], "gpiochip4": [f"GPIO{i}" for i in range(28)]}
    for chip, names in chips.items():
        (dev / chip).touch()
        gpiod.Board.add_chip(str(dev / chip), names)
    gpiod.dev = str(dev)
    yield gpiod
    for name in [m for m in sys.modules if m == "gpiod" or m.startswith("gpiod.")]:
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def fake_speaker(tmp_path_factory):
    """pcm.media_node_test_speaker: ALSA playback into speaker.raw (s16le mono 48 kHz),
    through the `file` plugin (no sound card needed). Yields the file's path."""
    import alsaaudio  # noqa: F401  (a dependency: missing it is a failure, not a skip)

    d = tmp_path_factory.mktemp("speaker")
    out = d / "speaker.raw"
    conf = d / "speaker.conf"
    conf.write_text(
        "pcm.media_node_test_speaker {\n"
        "    type file\n"
        '    slave.pcm "null"\n'
        f'    file "{out}"\n'
        '    format "raw"\n'
        "}\n"
    )
    old = os.environ.get("ALSA_CONFIG_PATH")
    # after any other test device (the fake microphone), read at the next PCM open
    os.environ["ALSA_CONFIG_PATH"] = f"{old or '/usr/share/alsa/alsa.conf'}:{conf}"
    yield out
    if old is None:
        os.environ.pop("ALSA_CONFIG_PATH", None)
    else:
        os.environ["ALSA_CONFIG_PATH"] = old

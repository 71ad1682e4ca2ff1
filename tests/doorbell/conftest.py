"""The fake gpiod (tests/fakes/gpiod): this kernel has no GPIO at all (no gpiochip, no
gpio-sim, no configfs), so a button press can only come from a fake of libgpiod's v2
Python API that follows its contract (see its docstring)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FAKES = Path(__file__).resolve().parents[1] / "fakes"


@pytest.fixture
def fake_gpiod(monkeypatch, tmp_path):
    """The fake `gpiod` imported in place of the real one, with a Pi-like board: a
    gpiochip0 without the header pins and a gpiochip4 holding GPIO0..GPIO27 (the
    Pi 5's RP1 block on older kernels), as device files under a `dev` folder."""
    monkeypatch.syspath_prepend(str(FAKES))
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

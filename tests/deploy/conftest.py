"""Fixtures for the deployment tests: a wheelhouse built once per session (the
controller's `pip wheel -w wheelhouse/<tag> .`, one folder per device Python and CPU as
the role expects), kept in a temp dir and removed at the end."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def wheel_tag() -> str:
    """This machine's (Python, CPU) tag, as the role computes it on a device."""
    return f"cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}"


@pytest.fixture(scope="session")
def wheelhouse():
    """The wheelhouse root: <root>/<tag> holds media-node's wheel plus every
    dependency's, as an operator builds it for the devices. Built from a copy of the
    sources so no build/ dir lands in the repo."""
    tmp = Path(tempfile.mkdtemp(prefix="mn-wheelhouse-"))
    try:
        src = tmp / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(REPO / name, src / name)
        for pkg in ("node", "firmware_config"):
            shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
        out = tmp / "wheelhouse" / wheel_tag()
        r = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(out), str(src)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, f"pip wheel failed:\n{r.stdout}\n{r.stderr}"
        assert list(out.glob("media_node-*.whl")), "no media-node wheel built"
        tmp.chmod(0o755)
        yield out.parent
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

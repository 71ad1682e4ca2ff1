"""The privacy lab (namespaces, LAN bridge, static-overlay veth, Yggdrasil, WireGuard and
Nebula pairs) is built once per session and torn down even when a test fails."""

from __future__ import annotations

import shutil

import pytest
from conftest import require_root  # tests/conftest.py

from .netlab import Lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    require_root("the privacy harness (network namespaces, TUN, tcpdump)")
    for tool in ("ip", "yggdrasil", "tcpdump"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (make system-packages installs it)")
    built = Lab(tmp_path_factory.mktemp("lab"))
    try:
        yield built.setup()
    finally:
        built.teardown()

"""The node refuses what another local user could write (like ssh with
authorized_keys): `media-node run` does not start, and a running daemon stops trusting
an allowlist that became writable, each time naming the exact chmod or chown."""

from __future__ import annotations

import grp
import json
import logging
import os
import subprocess
import sys

import pytest

from node.links import ReplayCache
from node.permissions import UnsafePermissions
from node.service import Service

from .daemon import configure, pair, real_view_request, running, wait_for

pytestmark = pytest.mark.timeout(120)


async def start_refused(home) -> str:
    """The daemon's start must refuse this home: the message it gives (the CLI prints it
    as `error: ...` and exits 1, see the test of the command below)."""
    service = Service(home)
    try:
        await service.start()
    except UnsafePermissions as e:
        return str(e)
    finally:
        await service.stop()
    raise AssertionError("the daemon started on an unsafe home")


def run_daemon_process(home):
    """`media-node run` in a process of its own (it makes its own event loop); only for
    homes it refuses, so it exits at once."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "node.cli", "run", "--home", str(home.path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "the daemon kept running"
    return proc.returncode, proc.stderr


def target(home, which: str):
    if which == "replay cache":
        ReplayCache(home.replay_db).close()
    return {
        "home": home.path,
        "allowlist": home.peers_file,
        "config": home.config_file,
        "inbox": home.inbox,
        "work": home.work,
        "replay cache": home.replay_db,
    }[which]


@pytest.mark.parametrize("which", ["home", "allowlist", "config", "inbox", "work", "replay cache"])
@pytest.mark.parametrize("bits", [0o020, 0o002])
async def test_start_refuses_a_home_part_others_can_write(make_node, which, bits):
    camera, _ = pair(make_node)
    path = target(camera.home, which)
    mode = path.stat().st_mode & 0o7777
    path.chmod(mode | bits)
    assert f"chmod {mode & ~0o022:o} {path}" in await start_refused(camera.home)


@pytest.mark.parametrize("which", ["home", "allowlist", "config", "inbox", "replay cache"])
async def test_start_refuses_a_home_part_another_user_owns(make_node, which):
    camera, _ = pair(make_node)
    path = target(camera.home, which)
    os.chown(path, 4242, -1)
    err = await start_refused(camera.home)
    assert "owned by uid 4242" in err and f"chown {os.geteuid()} {path}" in err, err


def test_media_node_run_says_the_chmod_and_exits(make_node):
    camera, _ = pair(make_node)
    camera.home.peers_file.chmod(0o666)
    code, err = run_daemon_process(camera.home)
    assert code == 1 and f"error: {camera.home.peers_file}" in err, err
    assert f"chmod 644 {camera.home.peers_file}" in err and "Traceback" not in err, err


def _some_group() -> grp.struct_group:
    return next(g for g in grp.getgrall() if g.gr_gid != os.getegid())


async def test_inbox_may_be_group_writable_only_for_the_configured_group(make_node):
    camera, _ = pair(make_node)
    group = _some_group()
    os.chown(camera.home.inbox, -1, group.gr_gid)
    camera.home.inbox.chmod(0o770)
    err = await start_refused(camera.home)  # no group named in the config
    assert f"chmod 750 {camera.home.inbox}" in err, err
    configure(camera, group=group.gr_name)
    async with running(camera) as service:  # named: the daemon serves
        assert service.transports
    camera.home.inbox.chmod(0o772)  # others still may not write it
    assert f"chmod 770 {camera.home.inbox}" in await start_refused(camera.home)
    os.chown(camera.home.inbox, 4242, group.gr_gid)  # nor may another user own it
    camera.home.inbox.chmod(0o770)
    assert "owned by uid 4242" in await start_refused(camera.home)
    configure(camera, group="no-such-group-mnode")
    assert "no group 'no-such-group-mnode'" in await start_refused(camera.home)


async def test_a_running_daemon_stops_trusting_an_allowlist_others_can_write(make_node, caplog):
    """Another local user makes itself a peer by appending to a world-writable
    peers.toml: the running daemon refuses its request (and everyone's) until fixed."""
    camera, _ = pair(make_node)
    intruder = make_node("intruder")
    intruder.trust(camera, "view")
    async with running(camera) as service:
        camera.home.peers_file.chmod(0o666)
        entry = f'\n[peers.intruder]\nnode_id = "{intruder.node_id}"\nallow = ["view"]\n'
        entry += 'address = "127.0.0.2"\n'
        camera.home.peers_file.write_text(camera.home.peers_file.read_text() + entry)
        link = await real_view_request(intruder, camera)
        caplog.set_level(logging.INFO)
        (camera.home.inbox / "intruder.link").write_text(link.text)
        reason = camera.home.reasons / "intruder.link"
        await wait_for(reason.exists, what="the intruder's request refused")
        assert json.loads(reason.read_text())["reason"] == "allowlist-unreadable"
        assert not (camera.home.outbox / "intruder.link").exists()
        assert not service.manager.active()
        assert f"chmod 644 {camera.home.peers_file}" in json.loads(reason.read_text())["message"]

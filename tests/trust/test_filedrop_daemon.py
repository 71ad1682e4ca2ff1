"""The file drop's promises, through the whole daemon (node.service.Service with real
media, a real CallManager and real links): every file ends in done/ or rejected/ with
a reason, under any legal name, nothing the node writes replaces a dropped file, and a
link whose reply could not be written is refused before it uses its nonce or sets up
a call."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

import pytest

from node.links import LinkOpener

from .daemon import configure, pair, real_view_request, running, wait_for

pytestmark = pytest.mark.timeout(120)

# Timings of the daemon under test: a "slow" writer costs a fraction of a second.
FAST = dict(settle=0.05, rescan=0.05, max_open=20.0, empty_grace=0.5)


def finished(home, name: str) -> str | None:
    for folder in ("done", "rejected"):
        if os.path.lexists(getattr(home, folder) / name):
            return folder
    return None


def reason(home, name: str) -> dict:
    return json.loads((home.reasons / name).read_text())


def is_answer(viewer, link, reply_path) -> bool:
    opened = LinkOpener(viewer.identity, viewer.peers).open(reply_path.read_text(), expect_offer=link.digest)
    return opened.claims.kind == "answer"


@pytest.mark.parametrize(
    "name",
    [
        os.fsdecode(b"L" * 255),
        os.fsdecode(b"\xff\xfe" + "é".encode() * 60 + b"\x80" * 133),  # 255 bytes, not UTF-8
        "x" * 230 + ".link",
    ],
    ids=["255-bytes", "255-bytes-not-utf8", "235-bytes"],
)
async def test_any_legal_name_gets_its_reply_and_ends_in_done(make_node, name):
    camera, viewer = pair(make_node)
    configure(camera, **FAST)
    async with running(camera) as service:
        link = await real_view_request(viewer, camera)
        (camera.home.inbox / name).write_text(link.text)
        await wait_for(lambda: finished(camera.home, name), what="the long name handled")
        assert finished(camera.home, name) == "done", reason(camera.home, name)
        assert is_answer(viewer, link, camera.home.outbox / name)
        assert len(service.manager.active()) == 1
        bad = name[:-3] + "bad"  # a refusal of a long name gets its reason too
        (camera.home.inbox / bad).write_text("not a link")
        await wait_for(lambda: finished(camera.home, bad), what="the long bad name handled")
        assert reason(camera.home, bad)["reason"] == "malformed"
        assert (camera.home.rejected / bad).read_text() == "not a link"
        assert not os.listdir(camera.home.work)


async def test_names_like_the_nodes_own_never_collide(make_node):
    camera, _ = pair(make_node)
    configure(camera, **FAST)
    async with running(camera):
        drops = {"order.reason.json": "first", "order": "second", "order.1": "third"}
        for name, text in drops.items():
            (camera.home.inbox / name).write_text(text)
            await wait_for(lambda n=name: finished(camera.home, n), what=name)
        (camera.home.inbox / "order").write_text("fourth")  # the same name again
        await wait_for(lambda: len(os.listdir(camera.home.rejected)) == 4, what="the second 'order'")
    assert {n: (camera.home.rejected / n).read_text() for n in os.listdir(camera.home.rejected)} == {
        "order.reason.json": "first",
        "order": "second",
        "order.1": "third",
        "order.2": "fourth",
    }
    assert sorted(os.listdir(camera.home.reasons)) == sorted(os.listdir(camera.home.rejected))
    assert reason(camera.home, "order.2")["file"] == "order"
    assert reason(camera.home, "order.2")["renamed"] == "order.2"


async def test_a_name_with_the_reserved_suffix_survives_a_restart(make_node):
    camera, _ = pair(make_node)
    configure(camera, **FAST)
    async with running(camera):
        (camera.home.inbox / "x.mnode-tmp").write_text("not a link")
        await wait_for(lambda: finished(camera.home, "x.mnode-tmp"), what="x.mnode-tmp handled")
    async with running(camera):  # the start's clean-up of the node's own temporary files
        pass
    assert (camera.home.rejected / "x.mnode-tmp").read_text() == "not a link"
    assert reason(camera.home, "x.mnode-tmp")["reason"] == "malformed"


async def test_a_slow_writer_within_max_open_is_waited_for(make_node):
    """The writer keeps the file open and pauses far longer than `settle` and `rescan`
    (many rescans happen meanwhile): the file is taken only once it is closed."""
    camera, viewer = pair(make_node)
    configure(camera, **FAST)
    async with running(camera):
        link = await real_view_request(viewer, camera)
        with open(camera.home.inbox / "slow.link", "w") as f:
            for i in range(0, len(link.text), 200):
                f.write(link.text[i : i + 200])
                f.flush()
                await asyncio.sleep(0.3)  # 6x settle, 6 rescans
        await wait_for(lambda: finished(camera.home, "slow.link"), what="slow.link handled")
        assert finished(camera.home, "slow.link") == "done", reason(camera.home, "slow.link")
        assert is_answer(viewer, link, camera.home.outbox / "slow.link")


async def test_a_file_held_open_past_max_open_is_refused_and_kept(make_node):
    camera, _ = pair(make_node)
    configure(camera, **{**FAST, "max_open": 0.5})
    async with running(camera):
        f = open(camera.home.inbox / "abandoned", "w")
        try:
            f.write("mnode:half-a-link")
            f.flush()
            await wait_for(lambda: finished(camera.home, "abandoned"), what="the abandoned file")
        finally:
            f.close()
    assert reason(camera.home, "abandoned")["reason"] == "still-open"
    assert (camera.home.rejected / "abandoned").read_text() == "mnode:half-a-link"


async def test_a_reply_that_cannot_be_written_uses_no_nonce_and_sets_up_no_call(make_node):
    camera, viewer = pair(make_node)
    configure(camera, **FAST)
    async with running(camera) as service:
        (camera.home.outbox / "blocked.link" / "x").mkdir(parents=True)  # in the reply's place
        link = await real_view_request(viewer, camera)
        (camera.home.inbox / "blocked.link").write_text(link.text)
        await wait_for(lambda: finished(camera.home, "blocked.link"), what="blocked.link handled")
        assert reason(camera.home, "blocked.link")["reason"] == "reply-unwritable"
        assert not service.manager.active()
        # the same link under a name whose reply can be written: its nonce is still unused
        (camera.home.inbox / "free.link").write_text(link.text)
        await wait_for(lambda: finished(camera.home, "free.link"), what="free.link handled")
        assert finished(camera.home, "free.link") == "done", reason(camera.home, "free.link")
        assert is_answer(viewer, link, camera.home.outbox / "free.link")
        assert len(service.manager.active()) == 1


async def test_an_unfinished_name_abandoned_past_max_open_is_logged_once_and_left(make_node, caplog):
    """Names the node never takes (a leading '.', .tmp/.part/...): one left for longer
    than `max_open` is logged once and stays in the inbox as it was, across restarts."""
    camera, _ = pair(make_node)
    configure(camera, **{**FAST, "max_open": 0.5})
    caplog.set_level(logging.WARNING, logger="node.transports.filedrop")
    abandoned = camera.home.inbox / "upload.part"
    abandoned.write_text("half of a link")
    hour_ago = time.time() - 3600
    os.utime(abandoned, (hour_ago, hour_ago))
    for _ in range(2):
        async with running(camera):
            await wait_for(lambda: "unfinished name" in caplog.text, what="the abandoned name logged")
            (camera.home.inbox / "later").write_text("x")  # rescans run while it settles
            await wait_for(lambda: finished(camera.home, "later"), what="a later file handled")
            assert caplog.text.count("unfinished name") == 1
        caplog.clear()
        (camera.home.rejected / "later").unlink()
        (camera.home.reasons / "later").unlink()
    assert abandoned.read_text() == "half of a link"
    assert os.listdir(camera.home.inbox) == ["upload.part"]

"""File drop against a real inotify watcher (watchdog) and the real links code."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from node.transports import TransportError
from node.transports.filedrop import FileDropClient, FileDropWatcher

from .helpers import Responder, check_answer, view_request

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def pair(make_node):
    viewer, camera = make_node("viewer"), make_node("camera")
    camera.trust(viewer, "view")
    viewer.trust(camera, "view")
    return viewer, camera


async def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def reason_of(home, name: str) -> dict:
    return json.loads((home.rejected / f"{name}.reason.json").read_text())


async def test_write_then_rename_is_answered_and_moved_to_done(pair):
    viewer, camera = pair
    responder = Responder(camera)
    async with FileDropWatcher(camera.home, responder, settle=0.1):
        request = view_request(viewer, camera)
        tmp = camera.home.inbox / ".req-1.tmp"
        tmp.write_text(request.text)
        await asyncio.sleep(0.3)  # an unfinished (dot) name is never taken
        assert tmp.exists()
        os.rename(tmp, camera.home.inbox / "req-1")
        await wait_for(lambda: (camera.home.done / "req-1").exists(), what="done/req-1")
        check_answer(viewer, request, (camera.home.outbox / "req-1").read_text())
        assert not (camera.home.inbox / "req-1").exists() and not list(camera.home.work.iterdir())
        assert (camera.home.done / "req-1").read_text() == request.text
    responder.close()


async def test_a_file_renamed_in_is_taken_without_settling(pair):
    """A rename into inbox/ is the writer's atomic hand-over: it is taken at once, not
    after the settle period (here a minute, far beyond the wait below)."""
    viewer, camera = pair
    responder = Responder(camera)
    async with FileDropWatcher(camera.home, responder, settle=60):
        request = view_request(viewer, camera)
        tmp = camera.home.inbox / ".req-2.tmp"
        tmp.write_text(request.text)
        os.rename(tmp, camera.home.inbox / "req-2")
        await wait_for(lambda: (camera.home.done / "req-2").exists(), timeout=20, what="done/req-2")
        check_answer(viewer, request, (camera.home.outbox / "req-2").read_text())
    responder.close()


async def test_write_in_place_is_taken_only_after_the_writer_closes_it(pair):
    viewer, camera = pair
    responder = Responder(camera)
    settle = 0.1
    async with FileDropWatcher(camera.home, responder, settle=settle) as watcher:
        request = view_request(viewer, camera)
        text = request.text
        with open(camera.home.inbox / "slow.link", "w") as f:
            for i in range(0, len(text), 40):
                f.write(text[i : i + 40])
                f.flush()
                # pauses longer than the settle time: only the close says it is complete
                await asyncio.sleep(settle * 3 if i < 120 else 0.01)
        await wait_for(
            lambda: watcher.counts["done"] + watcher.counts["rejected"] == 1, what="slow.link handled"
        )
        assert watcher.counts == {"done": 1, "rejected": 0}, reason_of(camera.home, "slow.link")
        check_answer(viewer, request, (camera.home.outbox / "slow.link").read_text())
    responder.close()


async def test_files_present_at_start_are_processed(pair):
    viewer, camera = pair
    requests = {f"early-{i}.link": view_request(viewer, camera) for i in range(5)}
    for name, request in requests.items():
        (camera.home.inbox / name).write_text(request.text)
    responder = Responder(camera)
    async with FileDropWatcher(camera.home, responder, settle=0.1) as watcher:
        await wait_for(lambda: watcher.counts["done"] == 5, what="5 early files")
    for name, request in requests.items():
        check_answer(viewer, request, (camera.home.outbox / name).read_text())
    responder.close()


async def test_client_request_round_trip_and_refusal(pair, make_node):
    viewer, camera = pair
    responder = Responder(camera)
    async with FileDropWatcher(camera.home, responder, settle=0.05):
        client = FileDropClient(camera.home.path)
        request = view_request(viewer, camera)
        reply = await client.request(None, request.text, timeout=20)
        check_answer(viewer, request, reply)
        assert not list(camera.home.outbox.iterdir()), "the client consumes its reply"
        # the same link again: the replay cache refuses it and the client hears why
        with pytest.raises(TransportError) as refused:
            await client.request(None, request.text, timeout=20)
        assert refused.value.reason == "replayed"
        stranger = make_node("stranger")
        with pytest.raises(TransportError) as refused:
            await client.request(None, view_request(stranger, camera).text, timeout=20)
        assert refused.value.reason == "unknown-sender"
    # nobody watching: a timeout, and the unanswered request is withdrawn
    with pytest.raises(TransportError) as late:
        await FileDropClient(camera.home.path).request(None, view_request(viewer, camera).text, timeout=0.5)
    assert late.value.reason == "timeout"
    assert not list(camera.home.inbox.iterdir())
    responder.close()


async def test_work_file_already_answered_goes_to_done_without_handling(pair):
    viewer, camera = pair
    request = view_request(viewer, camera)
    (camera.home.work / "answered.link").write_text(request.text)
    time.sleep(0.01)
    (camera.home.outbox / "answered.link").write_text("mnode:previous-reply\n")
    responder = Responder(camera)
    async with FileDropWatcher(camera.home, responder, settle=0.05) as watcher:
        assert watcher.counts == {"done": 1, "rejected": 0}
    assert not responder.handled
    assert (camera.home.done / "answered.link").exists()
    responder.close()


CRASHING_DAEMON = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from node.home import Home
    from node.identity import Identity
    from node.peers import PeerStore
    from node.links import LinkOpener, ReplayCache
    from node.transports.filedrop import FileDropWatcher

    home, mode, marker = Home(Path(sys.argv[1])), sys.argv[2], Path(sys.argv[3])
    opener = LinkOpener(Identity.load(home.key_file), PeerStore(home.peers_file),
                        ReplayCache(home.replay_db))

    async def handler(text):
        if mode == "after-claim":
            opener.open(text)  # the nonce is now in the replay cache
        marker.write_text("in hand")
        await asyncio.sleep(3600)  # killed here

    async def main():
        async with FileDropWatcher(home, handler, settle=0.05):
            await asyncio.sleep(3600)

    asyncio.run(main())
""")


@pytest.mark.parametrize("mode", ["before-claim", "after-claim"])
async def test_crash_mid_processing_loses_nothing_and_repeats_nothing(pair, tmp_path, mode):
    viewer, camera = pair
    marker = tmp_path / "marker"
    daemon = subprocess.Popen(
        [sys.executable, "-c", CRASHING_DAEMON, str(camera.home.path), mode, str(marker)],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        request = view_request(viewer, camera)
        (camera.home.inbox / "crash.link").write_text(request.text)
        await wait_for(
            lambda: marker.exists() or daemon.poll() is not None, what="the daemon to take the file"
        )
        assert daemon.poll() is None, "the crashing daemon died early"
        assert (camera.home.work / "crash.link").exists()
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    responder = Responder(camera)
    async with FileDropWatcher(camera.home, responder, settle=0.05) as watcher:
        pass  # recovery runs inside start()
    assert not list(camera.home.work.iterdir())
    if mode == "before-claim":
        # never handled before the crash: handled now, once, and answered
        assert watcher.counts == {"done": 1, "rejected": 0}
        assert responder.handled[request.claims.nonce] == 1
        check_answer(viewer, request, (camera.home.outbox / "crash.link").read_text())
    else:
        # handled before the crash: the replay cache stops a second handling
        assert watcher.counts == {"done": 0, "rejected": 1}
        assert not responder.handled
        info = reason_of(camera.home, "crash.link")
        assert info["reason"] == "replayed" and "stopped" in info["message"]
        assert (camera.home.rejected / "crash.link").read_text() == request.text
    responder.close()


async def test_each_file_is_processed_exactly_once(pair):
    viewer, camera = pair
    responder = Responder(camera)
    requests = {f"r{i:03d}.link": view_request(viewer, camera) for i in range(120)}
    async with FileDropWatcher(camera.home, responder, settle=0.05) as watcher:

        async def drop(name, request, in_place):
            if in_place:
                (camera.home.inbox / name).write_text(request.text)
            else:
                tmp = camera.home.inbox / f"{name}.part"
                tmp.write_text(request.text)
                os.rename(tmp, camera.home.inbox / name)

        await asyncio.gather(*(drop(n, r, i % 2 == 0) for i, (n, r) in enumerate(requests.items())))
        # the same link under another name: refused as a replay, not handled twice
        await wait_for(lambda: (camera.home.done / "r000.link").exists(), what="r000 done")
        (camera.home.inbox / "copy.link").write_text(requests["r000.link"].text)
        await wait_for(lambda: watcher.counts["done"] + watcher.counts["rejected"] == 121, what="121 files")
        await watcher.drained(10)
    assert watcher.counts == {"done": 120, "rejected": 1}
    assert set(responder.handled.values()) == {1} and len(responder.handled) == 120
    assert sorted(p.name for p in camera.home.done.iterdir()) == sorted(requests)
    for name, request in requests.items():
        check_answer(viewer, request, (camera.home.outbox / name).read_text())
    assert reason_of(camera.home, "copy.link")["reason"] == "replayed"
    responder.close()


async def test_rejections_are_reported_as_events_and_the_watcher_reports_health(pair, make_node):
    viewer, camera = pair
    events = []
    responder = Responder(camera)
    watcher = FileDropWatcher(camera.home, responder, settle=0.05, on_event=events.append)
    assert not watcher.healthy()
    async with watcher:
        assert watcher.healthy()
        (camera.home.inbox / "stranger.link").write_text(view_request(make_node("stranger"), camera).text)
        await wait_for(lambda: events, what="the rejection event")
    assert events == [
        {
            "event": "rejected",
            "transport": "file",
            "file": "stranger.link",
            "reason": "unknown-sender",
            "message": events[0]["message"],
        }
    ]
    assert not watcher.healthy()
    responder.close()

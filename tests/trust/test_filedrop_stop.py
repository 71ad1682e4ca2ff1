"""Stopping the file-drop watcher, through the real watcher (inotify, its workers, its
timers): stop() returns whenever it comes, leaves an interrupted file in work/ for the
next start, and after it nothing of the watcher runs on the loop any more."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

import pytest

from node.home import Home
from node.transports.filedrop import FileDropWatcher

pytestmark = pytest.mark.timeout(60)

FAST = dict(settle=0.02, rescan=0.05, max_open=10.0, empty_grace=0.1)


def make_home(tmp_path) -> Home:
    home = Home(tmp_path / "node")
    home.create("camera")
    return home


def drop(home: Home, name: str, text: str) -> None:
    """Write-then-rename: the watcher takes it at once."""
    tmp = home.inbox / f".{name}.tmp"
    tmp.write_text(text)
    os.rename(tmp, home.inbox / name)


async def until(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.01)


async def answer(text: str) -> str:
    return "answer to " + text


async def test_stop_as_a_handler_returns_still_ends_every_worker(tmp_path):
    """The stop's cancel lands after the handler returned but before the worker resumed
    (Python 3.11's asyncio.wait_for then returned the result and dropped the cancel: the
    worker went back to its queue and stop() waited for it forever)."""
    home = make_home(tmp_path)
    stopping: list[asyncio.Task[None]] = []
    before = set(threading.enumerate())

    async def handler(text: str) -> str:
        if not stopping:
            stopping.append(asyncio.ensure_future(watcher.stop()))
            await asyncio.sleep(0)  # stop() runs up to its first wait
            # Hold the loop until the inotify threads have ended and their join's result
            # is posted, so stop() resumes right after this handler returns.
            deadline = time.monotonic() + 5
            while any(t.is_alive() for t in set(threading.enumerate()) - before):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            time.sleep(0.2)
        return await answer(text)

    watcher = FileDropWatcher(home, handler, **FAST)
    await watcher.start()
    drop(home, "order", "link")
    await until(lambda: stopping, "the link handed to the handler")
    done, _ = await asyncio.wait(stopping, timeout=10)
    assert done, "stop() did not return: a worker is still waiting for work"
    assert not watcher.healthy()
    # Wherever the stop caught it (work/: finished by the next start), it ends once in done/
    # with its reply.
    async with FileDropWatcher(home, answer, **FAST) as again:
        await again.drained(10)
    assert os.listdir(home.done) == ["order"]
    assert (home.outbox / "order").read_text() == "answer to link\n"
    assert not os.listdir(home.work) and not os.listdir(home.inbox)


async def test_nothing_of_a_stopped_watcher_runs_on(tmp_path, caplog):
    """A dropped name whose namesake is still in work/ is looked at again later (a timer):
    a stop cancels that timer, so nothing of a stopped watcher runs on (it used to spawn
    a settle task after stop(), which looked at the inbox of a node that had stopped)."""
    caplog.set_level(logging.DEBUG, logger="node.transports.filedrop")
    home = make_home(tmp_path)
    others = asyncio.all_tasks()
    watcher = FileDropWatcher(home, answer, **FAST)
    await watcher.start()
    # A file stuck in work/ after start (as if its move to done/ had failed): the name
    # is in hand, so a new file of that name waits for it.
    (home.work / "order").write_text("first")
    drop(home, "order", "second")
    await until(lambda: "still in hand" in caplog.text, "the second 'order' found still in hand")
    await asyncio.wait_for(watcher.stop(), 10)
    left: set[asyncio.Task[object]] = set()
    deadline = time.monotonic() + 10 * FAST["settle"]  # the timer was due after one settle
    while time.monotonic() < deadline and not left:
        await asyncio.sleep(FAST["settle"] / 4)
        left = asyncio.all_tasks() - others - {asyncio.current_task()}
    assert not left, f"a stopped watcher still runs: {left}"
    assert (home.inbox / "order").read_text() == "second"  # untouched while stopped
    async with FileDropWatcher(home, answer, **FAST) as again:  # the next start finishes both
        await again.drained(10)
    assert sorted(os.listdir(home.done)) == ["order", "order.1"]
    assert sorted((home.done / n).read_text() for n in os.listdir(home.done)) == ["first", "second"]
    assert (home.outbox / "order").read_text() == "answer to second\n"

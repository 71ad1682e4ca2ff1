"""The file drop's invariant, for random drops (hypothesis): every dropped file ends in
done/ or rejected/ exactly once, with its content intact, under its own name or the
documented safe rename (NAME.N, cut at its end to fit); every rejected file has its
reason in reasons/ under the same name; the reply to the last link dropped under a
name is outbox/NAME; a name the node never takes stays in the inbox untouched.

Names are random bytes up to 255 (non-UTF-8 too) plus names like the node's own;
writers rename in, write in place, or write slowly with pauses longer than `settle`
and `rescan`; the watcher is restarted between batches, sometimes while a slow writer
is still at work. Timings are milliseconds, so an example costs well under a second."""

from __future__ import annotations

import asyncio
import io
import os
import re
import tempfile
import uuid
from collections import Counter
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.home import Home
from node.identity import Identity
from node.links import LinkOpener, ReplayCache, make_link
from node.peers import PeerStore, make_peer
from node.transports.filedrop import FileDropWatcher, is_unfinished

T = TypeVar("T")

SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 101\r\na=recvonly\r\n"

pytestmark = pytest.mark.timeout(300)

TIMINGS = dict(settle=0.01, rescan=0.02, max_open=10.0, empty_grace=0.05)
PAUSE = 0.05  # a slow writer's pause: 5x settle, 2.5x rescan


class Responder:
    """The handshake half of CallManager.handle_link: opens each link with the allowlist
    and the persistent replay cache, answers it; `handled` counts each nonce let through."""

    def __init__(self, node: Node):
        self.node = node
        self.replay = ReplayCache(node.home.replay_db)
        self.opener = LinkOpener(node.identity, node.peers, self.replay)
        self.handled: Counter[str] = Counter()

    async def __call__(self, text: str) -> str:
        opened = self.opener.open(text)
        self.handled[opened.claims.nonce] += 1
        return make_link(self.node.identity, "answer", opened.claims.iss, sdp=SDP, ofh=opened.digest).text

    def close(self) -> None:
        self.replay.close()


class Node:
    def __init__(self, path: Path, name: str):
        self.home = Home(path)
        self.home.create(name)
        self.name = name
        self.identity = Identity.load(self.home.key_file)
        self.peers = PeerStore(self.home.peers_file)

    @property
    def node_id(self) -> str:
        return self.identity.node_id


def legal(raw: bytes) -> bool:
    return b"/" not in raw and b"\0" not in raw and raw not in (b".", b"..")


random_names = st.binary(min_size=1, max_size=255).filter(legal)
long_names = st.integers(min_value=200, max_value=255).map(lambda n: b"n" * n)
own_names = st.sampled_from(
    [b"order", b"order.reason.json", b"order.1", b"x.mnode-tmp", b".mnode-tmp-0123", b"a.part", b"b~"]
)
names = st.one_of(random_names, long_names, own_names).map(os.fsdecode)
drops = st.lists(
    st.tuples(
        names,
        st.sampled_from(["link", "garbage", "empty"]),
        st.sampled_from(["rename", "in-place", "slow"]),
    ),
    min_size=1,
    max_size=6,
)


async def write(home: Home, name: str, data: bytes, how: str) -> None:
    path = home.inbox / name
    if how == "rename":
        tmp = home.inbox / f".w-{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(data)
        os.rename(tmp, path)
    elif how == "in-place":
        path.write_bytes(data)
    else:
        with open(path, "wb") as f:
            for i in range(0, max(len(data), 1), max(len(data) // 3, 1)):
                f.write(data[i : i + max(len(data) // 3, 1)])
                f.flush()
                await asyncio.sleep(PAUSE)


STEP_TIMEOUT = 20.0  # seconds any one step may take before the example fails, naming it


async def step(what: str, aw: Awaitable[T], timeout: float = STEP_TIMEOUT) -> T:
    """Every await of the scenario goes through here: a step that never completes fails
    the example with its name instead of hanging the test."""
    try:
        async with asyncio.timeout(timeout):
            return await aw
    except TimeoutError:
        here = asyncio.current_task()
        stacks = io.StringIO()
        for task in asyncio.all_tasks():
            if task is not here:
                task.print_stack(limit=6, file=stacks)
        raise AssertionError(
            f"stuck: {what} did not complete within {timeout:.0f} s; the tasks then:\n{stacks.getvalue()}"
        ) from None


def waiting(home: Home, name: str) -> bool:
    return not is_unfinished(name) and os.path.lexists(home.inbox / name)


def derived(original: str, found: str) -> bool:
    """`found` is `original` or its safe rename: NAME.N, NAME cut at its end to fit."""
    if found == original:
        return True
    raw, got = os.fsencode(original), os.fsencode(found)
    m = re.fullmatch(rb"(.*)\.([1-9][0-9]*)", got, re.DOTALL)
    return bool(m) and (raw == m.group(1) or (raw.startswith(m.group(1)) and len(got) == 255))


async def scenario(root: Path, batches: list[list[tuple[str, str, str]]]) -> None:
    viewer, camera = Node(root / "viewer", "viewer"), Node(root / "camera", "camera")
    camera.peers.add(make_peer("viewer", viewer.node_id, "view"))
    viewer.peers.add(make_peer("camera", camera.node_id, "view"))
    responder = Responder(camera)
    dropped: list[tuple[str, bytes]] = []
    left_alone: dict[str, bytes] = {}
    last_link: dict[str, object] = {}
    try:
        for i, batch in enumerate(batches):
            watcher = FileDropWatcher(camera.home, responder, **TIMINGS)
            await step(f"batch {i}: watcher.start()", watcher.start())
            writers = []
            for name, kind, how in batch:
                # The same name again only once the node took the earlier one (a writer
                # that renames over a file still in the inbox replaces it itself).
                for _ in range(2000):  # 10 s at most
                    if not waiting(camera.home, name):
                        break
                    await asyncio.sleep(0.005)
                else:
                    raise AssertionError(f"{name!r} was never taken from the inbox")
                link = (
                    make_link(viewer.identity, "view-request", camera.node_id, sdp=SDP)
                    if kind == "link"
                    else None
                )
                data = link.text.encode() if link else (b"" if kind == "empty" else uuid.uuid4().bytes)
                if is_unfinished(name):
                    if name in left_alone:
                        continue
                    left_alone[name] = data
                else:
                    dropped.append((name, data))
                    last_link[name] = link
                writers.append(asyncio.ensure_future(write(camera.home, name, data, how)))
                await asyncio.sleep(0)
            if i < len(batches) - 1 and any(how == "slow" for _, _, how in batch):
                await asyncio.sleep(PAUSE / 2)  # a restart while a slow writer is at work
                await step(f"batch {i}: watcher.stop() while writers write", watcher.stop())
                await step(f"batch {i}: the writers", asyncio.gather(*writers))
                continue
            await step(f"batch {i}: the writers", asyncio.gather(*writers))
            await step(f"batch {i}: watcher.drained()", watcher.drained(STEP_TIMEOUT / 2))
            await step(f"batch {i}: watcher.stop()", watcher.stop())
        watcher = FileDropWatcher(camera.home, responder, **TIMINGS)  # the last one finishes all
        await step("last: watcher.start()", watcher.start())
        try:
            await step("last: watcher.drained()", watcher.drained(STEP_TIMEOUT / 2))
        finally:
            await step("last: watcher.stop()", watcher.stop())
    finally:
        responder.close()
    home = camera.home
    found: list[tuple[str, str, bytes]] = [
        (folder, n, (getattr(home, folder) / n).read_bytes())
        for folder in ("done", "rejected")
        for n in os.listdir(getattr(home, folder))
    ]
    # every dropped file exactly once, content intact, under its name or its safe rename
    assert Counter(data for _, data in dropped) == Counter(data for _, _, data in found)
    for folder, n, data in found:
        assert any(derived(orig, n) for orig, d in dropped if d == data), (folder, n)
    assert not os.listdir(home.work)
    assert sorted(os.listdir(home.reasons)) == sorted(os.listdir(home.rejected))
    # the reply to the last link dropped under a name that went to done/ is outbox/NAME
    opener = LinkOpener(viewer.identity, viewer.peers)
    for name, link in last_link.items():
        if link is not None and any(d == link.text.encode() for f, _, d in found if f == "done"):
            opened = opener.open((home.outbox / name).read_text(), expect_offer=link.digest)
            assert opened.claims.kind == "answer"
    assert set(responder.handled.values()) <= {1}  # no link handled twice
    # names the node never takes are left as they were
    for name, data in left_alone.items():
        assert (home.inbox / name).read_bytes() == data
    assert not [n for n in os.listdir(home.outbox) if n.startswith(".")]  # no temporary left


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batches=st.lists(drops, min_size=1, max_size=3))
def test_every_dropped_file_ends_in_done_or_rejected_exactly_once(batches):
    with tempfile.TemporaryDirectory(prefix="mnode-prop-") as root:
        asyncio.run(scenario(Path(root), batches))

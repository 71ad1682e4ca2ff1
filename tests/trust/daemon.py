"""A whole daemon (node.service.Service) for the trust tests: static overlay on
loopback (camera 127.0.0.1, viewer 127.0.0.2), a test pattern and a tone as media,
the file drop on; and real view-request links whose offers the camera can answer (a
call is really set up when the camera takes one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from node.config import Config, render_default_config
from node.ice import IcePolicy, OverlayPeerConnection
from node.links import Link, make_link
from node.service import Service

ADDRESSES = {"camera": "127.0.0.1", "viewer": "127.0.0.2", "stranger": "127.0.0.3"}


def configure(node, *, media: bool = True, mqtt=None, group: str = "", **filedrop) -> None:
    config = Config()
    config.node.name = node.name
    config.overlay.provider = "static"
    config.overlay.address = ADDRESSES.get(node.name, "127.0.0.9")
    config.overlay.cidr = "127.0.0.0/8"
    config.filedrop.group = group
    for key, value in filedrop.items():
        setattr(config.filedrop, key, value)
    if mqtt is not None:
        config.mqtt = mqtt
    if media:
        config.media.video, config.media.audio = "testsrc", "tone"
    node.home.config_file.write_text(render_default_config(config))


def pair(make_node, allow: str = "view"):
    camera, viewer = make_node("camera"), make_node("viewer")
    camera.trust(viewer, allow, address=ADDRESSES["viewer"])
    viewer.trust(camera, allow, address=ADDRESSES["camera"])
    configure(camera)
    return camera, viewer


@asynccontextmanager
async def running(node) -> AsyncIterator[Service]:
    service = Service(node.home)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def real_view_request(viewer, camera, **kw) -> Link:
    """A view-request carrying a real recvonly offer from the viewer's overlay address."""
    policy = IcePolicy.make([ADDRESSES["viewer"]], [ADDRESSES["camera"]], label="camera")
    pc = OverlayPeerConnection(policy)
    try:
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
    finally:
        await pc.close()
    return make_link(viewer.identity, "view-request", camera.node_id, sdp=sdp, addr=ADDRESSES["viewer"], **kw)


async def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)

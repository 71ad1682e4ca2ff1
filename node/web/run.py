"""`media-node web` as a process: start the server, print the URL, serve until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from ..config import Config
from ..errors import NodeError
from ..home import Home
from .access import load_token
from .server import WebNode

log = logging.getLogger(__name__)


async def run_web(home: Home, config: Config, *, port: int, via: str | None, new_token: bool) -> None:
    if not home.exists():
        raise NodeError(f"{home.path} has no identity: run `media-node init --home {home.path}` first")
    token = load_token(home.path, rotate=new_token)
    node = WebNode(home, config, token=token, port=port, via=via)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        url = await node.start()
        print(f"media-node web: open {url}", file=sys.stderr)
        print(url, flush=True)
        await stop.wait()
    finally:
        await node.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


__all__ = ["run_web"]

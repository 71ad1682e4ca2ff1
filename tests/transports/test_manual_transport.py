"""ManualTransport reads replies with one thread for all requests: a request that timed
out must not leave a blocked reader that steals the next request's reply."""

from __future__ import annotations

import io
import os
import threading

import pytest

from node.transports import TransportError
from node.transports.manual import ManualTransport


class _Peer:
    name = "camera"


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "manual-stdin"]


async def test_a_reply_after_a_timeout_reaches_the_next_request_with_a_single_reader():
    read_fd, write_fd = os.pipe()
    inp = os.fdopen(read_fd, "r")
    try:
        transport = ManualTransport(out=io.StringIO(), err=io.StringIO(), inp=inp)
        with pytest.raises(TransportError) as e:
            await transport.request(_Peer(), "mnode:first", timeout=0.2)
        assert e.value.args and "timeout" in str(e.value)
        before = len(_readers())
        os.write(write_fd, b"mnode:the-reply\n")
        assert await transport.request(_Peer(), "mnode:second", timeout=20) == "mnode:the-reply"
        assert len(_readers()) == before  # no second, competing reader was started
    finally:
        os.close(write_fd)  # EOF: the reader thread ends
        for t in _readers():
            t.join(5)
        inp.close()
    assert _readers() == []


async def test_closed_stdin_is_a_clear_error_for_every_request():
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    inp = os.fdopen(read_fd, "r")
    try:
        transport = ManualTransport(out=io.StringIO(), err=io.StringIO(), inp=inp)
        for _ in range(2):
            with pytest.raises(TransportError, match="stdin closed"):
                await transport.request(_Peer(), "mnode:x", timeout=20)
    finally:
        for t in _readers():
            t.join(5)
        inp.close()

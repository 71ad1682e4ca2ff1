"""node/systemd.py against a real unix datagram socket standing in for systemd's."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from node.systemd import Notifier


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield path, sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_watchdog_stopping_reach_the_socket(notify_socket):
    path, sock = notify_socket
    n = Notifier({"NOTIFY_SOCKET": str(path)})
    assert n.enabled
    assert n.ready("serving 0 calls")
    assert received(sock) == ["READY=1", "STATUS=serving 0 calls"]
    assert n.watchdog()
    assert received(sock) == ["WATCHDOG=1"]
    assert n.stopping()
    assert received(sock) == ["STOPPING=1"]


def test_abstract_socket_name(notify_socket):
    name = f"media-node-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(sock) == ["READY=1"]
    finally:
        sock.close()


def test_outside_systemd_everything_is_a_noop():
    n = Notifier({})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping()
    assert n.watchdog_interval is None


def test_a_vanished_socket_does_not_raise(tmp_path):
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).ready() is False


def test_watchdog_interval_respects_pid():
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval == 30.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 30.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval is None


async def test_watchdog_task_pings_while_healthy_and_stops_when_not(notify_socket):
    path, sock = notify_socket
    sock.setblocking(False)
    healthy = True
    n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "100000"})  # ping every 50 ms
    task = asyncio.create_task(n.run_watchdog(lambda: healthy))
    loop = asyncio.get_running_loop()
    try:
        first = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        second = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        assert first == second == b"WATCHDOG=1"
        healthy = False
        await asyncio.sleep(0.2)  # let any ping already in flight arrive
        while True:
            try:
                sock.recv(4096)
            except BlockingIOError:
                break
        # unhealthy: no ping within several periods
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(loop.sock_recv(sock, 4096), 0.5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_watchdog_task_returns_without_watchdog(notify_socket):
    path, _ = notify_socket
    await asyncio.wait_for(Notifier({"NOTIFY_SOCKET": str(path)}).run_watchdog(), 5)

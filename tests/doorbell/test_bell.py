"""What a ring does: one `ring` event, the on-ring actions, calls to the configured peers
that are allowed `call` (others are named and skipped), and nothing more inside hold_off."""

from __future__ import annotations

import asyncio

from node.config import DoorbellSection
from node.doorbell import Doorbell, doorbell_line
from node.doorbell.button import GpioError


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


async def test_a_ring_calls_the_allowed_peers_once_per_hold_off(make_node):
    door, phone, tablet, watcher = (make_node(n) for n in ("door", "phone", "tablet", "watcher"))
    door.trust(phone, "view,call")
    door.trust(tablet, "call")
    door.trust(watcher, "view")
    config = DoorbellSection(call=["phone", "watcher", "nobody", "tablet"], hold_off=3.0)
    called, events, snaps = [], [], []

    async def call(peer):
        called.append(peer.name)

    async def snapshot():
        snaps.append(1)

    clock = Clock()
    bell = Doorbell(config, door.peers, call=call, clock=clock)
    bell.on_event(events.append)
    bell.on_ring(snapshot)
    ring = bell.ring("button")
    assert ring.rang and ring.calling == ("phone", "tablet")
    assert ring.skipped == {
        "watcher": "not allowed 'call' in the allowlist",
        "nobody": "not a peer in this node's allowlist",
    }
    await asyncio.sleep(0.05)
    assert sorted(called) == ["phone", "tablet"] and snaps == [1]
    assert [(e["event"], e["source"], e["calling"]) for e in events] == [
        ("ring", "button", ["phone", "tablet"])
    ]
    clock.now += 2.0
    again = bell.ring("mqtt")
    assert not again.rang and again.held_off == 2.0
    clock.now += 1.5
    assert bell.ring("mqtt").rang
    await asyncio.sleep(0.05)
    assert len(called) == 4 and len(events) == 2 and bell.rings == 2
    await bell.close()


async def test_a_failing_call_or_action_does_not_stop_the_ring(make_node):
    door, phone = make_node("door"), make_node("phone")
    door.trust(phone, "call")

    async def call(peer):
        raise RuntimeError("overlay down")

    def broken():
        raise ValueError("bug")

    bell = Doorbell(DoorbellSection(call=["phone"]), door.peers, call=call)
    bell.on_ring(broken)
    events = []
    bell.on_event(events.append)
    assert bell.ring("button").rang
    await asyncio.sleep(0.05)
    assert events and events[0]["event"] == "ring"
    await bell.close()


async def test_without_a_transport_nobody_is_called_and_the_log_says_why(make_node):
    door, phone = make_node("door"), make_node("phone")
    door.trust(phone, "call")
    ring = Doorbell(DoorbellSection(call=["phone"]), door.peers, call=None).ring("mqtt")
    assert ring.rang and ring.calling == () and "MQTT is off" in ring.skipped["phone"]


def test_auto_takes_the_board_profiles_pin():
    assert doorbell_line(DoorbellSection(gpio="auto"), "GPIO17") == "GPIO17"
    assert doorbell_line(DoorbellSection(gpio="GPIO27"), "GPIO17") == "GPIO27"
    assert doorbell_line(DoorbellSection(), "GPIO17") == ""
    try:
        doorbell_line(DoorbellSection(gpio="auto"), "")
    except GpioError as e:
        assert "names no doorbell pin" in str(e)
    else:
        raise AssertionError("auto without a profile pin must be an error")

"""1,000 malformed, forged, tampered, replayed, expired, oversized ... links, as MQTT
messages and as files: each is refused with its reason, a valid request among them is
still answered, and the transport keeps serving afterwards."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter

import pytest

from node.transports.filedrop import FileDropClient, FileDropWatcher
from node.transports.mqtt import MqttClient, MqttTransport

from .abuse import bad_links
from .broker import Broker
from .helpers import Responder, check_answer, view_request
from .test_mqtt import Watcher, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def nodes(make_node):
    viewer, camera, stranger, limited = (make_node(n) for n in ("viewer", "camera", "stranger", "limited"))
    camera.trust(viewer, "view")
    camera.trust(limited, "call")
    viewer.trust(camera, "view")
    return viewer, camera, stranger, limited


async def test_1000_bad_messages_each_get_a_reason_and_a_valid_one_is_answered(tmp_path, nodes):
    viewer, camera, stranger, limited = nodes
    broker = Broker(tmp_path / "broker", nodes=nodes, controllers=["controller"])
    broker.start()
    responder = Responder(camera)
    spam = Watcher(broker, viewer.node_id)
    ctl = Watcher(broker, "controller")
    try:
        assert await spam.connected() and await ctl.connected()
        replies = f"media-node/{viewer.node_id}/reply/abuse"
        events = f"media-node/{camera.node_id}/events"
        spam.c.subscribe(replies + "/#", qos=1)
        ctl.c.subscribe(events, qos=1)
        await wait_for(lambda: len(spam.suback) == 1 and len(ctl.suback) == 1, what="SUBACKs")
        async with (
            MqttTransport(
                broker.config_for(camera.node_id), camera.identity, responder, peers=camera.peers
            ) as transport,
            MqttClient(broker.config_for(viewer.node_id), viewer.identity) as client,
        ):
            used = view_request(viewer, camera)
            check_answer(viewer, used, await client.request(camera.node_id, used.text, timeout=20))
            cases = bad_links(viewer, camera, stranger, limited, used.text)
            inbox = f"media-node/{camera.node_id}/inbox"
            valid = view_request(viewer, camera)
            answer = None
            for i, (payload, _) in enumerate(cases):
                spam.publish(inbox, payload, response_topic=f"{replies}/{i}", corr=i.to_bytes(4, "big"))
                if i == len(cases) // 2:
                    answer = asyncio.ensure_future(client.request(camera.node_id, valid.text, timeout=120))
                if i % 100 == 0:
                    await asyncio.sleep(0)
            check_answer(viewer, valid, await answer)
            await wait_for(
                lambda: len(spam.on(replies)) == len(cases), timeout=120, what="1000 error replies"
            )
            got = {
                int.from_bytes(m.properties.CorrelationData, "big"): json.loads(m.payload)
                for m in spam.on(replies)
            }
            assert len(got) == len(cases)
            wrong = {
                i: (got[i], expected)
                for i, (_, expected) in enumerate(cases)
                if got[i].get("ok") is not False or got[i].get("reason") != expected
            }
            assert not wrong, list(wrong.items())[:5]
            assert all(r["message"] for r in got.values())
            assert set(Counter(e for _, e in cases)) >= {
                "malformed",
                "bad-signature",
                "tampered",
                "oversized",
                "replayed",
                "wrong-audience",
                "unknown-sender",
                "expired",
                "no-permission",
            }
            await wait_for(
                lambda: len(ctl.on(events)) == len(cases), timeout=60, what="1000 rejection events"
            )
            assert transport.counts["rejected"] == len(cases)
            # still serving
            after = view_request(viewer, camera)
            check_answer(viewer, after, await client.request(camera.node_id, after.text, timeout=20))
            assert all(not t.done() for t in transport._tasks)
    finally:
        spam.close()
        ctl.close()
        responder.close()
        broker.stop()


async def test_1000_bad_files_each_get_a_reason_and_a_valid_one_is_answered(nodes):
    viewer, camera, stranger, limited = nodes
    responder = Responder(camera)
    home = camera.home
    async with FileDropWatcher(home, responder, settle=0.05, empty_grace=0.2) as watcher:
        client = FileDropClient(home.path)
        used = view_request(viewer, camera)
        check_answer(viewer, used, await client.request(None, used.text, timeout=20))
        cases = bad_links(viewer, camera, stranger, limited, used.text)
        extra = {"a-directory": "not-a-file", "a-symlink": "not-a-file", "a-fifo": "not-a-file"}
        valid = view_request(viewer, camera)
        answer = None
        for i, (payload, _) in enumerate(cases):
            path = home.inbox / f"bad-{i:04d}"
            if i % 2:
                path.write_bytes(payload)
            else:
                tmp = home.inbox / f".bad-{i:04d}.tmp"
                tmp.write_bytes(payload)
                os.rename(tmp, path)
            if i == len(cases) // 2:
                answer = asyncio.ensure_future(client.request(None, valid.text, timeout=120))
            if i % 50 == 0:
                await asyncio.sleep(0)
        (home.inbox / "a-directory").mkdir()
        (home.inbox / "a-symlink").symlink_to("/etc/hostname")
        os.mkfifo(home.inbox / "a-fifo")
        check_answer(viewer, valid, await answer)
        total = len(cases) + len(extra) + 2
        await wait_for(
            lambda: watcher.counts["done"] + watcher.counts["rejected"] == total,
            timeout=120,
            what="every file handled",
        )
        await watcher.drained(30)
        assert watcher.counts == {"done": 2, "rejected": len(cases) + len(extra)}
        wrong = {}
        for i, (payload, expected) in enumerate(cases):
            name = f"bad-{i:04d}"
            info = json.loads((home.rejected / f"{name}.reason.json").read_text())
            if info["reason"] != expected or not info["message"]:
                wrong[name] = (info, expected)
            assert (home.rejected / name).read_bytes() == payload  # kept as it came, for a person to see
        for name, expected in extra.items():
            assert json.loads((home.rejected / f"{name}.reason.json").read_text())["reason"] == expected
        assert not wrong, list(wrong.items())[:5]
        assert not list(home.inbox.iterdir()) and not list(home.work.iterdir())
        after = view_request(viewer, camera)
        check_answer(viewer, after, await client.request(None, after.text, timeout=20))
        assert all(not t.done() for t in watcher._workers)
    responder.close()

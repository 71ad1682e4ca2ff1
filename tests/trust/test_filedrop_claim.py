"""A name queued twice (the rescan takes a renamed-in file, then its late "moved" event
queues it again) must not cost that file its reply: the second claim finds the inbox
empty and gives up before it clears outbox/NAME as an earlier file's unread reply."""

from __future__ import annotations

from node.home import Home
from node.transports.filedrop.handling import FileHandling


async def _no_reply(text: str) -> str | None:
    return None


def test_a_second_claim_of_a_taken_name_keeps_its_reply(tmp_path):
    home = Home(tmp_path / "node")
    home.create("camera")
    handling = FileHandling(home, _no_reply, handle_timeout=5)
    (home.inbox / "order").write_text("link\n")
    assert handling.claim("order")
    # handled: the reply is written and the file moved on to done/
    (home.outbox / "order").write_text("answer\n")
    (home.work / "order").rename(home.done / "order")
    assert not handling.claim("order")  # the late event: nothing in the inbox
    assert (home.outbox / "order").read_text() == "answer\n"


def test_a_new_file_of_the_same_name_clears_the_earlier_unread_reply(tmp_path):
    home = Home(tmp_path / "node")
    home.create("camera")
    handling = FileHandling(home, _no_reply, handle_timeout=5)
    (home.outbox / "order").write_text("old answer\n")
    (home.inbox / "order").write_text("link\n")
    assert handling.claim("order")
    assert not (home.outbox / "order").exists()

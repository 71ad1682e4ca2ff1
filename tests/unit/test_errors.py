"""The error tree (node/errors.py): one reason and one fixed public text per error,
never the exception's own text off the device, and the reason table in
docs/operations.md generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.calls.errors import CallError
from node.errors import NodeError, PrivacyError, error_info, families, public_error, render_reason_table
from node.ice import MalformedSdpError
from node.links.errors import LinkError
from node.overlay import OverlayError
from node.transports import TransportError

SECRET = "10.1.2.3 /home/pi/secret"


def test_operations_reason_table_is_current():
    doc = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    block = doc.split("<!-- reasons:begin -->\n", 1)[1].split("<!-- reasons:end -->", 1)[0]
    assert block == render_reason_table(), "run: python -m node.errors, and paste it between the markers"


def test_every_family_is_a_node_error_with_its_own_table():
    for family in families():
        assert issubclass(family, NodeError) and family.REASONS
        assert all(isinstance(t, str) and t for t in family.REASONS.values())


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (LinkError("replayed", SECRET), "replayed"),
        (TransportError("not-a-file", SECRET), "not-a-file"),
        (TransportError("replayed", SECRET), "replayed"),  # a peer's link refusal, relayed
        (CallError("busy", SECRET), "busy"),
        (CallError("no-such-code", SECRET), "unavailable"),  # a peer's code this node does not know
        (PrivacyError(SECRET), "privacy"),
        (MalformedSdpError(SECRET), "unavailable"),
        (OverlayError(SECRET), "unavailable"),
        (NodeError(SECRET), "unavailable"),
        (RuntimeError(SECRET), "handler-error"),
    ],
)
def test_the_public_form_is_a_fixed_text_per_reason(error, reason):
    info = public_error(error)
    assert info["reason"] == reason
    assert "10.1.2.3" not in info["message"] and "secret" not in info["message"]
    if isinstance(error, NodeError):
        assert info["message"] == error.public and SECRET in error.detail  # the detail is kept, locally


def test_texts_people_read_keep_their_shape():
    assert str(LinkError("expired", "expired 5 s ago")) == "expired: expired 5 s ago"
    assert str(CallError("busy", "full")) == "busy: full" and CallError("busy", "full").code == "busy"
    assert str(TransportError("timeout")) == "timeout: no reply arrived in time"
    assert str(OverlayError("down")) == "down"
    assert error_info(LinkError("expired", "expired 5 s ago")) == {
        "reason": "expired",
        "message": "expired 5 s ago",
    }
    assert error_info(ValueError("x"))["reason"] == "handler-error"

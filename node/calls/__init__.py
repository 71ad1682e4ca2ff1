"""Calls: the RTCPeerConnection life cycle behind every signed handshake.

- `manager`: CallManager, all calls of one node (limits, shared handshake steps);
- `serve`, `trigger`: the daemon side, a signed link in and a signed reply out;
- `offer`: this node calls, views or rings several peers;
- `answer`, `talk`: what an answer says (codecs, BUNDLE), talkback;
- `call`: Call, one peer connection watched until it ends, and its stats;
- `errors`: CallError, why a call could not be made;
- `media`: the Publisher / Receiver seams a call uses;
- `directions`, `events`: m-line directions, the event stream."""

from __future__ import annotations

from .call import Call, CallStats
from .errors import CallError
from .manager import CallManager
from .media import Attachment, Publisher, Receiver, ReceiverFactory

__all__ = [
    "Attachment",
    "Call",
    "CallError",
    "CallManager",
    "CallStats",
    "Publisher",
    "Receiver",
    "ReceiverFactory",
]

"""Every private aiortc / aioice / pylibsrtp name this package relies on, in one list
(internals.toml, beside this file: package data), and the check that fails loudly
(naming what moved) when an upgrade changes any of them.

aiortc, aioice and pylibsrtp are pinned to exact versions (pyproject.toml). The hooks
themselves live beside what they serve: node/media/hooks.py (keyframe and bitrate
feedback from the sender, encoded frames out of the receiver, H.264 preferences),
node/media/rtploop.py (payloads packetized once for every viewer, each packet protected
and sent on the nominated pair in plain calls), node/lazyimports.py (aioice's mDNS
module loaded only on use) and node/ice/confine.py (ICE confined to the overlay). Each
checks its part before it is used: media when a publisher or receiver is built, ICE
when a node's IceApi is built. The tests (tests/media/test_hooks.py,
tests/media/test_shared_payloads.py, tests/ice/) also run every hook for real."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Literal, cast, get_args

AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"
PYLIBSRTP_VERSION = "1.0.0"

Part = Literal["media", "ice"]
Kind = Literal["class", "instance", "set", "module"]


@dataclass(frozen=True)
class Internal:
    part: Part
    where: str  # "module:Class" or "module"
    name: str
    # class: an attribute of the class; instance: set on a fresh instance (or, where
    # there is no cheap one, assigned in __init__); set: assigned by one of the class's
    # methods (not on a fresh instance); module: a module global.
    kind: Kind
    why: str

    def present(self) -> bool:
        module_name, _, class_name = self.where.partition(":")
        module = importlib.import_module(module_name)
        if self.kind == "module":
            return hasattr(module, self.name)
        owner = getattr(module, class_name, None)
        if owner is None:
            return False
        if self.kind == "class":
            return hasattr(owner, self.name)
        if self.kind == "set":
            return _assigned_in(owner, self.name, whole_class=True)
        probe = _INSTANCES.get(self.where)
        if probe is not None:
            return hasattr(probe(), self.name)
        # no cheap instance: the attribute must still be assigned in __init__
        mangled = f"_{class_name}__"
        plain = "__" + self.name[len(mangled) :] if self.name.startswith(mangled) else self.name
        return _assigned_in(owner, plain)


@functools.cache
def _assigned_in(owner: type, attribute: str, whole_class: bool = False) -> bool:
    source = inspect.getsource(owner if whole_class else owner.__init__)  # type: ignore[misc]
    return re.search(rf"self\.{re.escape(attribute)}\s*[:=]", source) is not None


def _ice_connection() -> object:
    import aioice.ice

    return aioice.ice.Connection(ice_controlling=True)


def _jitter_buffer() -> object:
    from aiortc.jitterbuffer import JitterBuffer

    return JitterBuffer(capacity=16, is_video=True)


def _srtp_session() -> object:
    import pylibsrtp

    return pylibsrtp.Session()


_INSTANCES: dict[str, Callable[[], object]] = {
    "aioice.ice:Connection": _ice_connection,
    "aiortc.jitterbuffer:JitterBuffer": _jitter_buffer,
    "pylibsrtp:Session": _srtp_session,
}


def _load() -> tuple[Internal, ...]:
    """The list in internals.toml, beside this file: [PART."where".KIND] NAME = "why"."""
    table = tomllib.loads(resources.files(__package__).joinpath("internals.toml").read_text())
    found = []
    for part, owners in table.items():
        for where, kinds in owners.items():
            for kind, names in kinds.items():
                if part not in get_args(Part) or kind not in get_args(Kind):
                    raise ValueError(f"internals.toml: unknown part or kind [{part}.{where!r}.{kind}]")
                found += [
                    Internal(cast(Part, part), where, n, cast(Kind, kind), why) for n, why in names.items()
                ]
    return tuple(found)


INTERNALS: tuple[Internal, ...] = _load()


def _versions(part: Part) -> list[str]:
    import aioice
    import aiortc

    out = []
    if aiortc.__version__ != AIORTC_VERSION:
        out.append(f"aiortc is {aiortc.__version__}, hooks need {AIORTC_VERSION}")
    if getattr(aioice, "__version__", "?") != AIOICE_VERSION:
        out.append(f"aioice is {getattr(aioice, '__version__', '?')}, hooks need {AIOICE_VERSION}")
    if part == "media":
        srtp = importlib.metadata.version("pylibsrtp")
        if srtp != PYLIBSRTP_VERSION:
            out.append(f"pylibsrtp is {srtp}, the RTP loop needs {PYLIBSRTP_VERSION}")
    return out


def problems(part: Part) -> list[str]:
    """What changed upstream for `part`'s hooks (empty when everything is as pinned)."""
    found = _versions(part)
    for internal in INTERNALS:
        if internal.part != part:
            continue
        try:
            ok = internal.present()
        except Exception as e:  # an import or a constructor that changed is a change too
            ok = False
            found.append(f"{internal.where}.{internal.name} cannot be checked ({type(e).__name__})")
            continue
        if not ok:
            owner = internal.where.replace(":", ".")
            found.append(f"{owner}.{internal.name} is gone ({internal.why})")
    return found


@functools.cache
def ice_problems() -> tuple[str, ...]:
    """problems("ice"), once per process (the ICE API checks it for every node)."""
    return tuple(problems("ice"))


@functools.cache
def media_problems() -> tuple[str, ...]:
    """problems("media"), once per process (every publisher, receiver and web relay
    connection checks it; the versions and classes cannot change while it runs)."""
    return tuple(problems("media"))


__all__ = [
    "AIOICE_VERSION",
    "AIORTC_VERSION",
    "INTERNALS",
    "PYLIBSRTP_VERSION",
    "Internal",
    "ice_problems",
    "media_problems",
    "problems",
]

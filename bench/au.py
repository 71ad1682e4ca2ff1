"""Access-unit identity across the wire: a short hash of the AU's slice NAL units.

The sender hands over Annex-B with 3- or 4-byte start codes (and SPS/PPS/SEI); the
receiver's depacketizer rebuilds it with 4-byte start codes. Hashing only the VCL NAL
units (types 1 and 5), without start codes or trailing zero bytes, gives the same key on
both sides, so a probe on each side can correlate the same AU by content."""

from __future__ import annotations

import hashlib

VCL_TYPES = (1, 5)


def nal_units(data: bytes) -> list[bytes]:
    out = []
    for part in data.split(b"\x00\x00\x01"):
        part = part.rstrip(b"\x00")
        if part:
            out.append(part)
    return out


def au_key(data: bytes) -> str | None:
    """Hex key of the AU's slices, or None when it has no slice (e.g. SPS/PPS only)."""
    h = hashlib.blake2b(digest_size=8)
    found = False
    for nal in nal_units(data):
        if nal[0] & 0x1F in VCL_TYPES:
            h.update(nal)
            found = True
    return h.hexdigest() if found else None


def is_idr(data: bytes) -> bool:
    return any(n[0] & 0x1F == 5 for n in nal_units(data))


class AuLog:
    """Append-only `key monotonic_ns` lines, written by a probe inside a process we
    measure; buffered so the probe costs little, flushed at exit."""

    def __init__(self, path: str):
        self._f = open(path, "a", buffering=1 << 16)

    def add(self, data: bytes, t_ns: int) -> None:
        k = au_key(data)
        if k:
            self._f.write(f"{k} {t_ns}\n")

    def close(self) -> None:
        self._f.close()


def read_log(path) -> dict[str, int]:
    """key -> first time seen (ns)."""
    seen: dict[str, int] = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] not in seen:
                    seen[parts[0]] = int(parts[1])
    except FileNotFoundError:
        pass
    return seen

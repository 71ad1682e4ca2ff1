"""H.264 Annex-B access units: NAL splitting, a canonical form, SPS parsing and the
SPS/PPS cache that puts parameter sets before every IDR.

Canonical form: every NAL unit preceded by a 4-byte start code. aiortc's packetizer
strips start codes and its depacketizer writes 4-byte ones back, so an access unit in
canonical form comes out of a viewer's receiver byte-identical to what the source gave."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

START_CODE = b"\x00\x00\x00\x01"

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

PROFILE_NAMES = {
    66: "baseline",
    77: "main",
    88: "extended",
    100: "high",
    110: "high10",
    122: "high422",
    244: "high444",
}


def split_nals(data: bytes) -> Iterator[bytes]:
    """NAL units of an Annex-B buffer (3- or 4-byte start codes), without start codes.

    Same boundaries as aiortc's H264Encoder._split_bitstream, so canonical AUs survive
    packetization byte for byte."""
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        start = i + 3
        i = data.find(b"\x00\x00\x01", start)
        if i == -1:
            yield data[start:]
            return
        yield data[start : i - 1] if data[i - 1] == 0 else data[start:i]


def join_nals(nals: list[bytes]) -> bytes:
    return b"".join(START_CODE + n for n in nals if n)


def normalize(data: bytes) -> bytes:
    """Canonical form: 4-byte start codes, empty NAL units dropped."""
    return join_nals(list(split_nals(data)))


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else 0


def nal_types(data: bytes) -> list[int]:
    """The type of each NAL unit, as split_nals would see them, without copying any:
    this runs on every access unit a source emits."""
    types = []
    i = data.find(b"\x00\x00\x01")
    end = len(data)
    while i != -1:
        start = i + 3
        i = data.find(b"\x00\x00\x01", start)
        stop = end if i == -1 else (i - 1 if data[i - 1] == 0 else i)
        types.append(data[start] & 0x1F if stop > start else 0)
    return types


def is_idr(data: bytes) -> bool:
    return NAL_IDR in nal_types(data)


def is_annexb(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01") or data.startswith(START_CODE)


class _Bits:
    """Exp-Golomb reader over an RBSP (emulation-prevention bytes removed)."""

    def __init__(self, rbsp: bytes):
        self.data = rbsp
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3] if (self.pos >> 3) < len(self.data) else 0
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("malformed Exp-Golomb code in SPS")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _rbsp(nal: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for b in nal:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


@dataclass(frozen=True)
class SpsInfo:
    profile_idc: int
    constraint_flags: int  # the byte after profile_idc (constraint_set0..5 flags)
    level_idc: int
    width: int
    height: int

    @property
    def profile(self) -> str:
        if self.profile_idc == 66 and self.constraint_flags & 0x40:
            return "constrained-baseline"
        return PROFILE_NAMES.get(self.profile_idc, f"profile-{self.profile_idc}")

    @property
    def level(self) -> str:
        return f"{self.level_idc // 10}.{self.level_idc % 10}"

    @property
    def profile_level_id(self) -> str:
        return f"{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + bits.se() + 256) % 256
        last = nxt if nxt != 0 else last


def parse_sps(nal: bytes) -> SpsInfo:
    """Profile, level and picture size from an SPS NAL unit (with its header byte)."""
    if nal_type(nal) != NAL_SPS:
        raise ValueError("not an SPS NAL unit")
    b = _Bits(_rbsp(nal[1:]))
    profile_idc, constraints, level_idc = b.u(8), b.u(8), b.u(8)
    b.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    if profile_idc in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma_format_idc = b.ue()
        if chroma_format_idc == 3:
            b.u(1)
        b.ue()
        b.ue()
        b.u(1)
        if b.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if b.u(1):
                    _skip_scaling_list(b, 16 if i < 6 else 64)
    b.ue()  # log2_max_frame_num_minus4
    poc_type = b.ue()
    if poc_type == 0:
        b.ue()
    elif poc_type == 1:
        b.u(1)
        b.se()
        b.se()
        for _ in range(b.ue()):
            b.se()
    b.ue()  # max_num_ref_frames
    b.u(1)
    width_mbs = b.ue() + 1
    height_map_units = b.ue() + 1
    frame_mbs_only = b.u(1)
    if not frame_mbs_only:
        b.u(1)
    b.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = height_map_units * 16 * (2 - frame_mbs_only)
    if b.u(1):  # frame_cropping_flag
        left, right, top, bottom = b.ue(), b.ue(), b.ue(), b.ue()
        crop_x = 1 if chroma_format_idc in (0, 3) else 2
        crop_y = (1 if chroma_format_idc in (0, 2, 3) else 2) * (2 - frame_mbs_only)
        width -= (left + right) * crop_x
        height -= (top + bottom) * crop_y
    return SpsInfo(profile_idc, constraints, level_idc, width, height)


class _MalformedSps:
    """Counts SPS units that could not be parsed; only the first is logged, since a
    camera that sends one broken SPS usually sends it with every keyframe."""

    count = 0

    @classmethod
    def note(cls, error: Exception) -> None:
        cls.count += 1
        if cls.count == 1:
            log.warning("malformed H.264 SPS ignored (%s); further ones are not logged", error)


def malformed_sps_count() -> int:
    return _MalformedSps.count


def find_sps(data: bytes) -> SpsInfo | None:
    """The first SPS in `data`, or None when there is none or it cannot be parsed:
    a truncated SPS from a camera or a peer is bad input, never a reason to fail."""
    for nal in split_nals(data):
        if nal_type(nal) == NAL_SPS:
            try:
                return parse_sps(nal)
            except (ValueError, IndexError) as e:
                _MalformedSps.note(e)
                return None
    return None


class ParameterSetCache:
    """Remembers the latest SPS/PPS (from extradata or seen in-band) and puts them before
    every IDR that lacks them: encoders such as h264_v4l2m2m emit them once, and RTSP
    cameras often only in the session description, but a late viewer needs them."""

    def __init__(self, extradata: bytes | None = None):
        self.sps: bytes | None = None
        self.pps: bytes | None = None
        if extradata:
            self.learn(extradata)

    def learn(self, data: bytes) -> None:
        for nal in split_nals(data):
            t = nal_type(nal)
            if t == NAL_SPS:
                self.sps = nal
            elif t == NAL_PPS:
                self.pps = nal

    def prepare(self, access_unit: bytes) -> bytes:
        """The access unit in canonical form, with SPS/PPS before its IDR slices if they
        were missing (inserted after any AUD, so the AU stays well-formed)."""
        nals = [n for n in split_nals(access_unit) if n]
        types = [nal_type(n) for n in nals]
        if NAL_SPS in types:
            self.sps = nals[types.index(NAL_SPS)]
        if NAL_PPS in types:
            self.pps = nals[types.index(NAL_PPS)]
        if NAL_IDR in types and (NAL_SPS not in types or NAL_PPS not in types):
            missing = []
            if NAL_SPS not in types and self.sps:
                missing.append(self.sps)
            if NAL_PPS not in types and self.pps:
                missing.append(self.pps)
            at = 1 if types and types[0] == NAL_AUD else 0
            nals[at:at] = missing
        return join_nals(nals)

"""H.264 profile-level-id (RFC 6184 §8.1) and the rule the node answers by.

The node never re-encodes, so the stream's profile and level are the source's own (from
its SPS). An offered H.264 payload type can carry that stream when:

1. its `packetization-mode` is 1 (the node's packetizer sends FU-A/STAP-A; mode 0,
   one NAL unit per packet, cannot carry an IDR larger than a packet);
2. its profile's decoder decodes the source's profile (H.264 Annex A.2):

   | offered decoder        | decodes streams of                                     |
   |------------------------|--------------------------------------------------------|
   | Constrained Baseline   | Constrained Baseline                                   |
   | Baseline               | + Baseline                                             |
   | Extended               | + Baseline, Extended                                   |
   | Main                   | Constrained Baseline, Main                             |
   | Constrained High       | Constrained Baseline, Constrained High                 |
   | High                   | Constrained Baseline, Main, Constrained High, High     |
   | High 10                | + High 10 (and High 10 Intra)                          |
   | High 4:2:2             | + High 4:2:2 (and Intra)                               |
   | High 4:4:4 Predictive  | + High 4:4:4, CAVLC 4:4:4 Intra (every profile above)  |

   (An "Intra" profile's decoder decodes only intra streams of its own family.)
   A payload type without `profile-level-id` means Baseline (RFC 6184).
3. Levels never refuse a call: the answer states the source's real level. With
   `level-asymmetry-allowed=1` (what browsers and aiortc offer) that is what RFC 6184
   allows; without it the node still cannot lower the level of bits it does not encode,
   so the answer says the truth and the client's decoder decides (every decoder
   measured decodes above the level it offers; docs/interop.md).

The first offered payload type that can carry the stream wins (the offerer's
preference order); the answer keeps that payload type and states the source's
profile-level-id. No covering payload type: the offer is refused, naming the source's
profile and what was offered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# (profile_idc, family) for the flag-independent cases; the rest is decided in family().
_SIMPLE = {100: "high", 110: "high10", 122: "high422", 244: "high444", 44: "cavlc444-intra"}

_NAMES = {
    "constrained-baseline": "Constrained Baseline",
    "baseline": "Baseline",
    "extended": "Extended",
    "main": "Main",
    "constrained-high": "Constrained High",
    "high": "High",
    "high10": "High 10",
    "high422": "High 4:2:2",
    "high444": "High 4:4:4 Predictive",
    "high10-intra": "High 10 Intra",
    "high422-intra": "High 4:2:2 Intra",
    "high444-intra": "High 4:4:4 Intra",
    "cavlc444-intra": "CAVLC 4:4:4 Intra",
}

_HIGH = {"constrained-baseline", "main", "constrained-high", "high"}
_HIGH10 = _HIGH | {"high10", "high10-intra"}
_HIGH422 = _HIGH10 | {"high422", "high422-intra"}
DECODES: dict[str, frozenset[str]] = {
    "constrained-baseline": frozenset({"constrained-baseline"}),
    "baseline": frozenset({"constrained-baseline", "baseline"}),
    "extended": frozenset({"constrained-baseline", "baseline", "extended"}),
    "main": frozenset({"constrained-baseline", "main"}),
    "constrained-high": frozenset({"constrained-baseline", "constrained-high"}),
    "high": frozenset(_HIGH),
    "high10": frozenset(_HIGH10),
    "high422": frozenset(_HIGH422),
    "high444": frozenset(_HIGH422 | {"high444", "high444-intra", "cavlc444-intra"}),
    "high10-intra": frozenset({"high10-intra"}),
    "high422-intra": frozenset({"high10-intra", "high422-intra"}),
    "high444-intra": frozenset({"high10-intra", "high422-intra", "high444-intra", "cavlc444-intra"}),
    "cavlc444-intra": frozenset({"cavlc444-intra"}),
}

# RFC 6184: no profile-level-id means Baseline profile, level 1.0.
DEFAULT_PROFILE_LEVEL_ID = "42000a"


@dataclass(frozen=True)
class H264Profile:
    """One profile-level-id: profile_idc, the constraint-flags byte, level_idc."""

    profile_idc: int
    iop: int  # constraint_set0..5 flags, most significant bit first
    level_idc: int

    @classmethod
    def parse(cls, text: str) -> H264Profile:
        """From 6 hex digits (an fmtp value or an SPS); ValueError otherwise."""
        text = str(text).strip()
        if len(text) != 6:
            raise ValueError(f"profile-level-id {text!r} is not 6 hex digits")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"profile-level-id {text!r} is not 6 hex digits") from None
        return cls(raw[0], raw[1], raw[2])

    def _flag(self, n: int) -> bool:
        return bool(self.iop & (0x80 >> n))

    @property
    def family(self) -> str:
        """The profile this stream conforms to (or this decoder supports)."""
        idc = self.profile_idc
        if idc == 66:
            return "constrained-baseline" if self._flag(1) else "baseline"
        if idc == 77:
            return "constrained-baseline" if self._flag(0) else "main"
        if idc == 88:
            if self._flag(0):
                return "constrained-baseline" if self._flag(1) else "baseline"
            return "extended"
        if idc == 100 and self._flag(4) and self._flag(5):
            return "constrained-high"
        if idc in (110, 122, 244) and self._flag(3):
            return {110: "high10-intra", 122: "high422-intra", 244: "high444-intra"}[idc]
        return _SIMPLE.get(idc, f"profile_idc {idc}")

    @property
    def level(self) -> str:
        """ "1b", "3.1", "4" ... (level_idc 11 with constraint_set3 in the Baseline,
        Main and Extended profiles is level 1b, as is level_idc 9)."""
        legacy_1b = self.level_idc == 11 and self.profile_idc in (66, 77, 88) and self._flag(3)
        if self.level_idc == 9 or legacy_1b:
            return "1b"
        major, minor = divmod(self.level_idc, 10)
        return f"{major}.{minor}" if minor else str(major)

    @property
    def text(self) -> str:
        """The lowercase 6 hex digits, as the node writes them in an answer."""
        return f"{self.profile_idc:02x}{self.iop:02x}{self.level_idc:02x}"

    def describe(self) -> str:
        """For people: "High profile level 4 (640028)"."""
        name = _NAMES.get(self.family, self.family)
        return f"{name} profile level {self.level} ({self.text})"

    def decodes(self, stream: H264Profile) -> bool:
        """True if a decoder of this profile decodes every stream of `stream`'s profile
        (levels aside: see the module docstring)."""
        return stream.family in DECODES.get(self.family, frozenset({self.family}))


def offered_profile(parameters: Mapping[str, object]) -> H264Profile:
    """The profile an fmtp's parameters offer (RFC 6184 default when absent)."""
    return H264Profile.parse(str(parameters.get("profile-level-id", DEFAULT_PROFILE_LEVEL_ID)))


__all__ = ["DECODES", "DEFAULT_PROFILE_LEVEL_ID", "H264Profile", "offered_profile"]

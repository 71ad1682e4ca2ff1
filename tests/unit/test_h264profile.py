"""The H.264 compatibility rule (node.media.h264profile): which offered decoder profile
carries which source, read from profile-level-id the way RFC 6184 defines it."""

from __future__ import annotations

import pytest

from node.media.h264profile import H264Profile, offered_profile

P = H264Profile.parse


@pytest.mark.parametrize(
    ("plid", "family", "level"),
    [
        ("42e01f", "constrained-baseline", "3.1"),
        ("42c01e", "constrained-baseline", "3"),  # x264's constrained baseline
        ("42001f", "baseline", "3.1"),
        ("4d001f", "main", "3.1"),
        ("4d4028", "main", "4"),  # x264's Main (constraint_set1)
        ("4d8028", "constrained-baseline", "4"),  # Main with constraint_set0
        ("58c01f", "constrained-baseline", "3.1"),
        ("58001f", "extended", "3.1"),
        ("640028", "high", "4"),
        ("640c1f", "constrained-high", "3.1"),
        ("6e0028", "high10", "4"),
        ("7a0028", "high422", "4"),
        ("f4001f", "high444", "3.1"),
        ("f41028", "high444-intra", "4"),
        ("42f00b", "constrained-baseline", "1b"),
    ],
)
def test_profile_families_and_levels(plid, family, level):
    assert (P(plid).family, P(plid).level) == (family, level)


@pytest.mark.parametrize(
    ("decoder", "stream", "ok"),
    [
        ("42e01f", "42c01e", True),
        ("42001f", "42e01f", True),  # Baseline decodes Constrained Baseline
        ("42e01f", "42001f", False),  # ... not the reverse (FMO/ASO)
        ("4d001f", "42e01f", True),
        ("4d001f", "42001f", False),
        ("4d001f", "640028", False),
        ("4d001f", "4d4028", True),  # levels never refuse
        ("640c1f", "4d001f", False),  # Constrained High has no B-slices, Main may
        ("64001f", "4d4028", True),
        ("64001f", "640c1f", True),
        ("64001f", "6e0028", False),
        ("f4001f", "640028", True),  # High 4:4:4 Predictive decodes High ...
        ("f4001f", "4d4028", True),  # ... and Main
        ("f4001f", "7a0028", True),
        ("f4001f", "42001f", False),
        ("6e001f", "640028", True),
    ],
)
def test_which_decoder_covers_which_stream(decoder, stream, ok):
    assert P(decoder).decodes(P(stream)) is ok


def test_missing_profile_level_id_is_baseline_per_rfc_6184():
    assert offered_profile({}).family == "baseline"
    assert offered_profile({"profile-level-id": "640032"}).text == "640032"


@pytest.mark.parametrize("bad", ["", "42e01", "42e01fx", "zzzzzz"])
def test_malformed_values_are_refused(bad):
    with pytest.raises(ValueError):
        P(bad)


def test_describe_names_the_profile_for_people():
    assert P("640028").describe() == "High profile level 4 (640028)"

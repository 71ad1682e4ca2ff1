"""The diagnostic readings: SoC temperature from /sys/class/thermal, throttling from
vcgencmd (a stand-in script here: this machine is no Pi) or the rpi_volt hwmon alarm."""

from __future__ import annotations

import os

from node.diagnostics import (
    Diagnostics,
    Throttling,
    describe_throttled,
    parse_throttled,
    soc_temperature,
    video_source_state,
)


def zone(root, n, kind, milli):
    z = root / f"sys/class/thermal/thermal_zone{n}"
    z.mkdir(parents=True)
    (z / "type").write_text(kind + "\n")
    (z / "temp").write_text(f"{milli}\n")


def test_soc_temperature_prefers_the_cpu_zone(tmp_path):
    assert soc_temperature(tmp_path) is None
    zone(tmp_path, 0, "gpu-thermal", 40000)
    assert soc_temperature(tmp_path) == 40.0
    zone(tmp_path, 1, "cpu-thermal", 51234)
    assert soc_temperature(tmp_path) == 51.2


def test_throttled_bits_in_words():
    assert parse_throttled("throttled=0x50005\n") == 0x50005
    assert parse_throttled("error=1") is None
    assert describe_throttled(0) == (False, "none")
    assert describe_throttled(0x50000) == (False, "none (since boot: under-voltage, throttled)")
    assert describe_throttled(0x50005) == (True, "under-voltage, throttled")


def test_vcgencmd_where_it_exists_else_the_hwmon_alarm_else_unknown(tmp_path):
    tool = tmp_path / "vcgencmd"
    tool.write_text('#!/bin/sh\n[ "$1" = get_throttled ] && echo throttled=0x4\n')
    os.chmod(tool, 0o755)
    assert Throttling(str(tool), tmp_path).read() == (True, "throttled")
    assert Throttling(None, tmp_path).read() == (None, "unknown")
    hw = tmp_path / "sys/class/hwmon/hwmon2"
    hw.mkdir(parents=True)
    (hw / "name").write_text("rpi_volt\n")
    (hw / "in0_lcrit_alarm").write_text("1\n")
    assert Throttling(None, tmp_path).read() == (True, "under-voltage")
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\nexit 3\n")
    os.chmod(broken, 0o755)
    assert Throttling(str(broken), tmp_path).read() == (True, "under-voltage"), "falls back"


def test_a_sample_is_numbers_and_words_only(tmp_path):
    t = [10.0]
    d = Diagnostics(
        source_state=lambda: "ok",
        viewers=lambda: 2,
        bitrate=lambda: 1_500_000,
        root=tmp_path,
        throttling=Throttling(None, tmp_path),
        clock=lambda: t[0],
    )
    t[0] = 75.9
    d.refresh()
    h = d.sample().as_dict()
    assert h == {
        "source": "ok",
        "viewers": 2,
        "bitrate": 1_500_000,
        "soc_temperature": None,
        "throttled": None,
        "throttling": "unknown",
        "uptime": 65,
    }


def test_source_state():
    assert video_source_state(None, True, now=5.0) == "unavailable"
    assert video_source_state(4.0, True, now=5.0) == "ok"
    assert video_source_state(4.0, False, now=5.0) == "unavailable"
    assert video_source_state(4.0, True, now=40.0) == "unavailable"

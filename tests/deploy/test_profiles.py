"""Board profiles (firmware_config/ through node/profiles.py) and `media-node doctor`,
matched against fake machine roots built the way the kernel lays them out."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from node.config import Config, parse_config
from node.doctor import Doctor
from node.doctor_media import Picamera2Probe
from node.home import Home
from node.profiles import Machine, ProfileError, load_profile, load_profiles, match_profile, parse_profile

BOARDS = {"pi-zero-2w", "pi3", "pi4", "cm4", "pi5", "generic-uvc", "rtsp-camera"}


def fake_root(
    tmp: Path,
    model: str = "",
    video: dict[str, tuple[str, str]] | None = None,
    capture_cards: int = 0,
    config_txt: str | None = None,
) -> Path:
    """A root with /proc/device-tree/model, /sys/class/video4linux/videoN/{name,device/driver},
    /proc/asound/cardN/pcm0c and /boot/firmware/config.txt, as on a device."""
    root = tmp / "root"
    if model:
        (root / "proc/device-tree").mkdir(parents=True)
        (root / "proc/device-tree/model").write_bytes(model.encode() + b"\0")
    for name, (card, driver) in (video or {}).items():
        d = root / "sys/class/video4linux" / name
        (d / "device").mkdir(parents=True)
        (d / "name").write_text(card + "\n")
        drv = root / "sys/bus/drivers" / driver
        drv.mkdir(parents=True, exist_ok=True)
        os.symlink(drv, d / "device" / "driver")
        (root / "dev").mkdir(exist_ok=True)
        (root / "dev" / name).write_text("")
    for i in range(capture_cards):
        (root / f"proc/asound/card{i}/pcm0c").mkdir(parents=True)
    if config_txt is not None:
        (root / "boot/firmware").mkdir(parents=True)
        (root / "boot/firmware/config.txt").write_text(config_txt)
    root.mkdir(exist_ok=True)
    return root


PI4_DEVICES = {
    "video0": ("unicam", "unicam"),
    "video10": ("bcm2835-codec-decode", "bcm2835-codec"),
    "video11": ("bcm2835-codec-encode", "bcm2835-codec"),
    "video13": ("bcm2835-isp", "bcm2835-isp"),
}


def test_every_board_has_a_complete_profile():
    profiles = load_profiles()
    assert set(profiles) == BOARDS
    for p in profiles.values():
        v = p.video
        assert v.min_bitrate <= v.bitrate <= v.max_bitrate, p.name
        assert v.width <= v.max_width and v.height <= v.max_height and v.fps <= v.max_fps, p.name
        assert v.iperiod > 0 and v.why and v.encoder and p.audio.why, p.name
        assert p.sysctl["net.core.rmem_max"] >= 2 * 1024 * 1024, p.name
        assert bool(p.config_txt) == p.pi, p.name
        if p.pi:
            assert p.config_txt.splitlines()[0] == "[all]", "fragment must not land in a [pi5]/[cm4] section"
    assert not load_profile("pi5").video.hardware, "BCM2712 has no H.264 encoder"
    assert load_profile("pi4").video.encoder_device == "/dev/video11"
    assert load_profile("pi4").video.clamp_bitrate(10**9) == load_profile("pi4").video.max_bitrate


def test_profile_schema_rejects_typos():
    text = (Path(__file__).parents[2] / "firmware_config/pi4.toml").read_text()
    with pytest.raises(ProfileError, match="unknown keys"):
        parse_profile(text.replace("iperiod = 60", "iperiod = 60\nipreiod = 30"), "x")
    with pytest.raises(ProfileError, match="missing keys"):
        parse_profile(text.replace("iperiod = 60", ""), "x")


@pytest.mark.parametrize(
    "model,expected",
    [
        ("Raspberry Pi Zero 2 W Rev 1.0", "pi-zero-2w"),
        ("Raspberry Pi 3 Model B Plus Rev 1.3", "pi3"),
        ("Raspberry Pi 4 Model B Rev 1.4", "pi4"),
        ("Raspberry Pi 400 Rev 1.0", "pi4"),
        ("Raspberry Pi Compute Module 4 Rev 1.0", "cm4"),
        ("Raspberry Pi 5 Model B Rev 1.0", "pi5"),
        ("Raspberry Pi Compute Module 5 Rev 1.0", "pi5"),
        ("Pine64 RockPro64", "generic-uvc"),
    ],
)
def test_match_by_device_tree_model(tmp_path, model, expected):
    machine = Machine.probe(fake_root(tmp_path, model=model))
    assert match_profile(machine).profile.name == expected


def test_match_rtsp_and_explicit_names(tmp_path):
    machine = Machine.probe(fake_root(tmp_path))
    assert match_profile(machine).profile.name == "generic-uvc"
    assert match_profile(machine, video="rtsp://cam/stream").profile.name == "rtsp-camera"
    assert match_profile(machine, "pi5").profile.name == "pi5"
    with pytest.raises(ProfileError, match="choose from"):
        match_profile(machine, "pi9")


def test_probe_reads_video_and_alsa(tmp_path):
    machine = Machine.probe(
        fake_root(tmp_path, "Raspberry Pi 4 Model B Rev 1.4", PI4_DEVICES, capture_cards=1)
    )
    assert machine.encoder("bcm2835-codec", "/dev/video11").path == "/dev/video11"
    assert machine.encoder("bcm2835-codec").path == "/dev/video11", "by name when the path differs"
    assert [d.path for d in machine.cameras()] == ["/dev/video0"]
    assert machine.capture_pcms == ("card0/pcm0c",)


def unit_view_root(tmp_path: Path, model: str) -> Path:
    """What the daemon sees under the unit (ProcSubset=pid): /proc holds only processes,
    so the board model, sound cards and sysctls are in /sys or nowhere."""
    root = tmp_path / "unitroot"
    base = root / "sys/firmware/devicetree/base"
    base.mkdir(parents=True)
    (base / "model").write_bytes(model.encode() + b"\0")
    sound = root / "sys/class/sound"
    (sound / "card1").mkdir(parents=True)
    (sound / "card1/id").write_text("Device\n")
    (sound / "pcmC1D0c").mkdir()
    (sound / "pcmC1D0p").mkdir()
    (root / "proc/1").mkdir(parents=True)
    return root


def test_probe_under_the_unit_reads_the_model_and_sound_cards_from_sys(tmp_path):
    machine = Machine.probe(unit_view_root(tmp_path, "Raspberry Pi 4 Model B Rev 1.4"))
    assert machine.model == "Raspberry Pi 4 Model B Rev 1.4"
    assert match_profile(machine).profile.name == "pi4", "not the generic-uvc fallback"
    assert machine.capture_pcms == ("card1/pcm0c",), "playback PCMs are not capture"
    assert machine.alsa_cards == ("1 [Device]",)


def test_sys_model_wins_over_proc(tmp_path):
    root = fake_root(tmp_path, model="Raspberry Pi 3 Model B Rev 1.2")
    base = root / "sys/firmware/devicetree/base"
    base.mkdir(parents=True)
    (base / "model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    assert match_profile(Machine.probe(root)).profile.name == "pi5"


def test_doctor_does_not_call_unreadable_sysctls_ok(tmp_path):
    root = unit_view_root(tmp_path, "Raspberry Pi 4 Model B Rev 1.4")
    config = parse_config({"overlay": {"address": "127.0.0.1"}, "media": {"audio": "none"}})
    report = Doctor(home_with_key(tmp_path), config, Machine.probe(root)).run()
    sysctl = checks(report)["sysctl"]
    assert sysctl.status == "skip" and "ProcSubset=pid" in sysctl.detail, sysctl
    # with /proc/sys present a low buffer is still reported
    (root / "proc/sys/net/core").mkdir(parents=True)
    (root / "proc/sys/net/core/rmem_max").write_text("212992\n")
    (root / "proc/sys/net/core/wmem_max").write_text("212992\n")
    low = checks(Doctor(home_with_key(tmp_path, "m"), config, Machine.probe(root)).run())["sysctl"]
    assert low.status == "warn" and "net.core.rmem_max=212992" in low.detail, low


def home_with_key(tmp_path, name="n") -> Home:
    home = Home(tmp_path / name)
    home.create(name)
    return home


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checks(report) -> dict:
    return {c.name: c for c in report.checks}


def PICAMERA2_WITH(cameras: list[dict]) -> Picamera2Probe:
    """What probe_picamera2() returns where picamera2 imports and libcamera sees `cameras`."""
    return Picamera2Probe(True, "picamera2 0.3.38 imports from /usr/lib/python3/dist-packages", cameras)


def test_doctor_on_a_complete_pi4(tmp_path):
    fragment = load_profile("pi4").config_txt
    root = fake_root(
        tmp_path,
        "Raspberry Pi 4 Model B Rev 1.4",
        PI4_DEVICES,
        1,
        config_txt="dtparam=audio=on\n" + fragment + "\n",
    )
    config = parse_config({"overlay": {"address": "127.0.0.1"}, "media": {"audio": "none"}})
    camera = {"Model": "imx708", "Num": 0, "Id": "/base/soc/i2c0mux/i2c@1/imx708@1a"}
    report = Doctor(
        home_with_key(tmp_path), config, Machine.probe(root), picamera2=lambda: PICAMERA2_WITH([camera])
    ).run()
    c = checks(report)
    assert report.profile == "pi4"
    assert c["picamera2"].status == "ok"
    assert c["camera"].status == "ok" and "imx708" in c["camera"].detail
    assert c["encoder"].status == "ok" and "video11" in c["encoder"].detail
    assert c["config.txt"].status == "ok"
    assert c["key"].status == "ok" and c["overlay"].status == "ok"
    assert report.ok, report.render()


def test_doctor_names_what_is_missing_with_a_fix(tmp_path):
    # A Pi 4 with no camera, no encoder node, no fragment in config.txt, a broker that is
    # not listening and a key others can read.
    root = fake_root(tmp_path, "Raspberry Pi 4 Model B Rev 1.4", {}, 0, config_txt="dtparam=audio=on\n")
    home = home_with_key(tmp_path)
    home.key_file.chmod(0o644)
    config = parse_config(
        {
            "overlay": {"address": "127.0.0.1"},
            "media": {"audio": "alsa:nosuchmic"},
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": free_tcp_port(), "tls": False},
        }
    )
    report = Doctor(home, config, Machine.probe(root), timeout=2, picamera2=lambda: PICAMERA2_WITH([])).run()
    c = checks(report)
    assert not report.ok
    for name, fix_word in [
        ("key", "chmod 600"),
        ("camera", "camera_auto_detect"),
        ("encoder", "video11"),
        ("alsa", "USB microphone"),
        ("broker", "mosquitto"),
    ]:
        assert c[name].status == "missing" and c[name].required, name
        assert fix_word in c[name].fix, (name, c[name].fix)
    assert c["config.txt"].status == "missing" and not c["config.txt"].required
    assert "camera_auto_detect=1" in c["config.txt"].detail


def test_doctor_overlay_down_is_required(tmp_path):
    report = Doctor(home_with_key(tmp_path), Config(), Machine.probe(fake_root(tmp_path))).run()
    c = checks(report)
    assert c["overlay"].status == "missing" and "overlay.address" in c["overlay"].fix
    assert not report.ok


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_doctor_cli_exit_codes_and_json(tmp_path):
    home = home_with_key(tmp_path)
    bad = run_cli("doctor", "--home", str(home.path), "--json")
    assert bad.returncode == 1
    out = json.loads(bad.stdout)
    assert out["ok"] is False and out["profile"]
    assert any(c["name"] == "overlay" and c["status"] == "missing" for c in out["checks"])
    home.config_file.write_text(
        '[overlay]\naddress = "127.0.0.1"\n[media]\nvideo = "testsrc"\naudio = "none"\n'
    )
    good = run_cli("doctor", "--home", str(home.path))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "all required checks passed" in good.stdout


def test_profile_cli_json_is_what_ansible_reads(tmp_path):
    shown = run_cli("profile", "show", "cm4", "--json", "--home", str(tmp_path / "none"))
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["name"] == "cm4" and data["pi"] and "dtoverlay=imx708,cam0" in data["config_txt"]
    assert data["sysctl"]["net.core.rmem_max"] == 4194304
    listed = run_cli("profile", "list")
    assert {line.split("\t")[0] for line in listed.stdout.splitlines()} == BOARDS

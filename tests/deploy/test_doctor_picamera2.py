"""`media-node doctor` tells the truth about the Pi camera stack: it imports picamera2
in the interpreter that runs it (the service's venv when run as the role runs it) and
lists the cameras libcamera sees through Picamera2.global_camera_info()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.config import Config, parse_config
from node.doctor import Doctor
from node.doctor_media import probe_picamera2
from node.profiles import Machine

from .test_profiles import PI4_DEVICES, checks, fake_root, home_with_key

FAKES = Path(__file__).resolve().parents[1] / "media" / "fakes"
PI4 = "Raspberry Pi 4 Model B Rev 1.4"


def broken_picamera2(tmp_path: Path) -> Path:
    """A picamera2 that fails to import the way it does without libcamera's bindings."""
    pkg = tmp_path / "broken" / "picamera2"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("import libcamera  # python3-libcamera comes from apt\n")
    return pkg.parent


@pytest.fixture
def clean_picamera2(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] in ("picamera2", "libcamera")]:
        monkeypatch.delitem(sys.modules, name)
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in ("picamera2", "libcamera")]:
        sys.modules.pop(name, None)


def pi4_config() -> Config:
    return parse_config({"overlay": {"address": "127.0.0.1"}, "media": {"audio": "none"}})


def test_doctor_fails_when_picamera2_cannot_be_imported(tmp_path, monkeypatch, clean_picamera2):
    monkeypatch.syspath_prepend(str(broken_picamera2(tmp_path)))
    root = fake_root(tmp_path, PI4, PI4_DEVICES, 0, config_txt="")
    report = Doctor(home_with_key(tmp_path), pi4_config(), Machine.probe(root)).run()
    c = checks(report)
    assert c["picamera2"].status == "missing" and c["picamera2"].required
    assert "libcamera" in c["picamera2"].detail and sys.executable in c["picamera2"].detail
    assert "apt install --no-install-recommends python3-picamera2" in c["picamera2"].fix
    assert "--system-site-packages" in c["picamera2"].fix
    # the unicam receiver is there, but that is not a camera libcamera can open
    assert c["camera"].status == "missing" and "unicam" in c["camera"].detail
    assert not report.ok


def test_doctor_lists_the_cameras_from_picamera2(tmp_path, monkeypatch, clean_picamera2):
    monkeypatch.syspath_prepend(str(FAKES))
    import picamera2

    monkeypatch.setattr(picamera2.Picamera2, "clip", tmp_path / "any.h264")
    root = fake_root(tmp_path, PI4, PI4_DEVICES, 0, config_txt="")
    report = Doctor(home_with_key(tmp_path), pi4_config(), Machine.probe(root)).run()
    c = checks(report)
    assert c["picamera2"].status == "ok" and str(FAKES) in c["picamera2"].detail
    assert c["camera"].status == "ok", c["camera"]
    assert "1 camera(s): 0: imx708 (/base/soc/i2c0mux/i2c@1/imx708@1a)" in c["camera"].detail
    assert c["encoder"].status == "ok"
    # no camera attached: the import works, libcamera lists none, the fix is the ribbon
    monkeypatch.setattr(picamera2.Picamera2, "clip", None)
    assert probe_picamera2().cameras == []
    none = checks(Doctor(home_with_key(tmp_path, "m"), pi4_config(), Machine.probe(root)).run())["camera"]
    assert none.status == "missing" and "sees no camera" in none.detail and "ribbon" in none.fix


def test_doctor_cli_exits_non_zero_without_picamera2(tmp_path):
    """The command the role runs, in a fresh interpreter: exit 1 and the fix."""
    home = home_with_key(tmp_path)
    home.config_file.write_text(
        '[overlay]\naddress = "127.0.0.1"\n[media]\nprofile = "pi4"\naudio = "none"\n'
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(broken_picamera2(tmp_path)), str(FAKES.parents[2])]),
    }
    out = subprocess.run(
        [sys.executable, "-m", "node.cli", "doctor", "--json", "--home", str(home.path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(out.stdout)
    pc = next(c for c in report["checks"] if c["name"] == "picamera2")
    assert pc["status"] == "missing" and "python3-picamera2" in pc["fix"]


def test_doctor_checks_the_configured_speaker(tmp_path, monkeypatch):
    """The speaker check opens `media.speaker` itself (a real ALSA `file` plugin device
    here), says talkback is off when none is set, and warns for one that cannot open.
    Its own device and ALSA_CONFIG_PATH, restored after: the session's fake speaker and
    microphone fixtures set theirs in an order other tests rely on."""
    conf = tmp_path / "doctor-speaker.conf"
    conf.write_text(
        'pcm.media_node_doctor_speaker {\n    type file\n    slave.pcm "null"\n'
        f'    file "{tmp_path / "doctor-speaker.raw"}"\n    format "raw"\n}}\n'
    )
    old = os.environ.get("ALSA_CONFIG_PATH")
    monkeypatch.setenv("ALSA_CONFIG_PATH", f"{old or '/usr/share/alsa/alsa.conf'}:{conf}")
    root = fake_root(tmp_path, PI4, PI4_DEVICES, 0, config_txt="")
    home = home_with_key(tmp_path)

    def speaker(value: str):
        cfg = parse_config(
            {"overlay": {"address": "127.0.0.1"}, "media": {"audio": "none", "speaker": value}}
        )
        return checks(Doctor(home, cfg, Machine.probe(root)).run())["speaker"]

    good = speaker("alsa:media_node_doctor_speaker")
    assert good.status == "ok" and "media_node_doctor_speaker" in good.detail
    off = speaker("")
    assert off.status == "skip" and "talkback is off" in off.detail and not off.required
    bad = speaker("alsa:no_such_speaker_device")
    assert bad.status == "warn" and "no_such_speaker_device" in bad.detail and not bad.required

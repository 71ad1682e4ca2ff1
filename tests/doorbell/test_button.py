"""The GPIO button through libgpiod's v2 API. This kernel has no GPIO support at all,
so the presses come from the fake gpiod (tests/fakes/gpiod), which follows the library's
contract: logical edges, active-low inversion, EBUSY, ENOENT for unknown names."""

from __future__ import annotations

import threading
import time

import pytest

from node.doorbell import GpioButton, GpioError, find_line

MS = 1_000_000


class Presses:
    def __init__(self):
        self.count = 0
        self.cond = threading.Condition()

    def __call__(self):
        with self.cond:
            self.count += 1
            self.cond.notify_all()

    def wait(self, n, timeout=10.0):
        with self.cond:
            assert self.cond.wait_for(lambda: self.count >= n, timeout), f"{self.count} presses, wanted {n}"


def started(fake_gpiod, presses, **kw) -> GpioButton:
    button = GpioButton("GPIO17", presses, gpiod=fake_gpiod, dev=fake_gpiod.dev, **kw)
    button.start()
    assert button.opened.wait(10), "the line was not requested"
    return button


def press(gpiod, at_ms, *, bounce=(), hold_ms=150, release_bounce=()):
    """Contact closes at `at_ms` (bouncing at the given ms offsets), opens after hold."""
    gpiod.Board.drive("GPIO17", 0, at_ms * MS)
    level = 0
    for offset in bounce:
        level ^= 1
        gpiod.Board.drive("GPIO17", level, (at_ms + offset) * MS)
    gpiod.Board.drive("GPIO17", 0, (at_ms + (bounce[-1] if bounce else 0) + 1) * MS)
    up = at_ms + hold_ms
    gpiod.Board.drive("GPIO17", 1, up * MS)
    level = 1
    for offset in release_bounce:
        level ^= 1
        gpiod.Board.drive("GPIO17", level, (up + offset) * MS)
    gpiod.Board.drive("GPIO17", 1, (up + (release_bounce[-1] if release_bounce else 0) + 1) * MS)


def settle(button, fake_gpiod):
    """Wait until the button thread has read every queued edge."""
    deadline = time.monotonic() + 10
    pins = fake_gpiod.Board.chips[f"{fake_gpiod.dev}/gpiochip4"]
    while any(p.request is not None and p.request._events for p in pins):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.05)


def test_the_line_is_found_by_name_and_requested_as_a_pulled_up_active_low_input(fake_gpiod):
    assert find_line(fake_gpiod, "GPIO17", dev=fake_gpiod.dev) == (f"{fake_gpiod.dev}/gpiochip4", 17)
    presses = Presses()
    button = started(fake_gpiod, presses, debounce_ms=25)
    try:
        [(chip, offset, settings, consumer)] = fake_gpiod.Board.requests
        line = fake_gpiod.line
        assert (chip, offset, consumer) == (f"{fake_gpiod.dev}/gpiochip4", 17, "media-node doorbell")
        assert settings.direction is line.Direction.INPUT and settings.bias is line.Bias.PULL_UP
        assert settings.active_low and settings.edge_detection is line.Edge.BOTH
        assert settings.debounce_period.total_seconds() == 0.025
        assert button.where == "gpiochip4:17"
    finally:
        button.stop()
    assert fake_gpiod.Board.pin("GPIO17").request is None, "the line is released on stop"


def test_a_bouncing_press_and_release_count_once_and_two_presses_twice(fake_gpiod):
    presses = Presses()
    button = started(fake_gpiod, presses, debounce_ms=30)
    try:
        press(fake_gpiod, 1000, bounce=(1, 3, 4, 9), release_bounce=(2, 5, 11))
        presses.wait(1)
        settle(button, fake_gpiod)
        assert presses.count == 1 and button.bounces >= 3, (presses.count, button.bounces)
        press(fake_gpiod, 2000)
        presses.wait(2)
        settle(button, fake_gpiod)
        assert presses.count == 2
    finally:
        button.stop()


def test_an_active_high_button_uses_the_pull_down(fake_gpiod):
    presses = Presses()
    button = GpioButton("GPIO17", presses, active_low=False, gpiod=fake_gpiod, dev=fake_gpiod.dev)
    button.start()
    try:
        assert button.opened.wait(10)
        settings = fake_gpiod.Board.requests[0][2]
        assert settings.bias is fake_gpiod.line.Bias.PULL_DOWN and not settings.active_low
        fake_gpiod.Board.drive("GPIO17", 1, 5000 * MS)
        presses.wait(1)
    finally:
        button.stop()


def test_unknown_lines_and_bare_offsets_are_clear_errors(fake_gpiod, tmp_path):
    with pytest.raises(GpioError, match="no GPIO line named 'GPIO99'"):
        find_line(fake_gpiod, "GPIO99", dev=fake_gpiod.dev)
    with pytest.raises(GpioError, match="name its chip"):
        find_line(fake_gpiod, "17", dev=fake_gpiod.dev)
    chip4 = f"{fake_gpiod.dev}/gpiochip4"
    assert find_line(fake_gpiod, "17", chip=chip4) == (chip4, 17)
    with pytest.raises(GpioError, match=r"no .*gpiochip"):
        find_line(fake_gpiod, "GPIO17", dev=str(tmp_path / "empty"))


def test_a_busy_line_is_retried_until_it_is_free(fake_gpiod):
    """Another program holds the line (EBUSY): the button logs, backs off and gets it
    once it is released; the node never dies over it."""
    holder = fake_gpiod.request_lines(f"{fake_gpiod.dev}/gpiochip4", config={17: None}, consumer="other")
    presses = Presses()
    button = GpioButton("GPIO17", presses, gpiod=fake_gpiod, dev=fake_gpiod.dev)
    button.start()
    try:
        assert not button.opened.wait(0.3)
        assert button.alive()
        holder.release()
        assert button.opened.wait(10), "not requested after the holder let go"
        fake_gpiod.Board.drive("GPIO17", 0, 9000 * MS)
        presses.wait(1)
    finally:
        button.stop()

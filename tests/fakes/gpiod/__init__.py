"""A fake `gpiod` (libgpiod v2 Python bindings, the 2.x API on PyPI) for machines
without GPIO: this test kernel has no gpiochip, no gpio-sim and no configfs, so nothing
real can be requested.

It follows the contract the node relies on:
- `is_gpiochip_device(path)`, `Chip(path)` (a context manager; an unknown path raises
  FileNotFoundError like opening the device would), `Chip.line_offset_from_id(name)`
  (OSError ENOENT for an unknown name, ValueError for an offset out of range),
  `Chip.request_lines(config, consumer)` and the module-level `request_lines(path, ...)`;
  a line already requested raises OSError EBUSY;
- `LineSettings` (direction, edge_detection, bias, active_low, debounce_period, ...);
- `LineRequest.wait_edge_events(timeout)` (timedelta or seconds; False on timeout),
  `read_edge_events(max_events)`, `get_value(line)`, `release()`; a released request
  raises `RequestReleasedError`;
- `EdgeEvent` (event_type RISING_EDGE/FALLING_EDGE, timestamp_ns, line_offset, seqnos).
  Edges are *logical*: with active_low the falling physical level is a RISING_EDGE,
  and only the edges asked for in `edge_detection` are queued. The bias gives the idle
  level (pull-up: high).

Test side: `Board` holds the chips (`Board.add_chip(path, names)`), and
`Board.drive(name, level, at_ns)` changes a pin's physical level at a kernel timestamp,
as a button's contact would. The fake passes every edge through, like a pin controller
whose debounce is off: the requested `debounce_period` is recorded (`Board.requests`)
so a test can check it was asked for, and the node's own debounce is what is tested."""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum

from . import line
from .line import Bias, Clock, Direction, Drive, Edge, Value

__version__ = "2.5.0-fake"
api_version = "2.5-fake"


class RequestReleasedError(Exception):
    pass


class ChipClosedError(Exception):
    pass


@dataclass(repr=False)
class LineSettings:
    direction: Direction = Direction.AS_IS
    edge_detection: Edge = Edge.NONE
    bias: Bias = Bias.AS_IS
    drive: Drive = Drive.PUSH_PULL
    active_low: bool = False
    debounce_period: timedelta = field(default_factory=timedelta)
    event_clock: Clock = Clock.MONOTONIC
    output_value: Value = Value.INACTIVE


class EdgeEvent:
    class Type(Enum):
        RISING_EDGE = 1
        FALLING_EDGE = 2

    def __init__(
        self, event_type: int, timestamp_ns: int, line_offset: int, global_seqno: int, line_seqno: int
    ):
        self.event_type = EdgeEvent.Type(event_type)
        self.timestamp_ns = timestamp_ns
        self.line_offset = line_offset
        self.global_seqno = global_seqno
        self.line_seqno = line_seqno


class _Pin:
    def __init__(self, chip: str, offset: int, name: str):
        self.chip, self.offset, self.name = chip, offset, name
        self.level = 1  # physical; set by the bias once requested
        self.request: LineRequest | None = None
        self.settings: LineSettings | None = None
        self.seqno = 0


class Board:
    """The simulated hardware (class-level: one per test, reset with `Board.reset()`)."""

    chips: dict[str, list[_Pin]] = {}
    requests: list[tuple[str, int, LineSettings, str | None]] = []
    _cond = threading.Condition()
    _seqno = 0

    @classmethod
    def reset(cls) -> None:
        cls.chips, cls.requests, cls._seqno = {}, [], 0

    @classmethod
    def add_chip(cls, path: str, names: list[str]) -> None:
        cls.chips[path] = [_Pin(path, i, n) for i, n in enumerate(names)]

    @classmethod
    def pin(cls, name: str) -> _Pin:
        for pins in cls.chips.values():
            for p in pins:
                if p.name == name:
                    return p
        raise KeyError(name)

    @classmethod
    def drive(cls, name: str, level: int, at_ns: int) -> None:
        """The pin's physical level becomes `level` at kernel time `at_ns`."""
        with cls._cond:
            pin = cls.pin(name)
            if pin.level == level:
                return
            pin.level = level
            request, s = pin.request, pin.settings
            if request is None or s is None or request._released:
                return
            logical = level ^ int(s.active_low)
            kind = EdgeEvent.Type.RISING_EDGE if logical else EdgeEvent.Type.FALLING_EDGE
            wanted = {
                Edge.BOTH: True,
                Edge.RISING: kind is EdgeEvent.Type.RISING_EDGE,
                Edge.FALLING: kind is EdgeEvent.Type.FALLING_EDGE,
            }.get(s.edge_detection, False)
            if wanted:
                cls._seqno += 1
                pin.seqno += 1
                request._events.append(EdgeEvent(kind.value, at_ns, pin.offset, cls._seqno, pin.seqno))
                cls._cond.notify_all()


def is_gpiochip_device(path: str) -> bool:
    return path in Board.chips


def _timeout(value: timedelta | float | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


class LineRequest:
    def __init__(self, chip: str, pins: list[_Pin]):
        self.chip_name = chip.rsplit("/", 1)[-1]
        self._pins = {p.offset: p for p in pins}
        self.offsets = list(self._pins)
        self._events: list[EdgeEvent] = []
        self._released = False

    def __enter__(self) -> LineRequest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _check(self) -> None:
        if self._released:
            raise RequestReleasedError()

    def release(self) -> None:
        with Board._cond:
            if not self._released:
                self._released = True
                for p in self._pins.values():
                    p.request = p.settings = None

    def get_value(self, line: int | str) -> Value:
        self._check()
        pin = self._pins[line] if isinstance(line, int) else Board.pin(line)
        assert pin.settings is not None
        return Value(pin.level ^ int(pin.settings.active_low))

    def wait_edge_events(self, timeout: timedelta | float | None = None) -> bool:
        self._check()
        with Board._cond:
            return Board._cond.wait_for(
                lambda: bool(self._events) or self._released, _timeout(timeout)
            ) and bool(self._events)

    def read_edge_events(self, max_events: int | None = None) -> list[EdgeEvent]:
        self._check()
        with Board._cond:
            if not self._events:  # the real read blocks: the caller waits first
                Board._cond.wait_for(lambda: bool(self._events) or self._released)
            n = len(self._events) if max_events is None else max_events
            out, self._events = self._events[:n], self._events[n:]
            return out


class Chip:
    def __init__(self, path: str):
        if path not in Board.chips:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self.path = path
        self._open = True

    def __enter__(self) -> Chip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._open = False

    def _pins(self) -> list[_Pin]:
        if not self._open:
            raise ChipClosedError()
        return Board.chips[self.path]

    def line_offset_from_id(self, id: str | int) -> int:
        pins = self._pins()
        if isinstance(id, str):
            for p in pins:
                if p.name == id:
                    return p.offset
            if not id.isdigit():
                raise OSError(errno.ENOENT, "No such file or directory")
            id = int(id)
        if id >= len(pins):
            raise ValueError("line offset of out range")
        return id

    def request_lines(
        self,
        config: dict,
        consumer: str | None = None,
        event_buffer_size: int | None = None,
        output_values: dict | None = None,
    ) -> LineRequest:
        pins = []
        with Board._cond:
            for key, settings in config.items():
                for ident in key if isinstance(key, tuple) else (key,):
                    pin = self._pins()[self.line_offset_from_id(ident)]
                    if pin.request is not None:
                        raise OSError(errno.EBUSY, "Device or resource busy")
                    pins.append((pin, settings or LineSettings()))
            request = LineRequest(self.path, [p for p, _ in pins])
            for pin, settings in pins:
                pin.request, pin.settings = request, settings
                if settings.bias is Bias.PULL_UP:
                    pin.level = 1
                elif settings.bias is Bias.PULL_DOWN:
                    pin.level = 0
                Board.requests.append((self.path, pin.offset, settings, consumer))
        return request


def request_lines(
    path: str,
    config: dict,
    consumer: str | None = None,
    event_buffer_size: int | None = None,
    output_values: dict | None = None,
) -> LineRequest:
    with Chip(path) as chip:
        return chip.request_lines(config, consumer, event_buffer_size, output_values)


__all__ = [
    "Board",
    "Chip",
    "EdgeEvent",
    "LineRequest",
    "LineSettings",
    "RequestReleasedError",
    "is_gpiochip_device",
    "line",
    "request_lines",
]

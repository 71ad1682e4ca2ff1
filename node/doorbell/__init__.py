"""The doorbell: a GPIO push button (`button`) and what a ring does (`bell`)."""

from __future__ import annotations

from ..config import DoorbellSection
from .bell import Doorbell, Ring
from .button import GpioButton, GpioError, find_line


def doorbell_line(config: DoorbellSection, profile_gpio: str | None) -> str:
    """The configured line name; "auto" takes the board profile's pin ("" = no button)."""
    if config.gpio != "auto":
        return config.gpio
    if not profile_gpio:
        raise GpioError(
            'doorbell.gpio = "auto", but the board profile names no doorbell pin: '
            "give the line's name (gpioinfo lists them)"
        )
    return profile_gpio


__all__ = ["Doorbell", "GpioButton", "GpioError", "Ring", "doorbell_line", "find_line"]

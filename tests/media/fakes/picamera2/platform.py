from enum import Enum


class Platform(Enum):
    VC4 = 0
    PISP = 1


_platform = Platform.VC4


def get_platform():
    return _platform

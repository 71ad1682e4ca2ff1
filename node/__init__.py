"""media-node: a headless media node that publishes camera and microphone over WebRTC
on overlay-network addresses only, with Ed25519-signed handshake links."""

__version__ = "0.1.0"

from . import lazyimports as _lazyimports

_lazyimports.install()

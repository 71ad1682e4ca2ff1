"""A loopback RTSP server for the tests (gst-rtsp-server through the system python3 and
GObject introspection): serves an MP4's H.264 track at rtsp://127.0.0.1:PORT/cam, looping.

usage: /usr/bin/python3 rtsp_server.py FILE.mp4 PORT CONFIG_INTERVAL
Prints READY when listening. CONFIG_INTERVAL 0 = SPS/PPS only in the SDP (like many
cameras), -1 = before every IDR."""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    path, port, interval = sys.argv[1], sys.argv[2], sys.argv[3]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( multifilesrc location={path} loop=true ! qtdemux ! h264parse config-interval={interval} "
        f"! rtph264pay name=pay0 pt=96 config-interval={interval} )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print("cannot listen", flush=True)
        sys.exit(1)
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()

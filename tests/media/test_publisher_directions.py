"""The publisher shares the camera and nothing else: answering an offer that would
also send (sendrecv), its transceivers are send-only, so the node never asks for, nor
decodes, a peer's media because a track was attached."""

from __future__ import annotations

from aiortc import AudioStreamTrack, VideoStreamTrack
from aiortc.sdp import SessionDescription

from node.media import MediaPublisher
from node.media.filesource import FileSource

from .conftest import loopback_pc


async def test_attach_never_adds_a_receiving_direction(clip_dir):
    publisher = MediaPublisher(FileSource(clip_dir / "clip.h264"), None)
    await publisher.start()
    peer, camera = loopback_pc(), loopback_pc()
    try:
        peer.addTrack(AudioStreamTrack())
        peer.addTrack(VideoStreamTrack())  # a sendrecv offer: the peer would send video too
        await peer.setLocalDescription(await peer.createOffer())
        await camera.setRemoteDescription(peer.localDescription)
        attachment = publisher.attach(camera)
        video = next(t for t in camera.getTransceivers() if t.kind == "video")
        assert video.sender.track is attachment.video_track
        assert video.direction == "sendonly"
        await camera.setLocalDescription(await camera.createAnswer())
        answer = SessionDescription.parse(camera.localDescription.sdp)
        # (audio: no audio source here, the transceiver is not the publisher's; node.calls
        # makes such leftovers inactive)
        assert [m.direction for m in answer.media if m.kind == "video"] == ["sendonly"]
        attachment.detach()
    finally:
        await camera.close()
        await peer.close()
        await publisher.stop()

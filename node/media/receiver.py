"""The receive side (viewer): consume a peer connection's remote tracks, count what
arrives, and record H.264 without decoding — the access units come out of aiortc's
receiver as they arrived (hooks.hook_receiver) and are remuxed by PyAV into
Matroska (.mkv), MP4 (.mp4) or MPEG-TS (.ts). A live pipe (`view --record -`, `--play`)
is MPEG-TS on a stream, with the audio (decoded by aiortc from Opus) as AAC."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from pathlib import Path
from typing import Any, BinaryIO

import av
from aiortc import RTCPeerConnection, RTCRtpCodecParameters, RTCRtpReceiver
from aiortc.codecs.base import Decoder
from aiortc.mediastreams import MediaStreamTrack
from av.container import OutputContainer
from av.stream import Stream

from . import hooks
from .annexb import find_sps, is_annexb, is_idr, normalize
from .incoming import Pumps, each_track, received, request_keyframe
from .source import MediaError

log = logging.getLogger(__name__)

FORMATS = {".mkv": "matroska", ".mp4": "mp4", ".ts": "mpegts"}


class BadAccessUnit(ValueError):
    """An access unit from the peer that cannot be recorded; it is skipped."""


class Recorder:
    """Annex-B access units → a container file, packets copied, nothing decoded or
    encoded. Recording starts at the first IDR (it carries SPS/PPS).

    `path` may instead be a binary stream (a pipe to a player, stdout): MPEG-TS is
    written to it, flushed in small blocks. With `audio`, decoded audio frames given to
    `write_audio` are encoded to AAC beside the video (both timed from their arrival
    after the first IDR, so they stay in step)."""

    def __init__(self, path: str | Path | BinaryIO, audio: bool = False):
        self.stream_out: BinaryIO | None = None
        if isinstance(path, (str, Path)):
            self.path = Path(path)
            fmt = FORMATS.get(self.path.suffix.lower())
            if fmt is None:
                raise MediaError(f"record to .mkv, .mp4 or .ts, not {self.path.name}")
        else:
            self.stream_out, self.path, fmt = path, Path("-"), "mpegts"
        self._format = fmt
        self._container: OutputContainer | None = None
        self._stream: Stream | None = None
        self._audio_wanted = audio
        self._audio: Any = None  # the AAC stream (PyAV's AudioStream)
        self._audio_base: int | None = None  # RTP-clock pts mapped to the recording's 0
        self._opened_at = 0.0
        self._video_base: int | None = None
        self._last_pts: int | None = None
        self.frames = 0
        self.audio_frames = 0
        self.skipped = 0

    def _open(self, first_idr: bytes) -> None:
        # FFmpeg's raw H.264 parser reads the SPS/PPS of the first IDR into a stream
        # template (size, profile, extradata); the output stream copies it unopened.
        try:
            template = av.open(io.BytesIO(first_idr), format="h264")
            if not template.streams.video:
                template.close()
                raise ValueError("no video stream in it")
        except (av.FFmpegError, ValueError) as e:
            # a broken IDR from the peer: wait for the next one rather than give up
            raise BadAccessUnit(f"the first IDR cannot be parsed ({e})") from None
        try:
            if self.stream_out is not None:  # small blocks: a player sees frames at once
                container = av.open(self.stream_out, "w", format=self._format, buffer_size=4096)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                container = av.open(str(self.path), "w", format=self._format)
            self._container = container
            self._stream = stream = container.add_stream_from_template(template.streams.video[0], opaque=True)
            stream.time_base = hooks.VIDEO_CLOCK
            if self._audio_wanted:
                self._audio = container.add_stream("aac", rate=48000)
                self._audio.bit_rate = 96_000
            self._opened_at = time.monotonic()
        finally:
            template.close()

    def write(self, access_unit: bytes, pts_90k: int, keyframe: bool | None = None) -> None:
        """`keyframe`: whether the AU holds an IDR, if the caller already knows (saves a
        second scan of every AU's NAL units)."""
        if keyframe is None:
            keyframe = is_idr(access_unit)
        if self._container is None or self._stream is None:
            if not keyframe or find_sps(access_unit) is None:
                self.skipped += 1
                return
            try:
                self._open(access_unit)
            except BadAccessUnit:
                self.skipped += 1
                return
        if self._video_base is None:
            self._video_base = pts_90k
        pts_90k -= self._video_base  # RTP timestamps start anywhere; audio is timed from 0 too
        if self._last_pts is not None and pts_90k <= self._last_pts:
            pts_90k = self._last_pts + 1  # containers need increasing timestamps
        self._last_pts = pts_90k
        packet = av.Packet(access_unit)
        packet.pts = packet.dts = pts_90k
        packet.time_base = hooks.VIDEO_CLOCK
        packet.is_keyframe = keyframe
        container, stream = self._container, self._stream
        if container is None or stream is None:  # _open() sets both or raises
            return
        packet.stream = stream
        container.mux(packet)
        self.frames += 1

    def write_audio(self, frame: av.AudioFrame) -> None:
        """One decoded audio frame (aiortc's Opus decoder output), encoded to AAC."""
        if self._audio is None or self._container is None or frame.pts is None:
            return  # before the first IDR, or no audio wanted
        rate = frame.sample_rate or 48000
        if self._audio_base is None:  # place the first frame at its arrival time
            self._audio_base = frame.pts - int((time.monotonic() - self._opened_at) * rate)
        frame.pts -= self._audio_base
        if frame.pts < 0:
            return
        for packet in self._audio.encode(frame):
            self._container.mux(packet)
        self.audio_frames += 1

    def close(self) -> None:
        if self._container is not None:
            try:
                if self._audio is not None:
                    for packet in self._audio.encode(None):
                        self._container.mux(packet)
            except (av.FFmpegError, OSError, ValueError):
                pass
            try:
                self._container.close()
            except (av.FFmpegError, OSError):  # a reader that went away (player closed)
                pass
            self._container = None


def read_recorded_access_units(path: str | Path) -> list[bytes]:
    """The H.264 access units stored in a recording, back in canonical Annex-B form
    (MKV/MP4 store length-prefixed NAL units; the bitstream filter restores start codes)."""
    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        extradata = stream.codec_context.extradata or b""
        bsf = None
        if extradata and not is_annexb(extradata):
            bsf = av.BitStreamFilterContext("h264_mp4toannexb", stream)
        out: list[bytes] = []
        for packet in container.demux(stream):
            if bsf is None:
                if packet.size:
                    out.append(normalize(bytes(packet)))
            else:
                out.extend(normalize(bytes(p)) for p in bsf.filter(packet if packet.size else None))
        return out
    finally:
        container.close()


class MediaReceiver:
    """Consumes `pc`'s remote audio and video. Create it before setRemoteDescription (it
    hooks each video receiver at the `track` event). With `record_path`, H.264 is
    recorded without decoding; with `decode=True` a copy is decoded only to count
    displayable frames. `keep_access_units` keeps every AU in memory (tests)."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        record_path: str | Path | BinaryIO | None = None,
        decode: bool = False,
        keep_access_units: bool = False,
        record_audio: bool = False,
    ):
        hooks.check_internals()
        self.pc = pc
        self.recorder = Recorder(record_path, audio=record_audio) if record_path is not None else None
        self.decode = decode
        self.keep_access_units = keep_access_units
        self.access_units: list[bytes] = []
        self.video_frames = 0
        self.video_keyframes = 0
        self.video_bytes = 0
        self.bad_access_units = 0  # AUs from the peer the recorder could not take (skipped)
        self.audio_frames = 0
        self.audio_samples = 0
        self.audio_peak = 0.0
        self.ttff: float | None = None
        self._t0 = time.monotonic()
        self._decoders: list[hooks.PassthroughDecoder] = []
        self._pumps = Pumps()
        self._video_receivers: list[RTCRtpReceiver] = []
        self._first_video = asyncio.Event()
        self._frame_waiters: list[tuple[int, asyncio.Future[None]]] = []
        each_track(pc, self._on_track)

    def _decoder_factory(self, codec: RTCRtpCodecParameters) -> Decoder:
        if codec.mimeType.lower() != "video/h264":
            # runs in aiortc's decoder thread: never raise there; decode and count instead
            log.error("the peer sends %s; only H.264 is recorded (frames are still counted)", codec.mimeType)
            return hooks.aiortc_decoder(codec)
        inner = hooks.aiortc_decoder(codec) if self.decode else None
        decoder = hooks.PassthroughDecoder(inner)
        self._decoders.append(decoder)
        return decoder

    def _on_track(self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None) -> None:
        if track.kind == "video" and receiver is not None:
            try:
                hooks.hook_receiver(receiver, self._decoder_factory)
            except MediaError as e:
                # too late to get encoded frames: still count (decoded) frames, no recording
                log.error("video receiver not hooked, nothing will be recorded: %s", e)
                if self.recorder is not None:
                    self.recorder.close()
                    self.recorder = None
            self._video_receivers.append(receiver)
            self._pumps.spawn(self._consume_video(track, receiver))
        elif track.kind == "audio":
            self._pumps.spawn(self._consume_audio(track))

    async def _consume_video(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        asked = False
        async for packet in received(track):
            if not isinstance(packet, av.Packet):  # decoded frame (receiver not hooked)
                self.video_frames += 1
                if self.ttff is None:
                    self.ttff = time.monotonic() - self._t0
                self._wake_waiters()
                continue
            data = bytes(packet)
            if self.ttff is None:
                self.ttff = time.monotonic() - self._t0
                self._first_video.set()
            self.video_frames += 1
            self.video_bytes += len(data)
            keyframe = is_idr(data)
            self.video_keyframes += keyframe
            if not keyframe and self.video_keyframes == 0 and not asked:
                # joined mid-GOP: ask the sender for an IDR rather than wait for one
                asked = await hooks.send_pli(receiver)
            if self.keep_access_units:
                self.access_units.append(data)
            if self.recorder is not None:
                try:
                    self.recorder.write(data, int(packet.pts or 0), keyframe)
                except OSError as e:  # the disk, not the stream: stop recording
                    log.error("recording to %s failed, recording stopped: %s", self.recorder.path, e)
                    self.recorder.close()
                    self.recorder = None
                except Exception as e:  # a malformed AU from the peer: skip it, go on
                    self.bad_access_units += 1
                    if self.bad_access_units == 1 or self.bad_access_units % 100 == 0:
                        log.warning(
                            "recording to %s: skipped a bad access unit (%d so far): %s",
                            self.recorder.path,
                            self.bad_access_units,
                            e,
                        )
            self._wake_waiters()

    async def _consume_audio(self, track: MediaStreamTrack) -> None:
        async for frame in received(track):
            if not isinstance(frame, av.AudioFrame):
                continue
            self.audio_frames += 1
            self.audio_samples += frame.samples
            if self.recorder is not None:
                try:
                    self.recorder.write_audio(frame)
                except (OSError, av.FFmpegError, ValueError) as e:
                    log.warning("recording audio to %s failed, recording stopped: %s", self.recorder.path, e)
                    self.recorder.close()
                    self.recorder = None
            if self.audio_frames % 10 == 1:  # cheap level meter: proves audio is not silence
                samples = memoryview(bytes(frame.planes[0])).cast("h")
                peak = max((abs(s) for s in samples), default=0) / 32768
                self.audio_peak = max(self.audio_peak, peak)

    def _wake_waiters(self) -> None:
        for n, fut in list(self._frame_waiters):
            if self.video_frames >= n and not fut.done():
                fut.set_result(None)
        self._frame_waiters = [(n, f) for n, f in self._frame_waiters if not f.done()]

    async def wait_video_frames(self, count: int, timeout: float) -> None:
        """Wait until `count` video frames arrived in total; TimeoutError after `timeout`."""
        if self.video_frames >= count:
            return
        fut = asyncio.get_running_loop().create_future()
        self._frame_waiters.append((count, fut))
        await asyncio.wait_for(fut, timeout)

    async def request_keyframe(self) -> bool:
        """Send a PLI to the video sender(s)."""
        return await request_keyframe(self._video_receivers)

    def summary(self) -> dict[str, object]:
        return {
            "video_frames": self.video_frames,
            "video_keyframes": self.video_keyframes,
            "video_bytes": self.video_bytes,
            "decoded_frames": sum(d.decoded for d in self._decoders) if self.decode else None,
            "audio_frames": self.audio_frames,
            "audio_samples": self.audio_samples,
            "audio_peak": round(self.audio_peak, 3),
            "ttff": None if self.ttff is None else round(self.ttff, 3),
            "recorded_frames": self.recorder.frames if self.recorder else 0,
            "record_path": str(self.recorder.path) if self.recorder else None,
        }

    async def close(self) -> None:
        await self._pumps.close()
        if self.recorder is not None:
            self.recorder.close()

"""Frame-exact decoding with PyAV.

PyAV identifies every decoded frame by the packet it came from (the packet's key travels
through the decoder's reordering as ``opaque``), never by the frame's own pts. Decoding from
the start, the ``k``-th frame out of the decoder *is* frame ``k`` (that is what ffmpeg counts);
a read that starts at the beginning checks the predicted index against this count as it goes,
and if a damaged stream loses frames, the index is re-measured (:class:`IndexChanged` tells
the reader). Random access seeks to the last keyframe at or before the target and decodes
forward; a packet whose size is not the size the probe saw under its key is not trusted (see
:meth:`PyAVSource._decode`).

Colour conversion at the source size is bicubic, as the ffmpeg CLI's scaler (exact against it
where the swscale versions agree); resizing is bilinear, the closest to decord's in-decoder
resize (mean 1.2 levels apart at 64x40 against 1.6 for bicubic) and the fastest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from video_lstm.errors import CorruptVideoError
from video_lstm.io.decode.index import Index, measured_seek
from video_lstm.io.decode.probe import Probe
from video_lstm.io.decode.source import clean_message

__all__ = ["IndexChanged", "PyAVSource"]

_CONVERT = av.video.reformatter.Interpolation.BICUBIC
_RESIZE = av.video.reformatter.Interpolation.BILINEAR


class IndexChanged(Exception):
    """The predicted index was wrong (a damaged stream lost frames); it has been re-measured."""


def _rotate_rgb(rgb: np.ndarray, rotation: int) -> np.ndarray:
    return np.rot90(rgb, -rotation // 90) if rotation else rgb


def _rotate_i420(planes: np.ndarray, width: int, height: int, rotation: int) -> np.ndarray:
    """Rotate packed I420 ``(H * 3 // 2, W)`` clockwise; returns ``(W * 3 // 2, H)``."""
    if not rotation:
        return planes
    y = planes[:height]
    uv = planes[height:].reshape(2, height // 2, width // 2)
    k = -rotation // 90
    y = np.rot90(y, k)
    u, v = np.rot90(uv[0], k), np.rot90(uv[1], k)
    h2, w2 = y.shape
    return np.concatenate([y, u.reshape(-1, w2), v.reshape(-1, w2)]).reshape(h2 * 3 // 2, w2)


class PyAVSource:
    """Frame-exact PyAV decoding (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        probe: Probe,
        width: int,
        height: int,
        threads: int,
        hwaccel: str | None = None,
    ) -> None:
        self.path = path
        self.hwaccel = hwaccel  # "cuda": NVDEC where it opens; None after a fallback
        self.probe = probe
        self.width, self.height = width, height  # displayed, after resize
        turned = probe.rotation in (90, 270)
        self.dec_width, self.dec_height = (height, width) if turned else (width, height)
        self.resize = (self.dec_width, self.dec_height) != (probe.coded_width, probe.coded_height)
        self.threads = threads
        self.pixel_format = "rgb24"  # set per read by VideoReader
        # One reformatter keeps its scaler between frames (0.8 -> 0.14 ms a frame at 360p).
        self._reformatter = av.video.reformatter.VideoReformatter()
        self.container: Any = None
        self._careful = False
        self._open()
        self._used = False  # whether the container has been read since it was opened
        self.num_seeks = 0  # seeks and rewinds so far (sequential reading should need none)
        self._frames: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._from_start = False  # self._frames decodes from the start (frames counted)
        self._pos = 0  # index of the next frame self._frames will yield (at least)
        self._seek_pos = 0  # position in the seek list self._frames started from
        self._floor = 0  # frames before this index are ignored (decoded before the seek point)

    @property
    def index(self) -> Index:
        assert self.probe.index is not None
        return self.probe.index

    def _open(self) -> None:
        if self.container is not None:
            self.container.close()
        try:
            self.container = self._open_container()
        except av.error.FFmpegError as exc:
            raise CorruptVideoError(
                self.path, f"PyAV cannot open it: {clean_message(exc)}"
            ) from None
        self.stream = self.container.streams.video[0]
        # Frame threads are fastest and give the same frames as one thread on a clean stream;
        # on a damaged one PyAV loses the frames held in flight when a packet fails, so the
        # measuring pass uses slice threads only, as FFmpeg counts. Damaged files are read
        # with one thread: slice threads conceal the damage differently (measured on
        # flipped_mdat.mp4: 77 levels from ``ffmpeg -threads 1``, whose concealment does not
        # vary between runs, against 0 with one thread).
        damaged = bool(self.probe.damaged)
        self.stream.thread_type = "SLICE" if self._careful or damaged else "AUTO"
        self.stream.codec_context.thread_count = 1 if damaged else self.threads
        self.stream.codec_context.copy_opaque = True

    def _open_container(self) -> Any:
        """The container, decoding on ``self.hwaccel`` (NVDEC for ``"cuda"``) where that opens;
        frames come back in system memory, so everything after the decoder is unchanged. A
        device that does not open (no GPU, no driver, an FFmpeg without it) means CPU decode."""
        if self.hwaccel:
            from av.codec.hwaccel import HWAccel

            try:
                accel = HWAccel(device_type=self.hwaccel, allow_software_fallback=True)
                return av.open(str(self.path), hwaccel=accel)
            except (av.error.FFmpegError, OSError, ValueError):
                self.hwaccel = None
        return av.open(str(self.path))

    def _packet_key(self, packet: av.Packet) -> int | None:
        field_ = self.probe.key_field
        if field_ is None:
            return None
        value = getattr(packet, field_)
        return None if value is None or (field_ == "pos" and value < 0) else int(value)

    def _decode(self, seek_ts: int | None) -> Iterator[av.VideoFrame]:
        """Decoded frames in output order, from the start (``None``) or a keyframe timestamp."""
        if seek_ts is None:
            if self._used:
                self.num_seeks += 1
                self._open()  # rewind by reopening: timestamp seeks cannot always reach 0
        else:
            self.num_seeks += 1
            self.container.seek(seek_ts, stream=self.stream, backward=True, any_frame=False)
        self._used = True
        # After a seek, packets are identified by their decode-order position from the first
        # keyframe, not by their timestamps (see _position_after_seek); -1: not found yet.
        at = -1
        for packet in self.container.demux(self.stream):
            if packet.size:
                if seek_ts is None:
                    packet.opaque = self._packet_key(packet)
                else:
                    at = self._position_after_seek(packet, at, seek_ts)
                    packet.opaque = int(self.probe.packet_keys[at]) if at >= 0 else None
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # a damaged packet: FFmpeg drops its frame too
            yield from frames

    def _position_after_seek(self, packet: av.Packet, previous: int, seek_ts: int) -> int:
        """Decode-order position (in the probe's packets) of a packet read after a seek.

        After a seek into an MPEG program stream the demuxer's parser restarts mid-frame: it
        emits the tail of the frame before with the keyframe's timestamps and gives the next
        packets the timestamps of later ones (measured: ``get_frames([37])`` returned frame 36;
        on MPEG-1 the shift was three packets). So timestamps after a seek identify nothing:
        packets before the first keyframe are ignored, the keyframe is the packet the probe
        saw under its key, or else the keyframe sought (the one at ``seek_ts``), if the size
        agrees, and every later packet is the next one in decode order, as long as the sizes
        agree. ``-1`` (a packet of unknown identity, and all after it): its frames are passed
        over and the reader falls back to an earlier keyframe or the start.

        Args:
            packet: The packet just demuxed (not empty).
            previous: The position of the packet before it (``-1``: none identified, or
                ``-2``: identity lost).
            seek_ts: The timestamp sought.
        """
        probe = self.probe
        size = packet.size
        if previous == -1:  # the first keyframe is still to come
            if not packet.is_keyframe:
                return -1
            key = self._packet_key(packet)
            pos = None if key is None else probe.packet_position(key)
            if pos is not None and int(probe.packet_size[pos]) == size:
                return pos
            sought = np.flatnonzero((probe.packet_ts == seek_ts) & probe.packet_keyframe)
            if sought.size and int(probe.packet_size[sought[0]]) == size:
                return int(sought[0])
            return -2
        pos = previous + 1
        if previous < 0 or pos >= len(probe.packet_size) or int(probe.packet_size[pos]) != size:
            return -2
        return pos

    def _from_start_frames(self) -> Iterator[tuple[int, av.VideoFrame]]:
        """``(index, frame)`` decoding from the start: the ``k``-th frame out is frame ``k``.

        The predicted index is checked on the way; a mismatch re-measures it and raises
        :class:`IndexChanged`.
        """
        index = self.probe.index
        check = index is not None and not index.exact
        count = 0
        for frame in self._decode(None):
            if check and (count >= len(index) or index.keys[count] != _as_key(frame.opaque)):
                self.measure()
                raise IndexChanged
            yield count, frame
            count += 1
        if check and count != len(index):
            self.measure()
            raise IndexChanged

    def _seeked_frames(self, seek_ts: int) -> Iterator[tuple[int, av.VideoFrame]]:
        lookup = self.index.lookup
        for frame in self._decode(seek_ts):
            i = lookup.get(_as_key(frame.opaque))
            if i is not None:
                yield i, frame

    def measure(self) -> None:
        """Decode the whole stream once from the start: the exact index.

        After a mismatch (the predicted index was wrong: a damaged stream), ``probe.damaged``
        says so and reading goes on with one thread.
        """
        self._frames = None
        self._careful = True
        self._used = True  # reopen with the careful settings
        keys = [_as_key(frame.opaque) for frame in self._decode(None)]
        self._frames = None
        self._careful = False
        if any(k is None for k in keys) or len(set(keys)) != len(keys):
            # Frames cannot be told apart after a seek: decode from the start for every read.
            arr = np.arange(len(keys), dtype=np.int64)
            self.probe.index = Index(arr, exact=True, seek=[])
            self.probe.key_field = None
            self._open()
            return
        arr = np.asarray(keys, dtype=np.int64)
        predicted = self.probe.index
        if (
            predicted is not None
            and not predicted.exact
            and not np.array_equal(predicted.keys, arr)
        ):
            # The packets promised other frames than the decoder gives: a damaged stream
            # (decord, which cannot see this, is refused for it from now on).
            self.probe.damaged = self.probe.damaged or (
                f"FFmpeg decodes {len(arr)} frames where the packets promise {len(predicted)}"
            )
        self.probe.index = Index(arr, exact=True, seek=self._measured_seek(arr))
        self._open()  # with the threads a damaged stream is read with

    def _measured_seek(self, keys: np.ndarray) -> list[tuple[int, int]]:
        probe = self.probe
        if probe.key_field is None:
            return []
        return measured_seek(keys, probe.packet_keys, probe.packet_keyframe, probe.packet_ts)

    def _to_array(self, frame: av.VideoFrame) -> np.ndarray:
        rotation = self.probe.rotation
        if self.pixel_format == "yuv420p" and not self.resize:
            planes = frame.to_ndarray(format="yuv420p")  # (H * 3 // 2, W): no RGB conversion
            return _rotate_i420(planes, self.dec_width, self.dec_height, rotation)
        rgb = self._reformatter.reformat(
            frame,
            width=self.dec_width,
            height=self.dec_height,
            format="rgb24",
            interpolation=_RESIZE if self.resize else _CONVERT,
        ).to_ndarray()
        return _rotate_rgb(rgb, rotation)

    def _start(self, seek_pos: int) -> None:
        seek = self.index.seek if self.probe.index is not None else []
        self._seek_pos = seek_pos
        if seek_pos < 0 or not seek:
            self._frames, self._pos, self._from_start = self._from_start_frames(), 0, True
        else:
            frame, ts = seek[seek_pos]
            self._frames, self._pos, self._from_start = self._seeked_frames(ts), frame, False
        self._floor = self._pos

    def _advance_to(self, target: int) -> av.VideoFrame | None:
        """Decode forward to ``target``; None if it is passed or the stream ends first."""
        assert self._frames is not None
        for index, frame in self._frames:
            if index < self._floor:
                continue  # leading frames of an open GOP after a seek (their references are gone)
            self._pos = index + 1
            if index == target:
                return frame
            if index > target:
                break
        self._frames = None
        return None

    def read(self, targets: np.ndarray, out: np.ndarray) -> None:
        """Decode sorted unique ``targets`` into ``out[i]``.

        Raises:
            IndexChanged: The index was re-measured; the caller re-validates its targets.
        """
        if self.probe.index is None:
            self.measure()
        for slot, target in enumerate(targets.tolist()):
            seek = self.index.seek
            seek_pos = int(np.searchsorted(self.index.seek_frames, target, side="right")) - 1
            # A keyframe at 0 or none before the target: decode from the start.
            if seek_pos >= 0 and seek[seek_pos][0] == 0:
                seek_pos = -1
            # Re-seek only when going back, or when a keyframe lies between here and the target
            # (seeking there is cheaper than decoding the frames before it).
            if (
                self._frames is None
                or target < self._pos
                or (seek_pos >= 0 and seek[seek_pos][0] > self._pos)
            ):
                self._start(seek_pos)
            frame = self._advance_to(target)
            if frame is None and not self._from_start:
                # Timestamp seeking can land after the keyframe (MPEG-PS byte seeks): try one
                # keyframe earlier, then from the very start.
                if self._seek_pos > 0:
                    self._start(self._seek_pos - 1)
                    frame = self._advance_to(target)
                if frame is None:
                    self._start(-1)
                    frame = self._advance_to(target)
            if frame is None:
                if not self.index.exact:
                    self.measure()
                    raise IndexChanged
                raise CorruptVideoError(self.path, f"frame {target} could not be decoded")
            out[slot] = self._to_array(frame)

    def close(self) -> None:
        self._frames = None
        if self.container is not None:
            self.container.close()
            self.container = None


def _as_key(opaque: Any) -> int | None:
    return int(opaque) if isinstance(opaque, (int, np.integer)) else None

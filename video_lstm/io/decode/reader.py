"""Open a video and read frames by index, exactly the frames FFmpeg shows: decord where it is
right, PyAV everywhere else.

**Frame index.** Frame ``i`` is the ``i``-th frame that ``ffmpeg -i F -map 0:v -f null -``
decodes: edit lists honoured (packets an MP4 edit list discards are not frames), display
rotation applied (as ffmpeg's autorotate does), frames a damaged stream loses not counted.
Indices may be negative, Python style; anything outside ``[-num_frames, num_frames)`` raises
``FrameIndexError``.

**How.** Every file is first probed with PyAV: the video packets are demuxed (no decoding, what
``ffprobe -count_packets`` does) and the first frame is decoded (pixel format, display
rotation). From the packets the reader *predicts* the index: the shown (not discarded)
packets in presentation-timestamp order. The prediction is trusted where timestamps are
presentation times (MP4/MOV, Matroska/WebM, MPEG-PS/TS, Ogg, FLV); elsewhere (AVI, whose
timestamps are decode order, so B-frames come out "1, 2, 3, 5, 4"), or when timestamps are
missing or repeat, or the container's index is damaged, the index is *measured* by one full
decode pass at open (cached per file for the process).

PyAV identifies every decoded frame by the packet it came from (the packet's key travels
through the decoder's reordering as ``opaque``), never by the frame's own pts. Decoding from
the start, the ``k``-th frame out of the decoder *is* frame ``k`` (that is what ffmpeg counts);
a read that starts at the beginning checks the predicted index against this count as it goes,
and if a damaged stream loses frames, the index is re-measured (``on_error="skip"``) or the
file is refused (``on_error="raise"``). Random access seeks to the last keyframe at or before
the target and decodes forward.

**decord** (the fastest random access) is used by ``backend="auto"`` only where its index is
the same: MP4/MOV and Matroska/WebM, no discarded packets, no rotation, 8-bit 4:2:0 at an even
size, a consistent container index (decord reads the header's count and can hang in native
code decoding past the real end, dmlc/decord#373), and its resize gives the right size (it
returns mis-sized buffers for some widths). A decord error on read falls back to PyAV.
``backend="decord"`` on a file it cannot read frame-exactly raises ``BackendUnavailableError``.

**Colour.** Both backends convert with FFmpeg's swscale and give the same pixels on 8-bit
4:2:0 at even sizes (what decord is used for); PyAV converts with bicubic chroma, as the ffmpeg
CLI does. Against the ffmpeg 9 CLI: identical on 8-bit 4:2:0/4:2:2/4:4:4, full and limited
range, BT.601 and BT.709 at even sizes; on 10-bit and odd-sized 4:2:0 the swscale versions
differ by at most 2 levels on average (tested in ``tests/test_decode_corpus.py``).

**Resize** happens inside the decoder. ``size=(w, h)`` is used as is; ``size=s`` (an int) sets
the short side to ``s`` and scales the long side to keep the aspect ratio, rounded to the
nearest even number. Sizes are those of the displayed (rotated) frame. Resized frames are not
bit-identical between backends (decord scales in its own filter graph; PyAV bilinear): about
1 level apart on average.

**Damaged streams** (``on_error``): ``"skip"`` (default) keeps the frames FFmpeg decodes and
reports how many were lost (``frames_lost``); ``"raise"`` refuses a file that loses any frame
with ``CorruptVideoError``.

Example:
    >>> with open_video("clip.mp4", size=224) as video:
    ...     clip = video.get_frames([0, 2, 4])  # 640x480 source: (3, 224, 298, 3) uint8
    ...     for start, frames in video.iter_chunks(64):
    ...         ...
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from video_lstm.errors import (
    BackendUnavailableError,
    CorruptVideoError,
    EmptyVideoError,
    FrameIndexError,
    NotAVideoError,
    NoVideoStreamError,
    VideoError,
    VideoNotFoundError,
)
from video_lstm.io.formats import VIDEO_EXTENSIONS
from video_lstm.types import VideoInfo

__all__ = [
    "BACKENDS",
    "ON_ERROR",
    "VIDEO_EXTENSIONS",
    "VideoReader",
    "open_video",
    "output_size",
]

BACKENDS = ("auto", "decord", "pyav")
ON_ERROR = ("skip", "raise")

# Demuxers (PyAV ``container.format.name``) whose packet timestamps are presentation times:
# the index can be predicted from the packets. Anything else is measured by a decode pass.
_PTS_FORMATS = frozenset(
    {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpeg", "mpegts", "ogg", "flv"}
)
# Demuxers where decord's index matches FFmpeg's (when the file passes the other checks).
_DECORD_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
# Demuxers whose packet positions are per packet (a sample table / index): overlapping or
# out-of-file byte ranges there mean a damaged index.
_BYTE_INDEXED_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"})
_SAMPLE_TABLE_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2"})
# Pixel formats decord converts exactly as PyAV does (8-bit 4:2:0, and lossless RGB layouts).
_DECORD_PIX_FMTS = frozenset({"yuv420p", "yuvj420p", "bgr0", "bgra", "rgba", "rgb24", "bgr24"})

# Leading bytes of containers we recognise: such a file that cannot be opened is damaged
# (e.g. an MP4 cut before its index) rather than "not a video".
_SIGNATURES = (
    (4, b"ftyp"),  # MP4 / MOV
    (4, b"moov"),
    (4, b"mdat"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (0, b"FLV"),
    (0, b"\x47"),  # MPEG transport stream (sync byte)
)

# Colour conversion at the source size: bicubic chroma, as the ffmpeg CLI's scaler (exact
# against it where the swscale versions agree). Resizing: bilinear, the closest to decord's
# in-decoder resize (mean 1.2 levels apart at 64x40 against 1.6 for bicubic) and the fastest.
_CONVERT = av.video.reformatter.Interpolation.BICUBIC
_RESIZE = av.video.reformatter.Interpolation.BILINEAR


def output_size(width: int, height: int, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """The ``(width, height)`` frames are decoded to, for a source of ``width`` x ``height``.

    Args:
        width: Source width (as displayed, after rotation).
        height: Source height (as displayed).
        size: ``None`` (keep), ``(w, h)`` (exact), or an int: the short side, with the long side
            scaled to keep the aspect ratio and rounded to the nearest even number (at least 2).

    Returns:
        ``(w, h)``.
    """
    if size is None:
        return width, height
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        s = int(size)
        if s <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if width <= height:
            return s, max(2, round(height * s / width / 2) * 2)
        return max(2, round(width * s / height / 2) * 2), s
    w, h = (int(v) for v in size)
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return w, h


# ---------------------------------------------------------------------------------- probe


@dataclass
class _Index:
    """Which decoded frame is frame ``i``: ``keys[i]`` is the key of the packet it comes from.

    ``exact``: measured by decoding from the start (what FFmpeg shows, by definition); else
    predicted from the packets. ``seek``: ``(frame index, seek timestamp)`` of keyframes,
    ascending; decoding from that timestamp yields frames ``>= frame index`` correctly.
    """

    keys: np.ndarray  # (num_frames,) int64
    exact: bool
    seek: list[tuple[int, int]]
    lookup: dict[int, int] = field(init=False)

    seek_frames: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.lookup = {int(k): i for i, k in enumerate(self.keys.tolist())}
        self.seek_frames = np.asarray([f for f, _ in self.seek], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class _Probe:
    """What a packet demux (and the first decoded frame) tell about a file."""

    format_name: str
    coded_width: int  # as stored (before rotation)
    coded_height: int
    rotation: int  # clockwise degrees applied for display: 0, 90, 180, 270
    pix_fmt: str
    fps: float
    header_frames: int  # the container's nominal count (0 when absent)
    packets: int  # shown (not discarded) non-empty video packets
    discarded: int  # packets an edit list discards
    key_field: str | None  # packet attribute identifying packets: "dts", "pos", "pts" or None
    damaged: str  # why the packets cannot be trusted ("" if they can)
    index: _Index | None  # predicted (or, once measured, exact) index; None: measure it
    packet_keys: np.ndarray  # keys of all non-empty packets, decode order
    packet_keyframe: np.ndarray  # bool per packet
    packet_ts: np.ndarray  # seek timestamp per packet (dts, else pts; _NO_TS when neither)

    @property
    def width(self) -> int:
        """Displayed width."""
        return self.coded_height if self.rotation in (90, 270) else self.coded_width

    @property
    def height(self) -> int:
        return self.coded_width if self.rotation in (90, 270) else self.coded_height


# Probes of recently opened files (the pipeline opens each video twice, a training set many
# times). Bounded by files and by packets held (about 100 bytes each with the index).
_CACHE: OrderedDict[tuple, _Probe] = OrderedDict()
_CACHE_SIZE = 128
_CACHE_PACKETS = 1_000_000
_NO_TS = np.iinfo(np.int64).min
_CACHE_LOCK = threading.Lock()


def _classify_open_failure(path: Path, exc: BaseException) -> VideoError:
    with open(path, "rb") as f:
        head = f.read(16)
    if any(head[off : off + len(sig)] == sig for off, sig in _SIGNATURES):
        return CorruptVideoError(
            path,
            "looks like a media container but cannot be opened (truncated or damaged): "
            f"{_clean_message(exc)}",
        )
    return NotAVideoError(path, f"not a video file any backend can open: {_clean_message(exc)}")


def _check_file(path: Path) -> os.stat_result:
    if not path.exists():
        raise VideoNotFoundError(path, "no such file")
    if not path.is_file():
        raise NotAVideoError(path, "not a regular file")
    st = path.stat()
    if st.st_size == 0:
        raise EmptyVideoError(path, "file is empty (0 bytes)")
    return st


def _rotation_of(frame: av.VideoFrame) -> int:
    """Clockwise display rotation of a decoded frame (0, 90, 180, 270), as autorotate applies."""
    try:
        ccw = float(frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):
        return 0
    return (-round(ccw / 90) * 90) % 360


def _unique(values: list[int | None]) -> bool:
    return all(v is not None for v in values) and len(set(values)) == len(values)


def _probe(path: Path) -> _Probe:
    """Probe ``path`` (cached per path, size and mtime); raise a ``VideoError`` for a bad file."""
    st = _check_file(path)
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    probe = _probe_uncached(path, st.st_size)
    with _CACHE_LOCK:
        _CACHE[key] = probe
        held = sum(len(p.packet_keys) for p in _CACHE.values())
        while len(_CACHE) > 1 and (len(_CACHE) > _CACHE_SIZE or held > _CACHE_PACKETS):
            held -= len(_CACHE.popitem(last=False)[1].packet_keys)
    return probe


def _probe_uncached(path: Path, file_size: int) -> _Probe:
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise _classify_open_failure(path, exc) from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise NoVideoStreamError(path, f"no video stream (streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise CorruptVideoError(path, "video stream has no frame size")
        ctx.thread_count = 1  # the first frame comes out without frame-thread delay
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        pts: list[int | None] = []
        dts: list[int | None] = []
        pos: list[int] = []
        size: list[int] = []
        keyframe: list[bool] = []
        discard: list[bool] = []
        first: av.VideoFrame | None = None
        empty = 0  # zero-size packets with a timestamp (AVI "dropped frames"): no frame
        damaged = ""
        try:
            for packet in container.demux(stream):
                if first is None:
                    with contextlib.suppress(av.error.FFmpegError):
                        for frame in packet.decode():
                            first = frame
                            break
                if not packet.size:
                    empty += packet.dts is not None or packet.pts is not None
                    continue
                pts.append(packet.pts)
                dts.append(packet.dts)
                pos.append(packet.pos if packet.pos is not None else -1)
                size.append(packet.size)
                keyframe.append(bool(packet.is_keyframe))
                discard.append(bool(packet.is_discard))
        except av.error.FFmpegError as exc:
            damaged = f"the container is damaged after {len(pts)} packets ({_clean_message(exc)})"
        if not pts:
            raise EmptyVideoError(path, "the video stream holds no frames")
        fmt = container.format.name
        rotation = _rotation_of(first) if first is not None else 0
        pix_fmt = first.format.name if first is not None else (ctx.pix_fmt or "")
        coded_width, coded_height = ctx.width, ctx.height
        # The header's count is the sample count only in MP4/MOV; an AVI header also counts
        # the frames a capture dropped (no packet, no frame), other containers have none.
        header_frames = int(stream.frames or 0) if fmt in _SAMPLE_TABLE_FORMATS else 0
        fps = float(rate) if rate else 0.0

    # Packet byte ranges outside the file or overlapping: a damaged sample table (MP4 stsz).
    if not damaged and header_frames and header_frames not in (len(pts), len(pts) + empty):
        damaged = f"the header claims {header_frames} frames, the stream holds {len(pts)} packets"
    p = np.asarray(pos, dtype=np.int64)
    n = np.asarray(size, dtype=np.int64)
    if not damaged and fmt in _BYTE_INDEXED_FORMATS and np.all(p >= 0):
        if np.any(p + n > file_size):
            damaged = "packets extend past the end of the file (truncated or damaged index)"
        else:
            order = np.argsort(p, kind="stable")
            if np.any((p[order] + n[order])[:-1] > p[order][1:]):
                damaged = "packets overlap (damaged sample table)"

    key_field = None
    for name, values in (("dts", dts), ("pos", [v if v >= 0 else None for v in pos]), ("pts", pts)):
        if _unique(values):
            key_field = name
            break
    keys = {"dts": dts, "pos": pos, "pts": pts}.get(key_field or "", list(range(len(pts))))
    packet_keys = np.asarray(keys, dtype=np.int64)
    ts_list = [d if d is not None else q for d, q in zip(dts, pts, strict=True)]
    packet_ts = np.asarray([_NO_TS if t is None else t for t in ts_list], dtype=np.int64)
    shown = [i for i in range(len(pts)) if not discard[i]]

    index = None
    if (
        fmt in _PTS_FORMATS
        and key_field is not None
        and not damaged
        and _unique([pts[i] for i in shown])
        and all(t is not None for t in ts_list)
    ):
        shown_pts = np.asarray([pts[i] for i in shown], dtype=np.int64)
        order = np.argsort(shown_pts, kind="stable")
        sorted_pts = shown_pts[order]
        seek = []
        for i in range(len(pts)):
            if keyframe[i] and pts[i] is not None:
                first_shown = int(np.searchsorted(sorted_pts, pts[i], side="left"))
                if first_shown < len(sorted_pts):
                    seek.append((first_shown, int(packet_ts[i])))
        index = _Index(packet_keys[shown][order], exact=False, seek=_monotone(seek))
    return _Probe(
        format_name=fmt,
        coded_width=coded_width,
        coded_height=coded_height,
        rotation=rotation,
        pix_fmt=pix_fmt,
        fps=fps,
        header_frames=max(0, header_frames - empty) if header_frames > len(pts) else header_frames,
        packets=len(shown),
        discarded=len(pts) - len(shown),
        key_field=key_field,
        damaged=damaged,
        index=index,
        packet_keys=packet_keys,
        packet_keyframe=np.asarray(keyframe, dtype=bool),
        packet_ts=packet_ts,
    )


def _monotone(seek: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Seek points sorted by frame index, keeping for each index the latest keyframe."""
    best: dict[int, int] = {}
    for frame, ts in seek:
        best[frame] = ts if frame not in best else max(best[frame], ts)
    return sorted(best.items())


def _measured_seek(probe: _Probe, keys: np.ndarray) -> list[tuple[int, int]]:
    """Seek points of a measured index: a keyframe's own frame index and its timestamp."""
    lookup = {int(k): i for i, k in enumerate(keys.tolist())}
    seek = []
    if probe.key_field is None:
        return seek
    for key, is_key, ts in zip(
        probe.packet_keys.tolist(),
        probe.packet_keyframe.tolist(),
        probe.packet_ts.tolist(),
        strict=True,
    ):
        frame = lookup.get(key)
        if is_key and frame is not None and ts != _NO_TS:
            seek.append((frame, int(ts)))
    # A seek point must not come after a later frame's keyframe in frame order.
    out: list[tuple[int, int]] = []
    for frame, ts in sorted(seek):
        if not out or (frame > out[-1][0] and ts > out[-1][1]):
            out.append((frame, ts))
    return out


# ---------------------------------------------------------------------------------- PyAV


class _IndexChanged(Exception):
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


class _PyAVSource:
    """Frame-exact PyAV decoding (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        probe: _Probe,
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
    def index(self) -> _Index:
        assert self.probe.index is not None
        return self.probe.index

    def _open(self) -> None:
        if self.container is not None:
            self.container.close()
        try:
            self.container = self._open_container()
        except av.error.FFmpegError as exc:
            raise CorruptVideoError(
                self.path, f"PyAV cannot open it: {_clean_message(exc)}"
            ) from None
        self.stream = self.container.streams.video[0]
        # Frame threads are fastest and give the same frames as one thread on a clean stream;
        # on a damaged one PyAV loses the frames held in flight when a packet fails, so
        # damaged files (and the measuring pass) use slice threads only, as FFmpeg counts.
        careful = self._careful or self.probe.damaged
        self.stream.thread_type = "SLICE" if careful else "AUTO"
        self.stream.codec_context.thread_count = self.threads
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
        for packet in self.container.demux(self.stream):
            if packet.size:
                packet.opaque = self._packet_key(packet)
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # a damaged packet: FFmpeg drops its frame too
            yield from frames

    def _from_start_frames(self) -> Iterator[tuple[int, av.VideoFrame]]:
        """``(index, frame)`` decoding from the start: the ``k``-th frame out is frame ``k``.

        The predicted index is checked on the way; a mismatch re-measures it and raises
        :class:`_IndexChanged`.
        """
        index = self.probe.index
        check = index is not None and not index.exact
        count = 0
        for frame in self._decode(None):
            if check and (count >= len(index) or index.keys[count] != _as_key(frame.opaque)):
                self.measure()
                raise _IndexChanged
            yield count, frame
            count += 1
        if check and count != len(index):
            self.measure()
            raise _IndexChanged

    def _seeked_frames(self, seek_ts: int) -> Iterator[tuple[int, av.VideoFrame]]:
        lookup = self.index.lookup
        for frame in self._decode(seek_ts):
            i = lookup.get(_as_key(frame.opaque))
            if i is not None:
                yield i, frame

    def measure(self) -> None:
        """Decode the whole stream once from the start: the exact index.

        After a mismatch (the predicted index was wrong: a damaged stream), reading goes on
        with slice threads only.
        """
        mismatch = self.probe.index is not None
        self._frames = None
        self._careful = True
        self._used = True  # reopen with the careful settings
        keys = [_as_key(frame.opaque) for frame in self._decode(None)]
        self._frames = None
        self._careful = mismatch
        self._open()
        if any(k is None for k in keys) or len(set(keys)) != len(keys):
            # Frames cannot be told apart after a seek: decode from the start for every read.
            arr = np.arange(len(keys), dtype=np.int64)
            self.probe.index = _Index(arr, exact=True, seek=[])
            self.probe.key_field = None
            return
        arr = np.asarray(keys, dtype=np.int64)
        self.probe.index = _Index(arr, exact=True, seek=_measured_seek(self.probe, arr))

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
            _IndexChanged: The index was re-measured; the caller re-validates its targets.
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
                    raise _IndexChanged
                raise CorruptVideoError(self.path, f"frame {target} could not be decoded")
            out[slot] = self._to_array(frame)

    def close(self) -> None:
        self._frames = None
        if self.container is not None:
            self.container.close()
            self.container = None


def _as_key(opaque: Any) -> int | None:
    return int(opaque) if isinstance(opaque, (int, np.integer)) else None


# ---------------------------------------------------------------------------------- decord


def _copy_into(array: Any, dst: np.ndarray) -> None:
    """Copy a decord NDArray straight into ``dst`` (C-contiguous uint8 of the same size).

    ``asnumpy()`` allocates a new array and we would copy it again into the output batch;
    this is ``asnumpy`` without the allocation (~10% of streaming time at 360p, measured).
    decord checks the byte count, so a size mismatch raises instead of corrupting memory.
    """
    try:
        from decord._ffi.base import _LIB, check_call
    except ImportError:  # another decord layout: the plain, one-copy-more path
        dst[...] = array.asnumpy()
        return
    check_call(
        _LIB.DECORDArrayCopyToBytes(
            array.handle, dst.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(dst.nbytes)
        )
    )


class _DecordSource:
    """decord's VideoReader; indices reach it only after validation against the true count.

    Runs of consecutive frames are read with ``seek_accurate`` + ``next()``: at 720p decord's
    ``get_batch`` decodes 3-4x slower than ``next()`` even for consecutive indices (measured,
    decord 0.6.0), and a run that continues where the last read stopped needs no seek at all.
    Scattered single frames go through one ``get_batch`` call (decord's own keyframe logic).
    """

    def __init__(self, vr: Any) -> None:
        self.vr = vr
        self._pos = 0  # frame next() returns; -1 when unknown (after get_batch)

    def read(self, targets: np.ndarray, out: np.ndarray) -> None:
        vr = self.vr
        # Split sorted unique targets into runs of consecutive indices.
        breaks = np.flatnonzero(np.diff(targets) != 1) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [len(targets)]])
        singles: list[int] = []
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            first = int(targets[a])
            if b - a == 1 and first != self._pos:
                singles.append(a)
                continue
            if first != self._pos:
                vr.seek_accurate(first)
            for slot in range(a, b):
                _copy_into(vr.next(), out[slot])
            self._pos = int(targets[b - 1]) + 1
        if singles:
            out[singles] = vr.get_batch(targets[singles]).asnumpy()
            self._pos = -1

    def close(self) -> None:
        self.vr = None


def _open_decord(path: Path, width: int, height: int, threads: int, resize: bool) -> Any:
    try:
        import decord
    except ImportError as exc:
        raise BackendUnavailableError(
            path, f"decord is not installed ({exc}); pip install decord"
        ) from None
    kwargs = {"width": width, "height": height} if resize else {}
    return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads, **kwargs)


def _decord_resize_works(vr: Any, width: int, height: int) -> bool:
    try:
        shape = vr.get_batch([0]).shape
    except Exception:  # DECORDError: buffer size mismatch
        return False
    vr.seek(0)
    return tuple(shape) == (1, height, width, 3)


def _decord_refusal(probe: _Probe) -> str:
    """Why decord's frames would not be FFmpeg's for this file ("" when they are)."""
    if probe.format_name not in _DECORD_FORMATS:
        return f"decord is not frame-exact on {probe.format_name!r} containers"
    if probe.damaged:
        return f"decord is not frame-exact on a damaged file: {probe.damaged}"
    if probe.index is None or probe.index.exact:
        return "decord is not frame-exact on this file: its timestamps do not give the frame order"
    if probe.discarded:
        return f"decord is not frame-exact on files with edit lists ({probe.discarded} packets discarded)"
    if probe.rotation:
        return f"decord does not apply the display rotation ({probe.rotation} degrees)"
    if probe.pix_fmt not in _DECORD_PIX_FMTS or probe.coded_width % 2 or probe.coded_height % 2:
        return (
            f"decord converts {probe.pix_fmt} at {probe.coded_width}x{probe.coded_height} "
            "differently from FFmpeg"
        )
    return ""


# ---------------------------------------------------------------------------------- reader


class VideoReader:
    """An open video. Use :func:`open_video` to create one; close it (or use ``with``).

    Attributes:
        path: The file.
        backend: ``"decord"`` or ``"pyav"``, the backend actually used for this file.
        num_frames: Frames FFmpeg decodes (may be fewer than the container claims).
        fps: Average frame rate.
        width: Frame width after rotation and any resize.
        height: Frame height after rotation and any resize.
        rotation: Clockwise display rotation applied (0, 90, 180, 270).
        frames_lost: Frames of a damaged stream that do not decode (``on_error="skip"``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        backend: str = "auto",
        size: int | tuple[int, int] | None = None,
        num_threads: int = 0,
        on_error: str = "skip",
        hwaccel: str | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.path = Path(path)
        self.on_error = on_error
        self._requested = backend
        self._threads = num_threads
        self._hwaccel = hwaccel
        probe = _probe(self.path)
        self._probe = probe
        self.width, self.height = output_size(probe.width, probe.height, size)
        self.fps = probe.fps
        self.rotation = probe.rotation
        self._source: _DecordSource | _PyAVSource | None = None

        refusal = _decord_refusal(probe)
        if backend == "decord" and refusal:
            raise BackendUnavailableError(self.path, f"{refusal}; use backend='auto' or 'pyav'")
        vr = None
        if backend == "decord" or (backend == "auto" and not refusal and not hwaccel):
            vr = self._try_decord()
        if vr is not None:
            self.backend = "decord"
            self._source = _DecordSource(vr)
        else:
            self._use_pyav()
        self._check_damage()

    def _try_decord(self) -> Any:
        probe, forced = self._probe, self._requested == "decord"
        resize = (self.width, self.height) != (probe.width, probe.height)
        try:
            vr = _open_decord(self.path, self.width, self.height, self._threads, resize)
        except BackendUnavailableError:
            if forced:
                raise
            return None
        except Exception as exc:  # decord raises DECORDError / RuntimeError on any failure
            if forced:
                raise CorruptVideoError(
                    self.path, f"decord cannot open it: {_clean_message(exc)}"
                ) from None
            return None
        if resize and not _decord_resize_works(vr, self.width, self.height):
            # decord 0.6.0 returns mis-sized buffers for some target widths (16, 24, 48, 72
            # measured) and then fails every read.
            if forced:
                raise BackendUnavailableError(
                    self.path,
                    f"decord cannot resize to {self.width}x{self.height}; "
                    "use backend='auto' or 'pyav'",
                )
            return None
        if len(vr) != probe.packets:
            if forced:
                raise BackendUnavailableError(
                    self.path,
                    f"decord counts {len(vr)} frames where the stream holds {probe.packets}; "
                    "use backend='auto' or 'pyav'",
                )
            return None
        return vr

    def _use_pyav(self) -> None:
        if self._source is not None:
            self._source.close()
        self.backend = "pyav"
        self._source = _PyAVSource(
            self.path, self._probe, self.width, self.height, self._threads, self._hwaccel
        )
        if self._probe.index is None:
            self._source.measure()

    def _check_damage(self) -> None:
        probe = self._probe
        if self.num_frames == 0:
            raise CorruptVideoError(self.path, "no frame of the video stream decodes")
        if self.on_error == "raise" and (self.frames_lost or probe.damaged):
            reason = probe.damaged or f"{self.frames_lost} of {self._expected} frames do not decode"
            raise CorruptVideoError(self.path, f"damaged stream: {reason} (on_error='raise')")

    def measure(self) -> int:
        """Decode the whole stream once so that ``num_frames`` is exact, and return it.

        Not needed for reading (a damaged stream is re-measured when it is read from the
        start); for a caller that learnt from another process that frames are missing.
        """
        probe = self._probe
        if probe.index is None or not probe.index.exact:
            source = self._source
            if isinstance(source, _PyAVSource):
                source.measure()
            else:
                tmp = _PyAVSource(self.path, probe, self.width, self.height, self._threads)
                try:
                    tmp.measure()
                finally:
                    tmp.close()
                self._use_pyav()  # a measured index is one decord cannot follow
        self._check_damage()
        return self.num_frames

    # ----------------------------------------------------------------------------- metadata

    @property
    def num_frames(self) -> int:
        index = self._probe.index
        return len(index) if index is not None else self._probe.packets

    @property
    def hwaccel(self) -> str | None:
        """The device decoding (``"cuda"``: NVDEC), or ``None`` for CPU decode."""
        return getattr(self._source, "hwaccel", None)

    @property
    def _expected(self) -> int:
        probe = self._probe
        return max(probe.packets, probe.header_frames - probe.discarded)

    @property
    def frames_lost(self) -> int:
        """Frames the stream should hold (packets, or the header's count) that do not decode."""
        return max(0, self._expected - self.num_frames)

    @property
    def duration(self) -> float:
        """Length in seconds (``num_frames / fps``)."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    @property
    def info(self) -> VideoInfo:
        """Metadata as a :class:`~video_lstm.types.VideoInfo`."""
        return VideoInfo(
            path=str(self.path),
            backend=self.backend,
            num_frames=self.num_frames,
            fps=self.fps,
            width=self.width,
            height=self.height,
            rotation=self.rotation,
            frames_lost=self.frames_lost,
        )

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return (
            f"VideoReader({str(self.path)!r}, backend={self.backend!r}, num_frames={self.num_frames}, "
            f"fps={self.fps:g}, size={self.width}x{self.height}, rotation={self.rotation})"
        )

    # ----------------------------------------------------------------------------- frames

    def _normalize(self, indices: Sequence[int] | np.ndarray | int) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim == 0:
            idx = idx.reshape(1)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise TypeError(
                f"{self.path}: indices must be a 1-D sequence of ints, got {idx.dtype} {idx.shape}"
            )
        idx = idx.astype(np.int64, copy=False)
        n = self.num_frames
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            lost = (
                f"; {self.frames_lost} frames of the damaged stream do not decode"
                if (self.frames_lost)
                else ""
            )
            raise FrameIndexError(
                self.path,
                f"frame index {int(idx[bad][0])} out of range for {n} frames "
                f"(valid: -{n}..{n - 1}){lost}",
            )
        return np.where(idx < 0, idx + n, idx)

    def get_frames(
        self, indices: Sequence[int] | np.ndarray, *, pixel_format: str = "rgb24"
    ) -> np.ndarray:
        """Decode frames by index, in the order given (repeats allowed).

        Args:
            indices: Frame indices; negatives count from the end (``-1`` = last frame).
            pixel_format: ``"rgb24"``, or ``"yuv420p"`` for the decoder's own I420 planes with
                no colour conversion (PyAV backend, even size, no resize: what the H.264
                writers want, see :meth:`supports_i420`).

        Returns:
            ``(N, H, W, 3)`` uint8 RGB, ``out[k]`` is frame ``indices[k]``; for ``yuv420p``
            ``(N, H * 3 // 2, W)`` (Y, then U and V packed).

        Raises:
            FrameIndexError: An index outside ``[-num_frames, num_frames)``.
            CorruptVideoError: A frame that should exist does not decode.
        """
        if self._source is None:
            raise ValueError(f"{self.path}: reader is closed")
        if pixel_format not in ("rgb24", "yuv420p"):
            raise ValueError(f"pixel_format must be 'rgb24' or 'yuv420p', got {pixel_format!r}")
        if pixel_format == "yuv420p" and not self.supports_i420:
            raise ValueError(
                f"{self.path}: yuv420p frames need the PyAV backend, an even size and no "
                f"resize (backend {self.backend}, {self.width}x{self.height})"
            )
        for _ in range(3):
            idx = self._normalize(indices)
            try:
                return self._get(idx, pixel_format)
            except _IndexChanged:
                self._check_damage()  # on_error="raise" refuses the file here
        raise CorruptVideoError(self.path, "the frame index keeps changing while decoding")

    def _get(self, idx: np.ndarray, pixel_format: str) -> np.ndarray:
        shape = (self.height, self.width, 3)
        if pixel_format == "yuv420p":
            shape = (self.height * 3 // 2, self.width)
        if idx.size == 0:
            return np.empty((0, *shape), dtype=np.uint8)
        ascending = idx.size == 1 or bool(np.all(idx[1:] > idx[:-1]))
        if ascending:
            targets, inverse = idx, None
        else:
            targets, inverse = np.unique(idx, return_inverse=True)
        frames = self._read(targets, shape, pixel_format)
        return frames if inverse is None else frames[inverse]

    @property
    def supports_i420(self) -> bool:
        """Whether ``pixel_format="yuv420p"`` works: PyAV, even size, decoded at source size."""
        source = self._source
        return (
            isinstance(source, _PyAVSource)
            and not source.resize
            and self.width % 2 == 0
            and self.height % 2 == 0
        )

    def _read(self, targets: np.ndarray, shape: tuple[int, ...], pixel_format: str) -> np.ndarray:
        source = self._source
        out = np.empty((len(targets), *shape), dtype=np.uint8)
        if isinstance(source, _DecordSource):
            try:
                source.read(targets, out)
                return out
            except Exception as exc:  # DECORDError: never let a native traceback escape
                source._pos = -1
                if self._requested == "decord":
                    raise CorruptVideoError(
                        self.path, f"decord failed to decode: {_clean_message(exc)}"
                    ) from None
            # A stream decord opens but cannot decode (e.g. some VP9): PyAV from here on.
            self._use_pyav()
            source = self._source
        assert isinstance(source, _PyAVSource)
        source.pixel_format = pixel_format
        source.read(targets, out)
        return out

    def iter_chunks(
        self, chunk_size: int, step: int = 1, *, pixel_format: str = "rgb24"
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Stream the video in chunks (bounded memory).

        Chunk ``k`` holds the frames ``start, start + step, ..., start + (n - 1) * step`` where
        ``start = k * chunk_size * step`` is the *source frame index* of its first frame and
        ``n <= chunk_size`` (only the last chunk is shorter). With ``step=1`` that is frames
        ``start .. start + n - 1``; concatenated, the chunks equal
        ``get_frames(range(0, num_frames, step))``. If a damaged stream turns out to lose
        frames on the way (``on_error="skip"``), ``num_frames`` shrinks and the chunks follow
        FFmpeg's numbering from there.

        Args:
            chunk_size: Frames per chunk (after subsampling).
            step: Keep every ``step``-th frame.
            pixel_format: ``"rgb24"`` or ``"yuv420p"`` (see :meth:`get_frames`).

        Yields:
            ``(start, frames)`` with ``frames`` ``(n, H, W, 3)`` uint8 RGB (or I420 planes),
            a new array each time (callers may draw on it).
        """
        if chunk_size <= 0 or step <= 0:
            raise ValueError(f"chunk_size and step must be positive, got {chunk_size}, {step}")
        span = chunk_size * step
        start = 0
        while start < self.num_frames:
            before = self.num_frames
            stop = min(start + span, before)
            try:
                frames = self.get_frames(np.arange(start, stop, step), pixel_format=pixel_format)
            except FrameIndexError:
                if self.num_frames != before:
                    continue  # the damaged stream was re-measured: this chunk, renumbered
                raise
            yield start, frames
            start += span

    # ----------------------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Release the native reader. Safe to call twice."""
        if self._source is not None:
            self._source.close()
            self._source = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


# decord prefixes its messages with a timestamp and its own source path
# ("[11:14:52] /github/workspace/src/video/video_reader.cc:270: [file] Failed to ...") and may
# append a native stack trace.
_LOG_PREFIX = re.compile(r"\[\d{2}:\d{2}:\d{2}\]\s+\S+:\d+:\s*")


def _clean_message(exc: BaseException) -> str:
    """One line of what went wrong, without third-party log noise (timestamps, source paths)."""
    for line in str(exc).strip().splitlines():
        line = _LOG_PREFIX.sub("", line).strip()
        line = re.sub(r"^\[[^\]]*\]\s*", "", line)  # decord's "[file name]" prefix
        if line and not line.lower().startswith(("stack trace", "traceback")):
            return line[:300]
    return type(exc).__name__


def open_video(
    path: str | Path,
    *,
    backend: str = "auto",
    size: int | tuple[int, int] | None = None,
    num_threads: int = 0,
    on_error: str = "skip",
    hwaccel: str | None = None,
) -> VideoReader:
    """Open a video for frame-exact random access and streaming.

    Args:
        path: Video file.
        backend: ``"auto"`` (decord where it is frame-exact, PyAV elsewhere or when decord
            fails), ``"decord"`` or ``"pyav"``. ``reader.backend`` says which one is used.
        size: Decoder-side resize of the displayed frame: ``None``, ``(w, h)``, or the short
            side as an int (long side keeps the aspect ratio, rounded to the nearest even
            number).
        num_threads: Decoder threads; 0 lets the decoder choose.
        on_error: Damaged streams: ``"skip"`` keeps the frames FFmpeg decodes (``frames_lost``
            says how many are missing), ``"raise"`` refuses the file with
            ``CorruptVideoError``.
        hwaccel: Decode on this device through PyAV (``"cuda"``: NVDEC), where it opens; CPU
            decode otherwise (``reader.hwaccel`` says which). Implies PyAV with ``"auto"``.

    Returns:
        An open :class:`VideoReader`.

    Raises:
        VideoNotFoundError, EmptyVideoError, NotAVideoError, NoVideoStreamError,
        CorruptVideoError, BackendUnavailableError: what is wrong with which file.
    """
    return VideoReader(
        path,
        backend=backend,
        size=size,
        num_threads=num_threads,
        on_error=on_error,
        hwaccel=hwaccel,
    )

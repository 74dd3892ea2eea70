"""Probe a file with PyAV: demux the video packets (no decoding, what ``ffprobe -count_packets``
does) and decode the first frame (pixel format, display rotation).

From the packets the index is *predicted* (:func:`~video_lstm.io.decode.index.predicted_index`)
where timestamps are presentation times (MP4/MOV, Matroska/WebM, MPEG-PS/TS, Ogg, FLV); elsewhere
(AVI, whose timestamps are decode order), or when timestamps are missing or repeat, or the
container's index is damaged, ``Probe.index`` is ``None`` and the reader measures it by one full
decode pass. Probes are cached per file for the process (:class:`~video_lstm.io.decode.index.ProbeCache`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from video_lstm.errors import (
    CorruptVideoError,
    EmptyVideoError,
    NotAVideoError,
    NoVideoStreamError,
    VideoError,
    VideoNotFoundError,
)
from video_lstm.io.decode.index import NO_TS, Index, ProbeCache, predicted_index
from video_lstm.io.decode.source import clean_message

__all__ = ["CACHE", "Probe", "check_file", "probe_file"]

# Demuxers (PyAV ``container.format.name``) whose packet timestamps are presentation times:
# the index can be predicted from the packets. Anything else is measured by a decode pass.
_PTS_FORMATS = frozenset(
    {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpeg", "mpegts", "ogg", "flv"}
)
# Demuxers whose packet positions are per packet (a sample table / index): overlapping or
# out-of-file byte ranges there mean a damaged index.
_BYTE_INDEXED_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"})
_SAMPLE_TABLE_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2"})

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


@dataclass
class Probe:
    """What a packet demux (and the first decoded frame) tell about a file.

    A backend's ``accepts`` predicate reads it (``register_backend``): e.g. ``format_name``
    (PyAV's demuxer name, ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"matroska,webm"``, ``"avi"``),
    ``codec`` (``"h264"``, ``"vp9"``), ``pix_fmt``, ``rotation``, ``damaged``.
    """

    path: Path
    format_name: str
    codec: str
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
    index: Index | None  # predicted (or, once measured, exact) index; None: measure it
    predicted: bool  # the packets gave the index (presentation timestamps, undamaged)
    packet_keys: np.ndarray  # keys of all non-empty packets, decode order
    packet_keyframe: np.ndarray  # bool per packet
    packet_ts: np.ndarray  # seek timestamp per packet (dts, else pts; NO_TS when neither)
    packet_size: np.ndarray  # bytes per packet (int32), decode order
    _positions: dict[int, int] | None = field(default=None, init=False, repr=False)

    def packet_position(self, key: int) -> int | None:
        """Decode-order position of the packet with ``key`` (``None``: no such packet)."""
        if self._positions is None:  # built on the first seek only (a dict per packet)
            self._positions = {int(k): i for i, k in enumerate(self.packet_keys.tolist())}
        return self._positions.get(key)

    @property
    def width(self) -> int:
        """Displayed width."""
        return self.coded_height if self.rotation in (90, 270) else self.coded_width

    @property
    def height(self) -> int:
        return self.coded_width if self.rotation in (90, 270) else self.coded_height


CACHE = ProbeCache()


def _classify_open_failure(path: Path, exc: BaseException) -> VideoError:
    with open(path, "rb") as f:
        head = f.read(16)
    if any(head[off : off + len(sig)] == sig for off, sig in _SIGNATURES):
        return CorruptVideoError(
            path,
            "looks like a media container but cannot be opened (truncated or damaged): "
            f"{clean_message(exc)}",
        )
    return NotAVideoError(path, f"not a video file any backend can open: {clean_message(exc)}")


def check_file(path: Path) -> os.stat_result:
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


def probe_file(path: Path) -> Probe:
    """Probe ``path`` (cached per path, size and mtime); raise a ``VideoError`` for a bad file."""
    st = check_file(path)
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    hit = CACHE.get(key)
    if hit is not None:
        return hit
    probe = _probe_uncached(path, st.st_size)
    CACHE.put(key, probe)
    return probe


def _probe_uncached(path: Path, file_size: int) -> Probe:
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
            damaged = f"the container is damaged after {len(pts)} packets ({clean_message(exc)})"
        if not pts:
            raise EmptyVideoError(path, "the video stream holds no frames")
        fmt = container.format.name
        codec = ctx.name or ""
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
    packet_ts = np.asarray([NO_TS if t is None else t for t in ts_list], dtype=np.int64)
    shown = [i for i in range(len(pts)) if not discard[i]]

    index = None
    if (
        fmt in _PTS_FORMATS
        and key_field is not None
        and not damaged
        and _unique([pts[i] for i in shown])
        and all(t is not None for t in ts_list)
    ):
        index = predicted_index(pts, keyframe, discard, packet_keys, packet_ts)
    return Probe(
        path=path,
        format_name=fmt,
        codec=codec,
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
        predicted=index is not None,
        packet_keys=packet_keys,
        packet_keyframe=np.asarray(keyframe, dtype=bool),
        packet_ts=packet_ts,
        packet_size=n.astype(np.int32),
    )

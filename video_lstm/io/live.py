"""Live sources: network streams, webcams, files played in real time or still being written.

A live source is read once, forward, at the pace it arrives: there is no ``num_frames`` and no
random access, so it is not a :class:`~video_lstm.io.video.FrameSource`; it yields
:class:`LiveFrame` items instead, numbered in *stream time* (frames since the watch began,
counted on across reconnects, so indices and seconds only ever grow).

    source = LiveSource.open("udp://127.0.0.1:5000", options=LiveOptions(reconnect_s=10))
    for item in source.frames(stop):          # LiveFrame, or a Gap when the stream was lost
        ...

What ``SOURCE`` may be (:func:`source_kind`):

- a URL PyAV's FFmpeg reads: ``rtsp://`` (connecting to an RTSP server, or with
  ``rtsp_listen`` waiting for a publisher that pushes with ``ffmpeg -f rtsp``), ``rtmp://``,
  ``srt://``, ``udp://``, ``tcp://`` (MPEG-TS), ``http(s)://`` (an HLS ``.m3u8`` playlist, or
  progressive MP4/MPEG-TS);
- a webcam: ``/dev/videoN``, or an index such as ``0`` (``/dev/video0``), through FFmpeg's
  ``v4l2`` input (Linux only; not tested here, the machines have no camera);
- a file: played as fast as the model goes, at its own frame rate with ``realtime``, or
  followed while it is still written with ``follow`` (read to the current end, wait, go on;
  the container must be streamable: MPEG-TS, Matroska, fragmented MP4; a plain MP4 keeps its
  index at the end and cannot be read before it is finished).

Faults: a stream that ends, or errors, is reopened with exponential backoff (0.25 s doubling
to 4 s) until ``reconnect_s`` seconds have passed without a new frame (a reopened ``http(s)``
source that only replays what was seen, an ended HLS playlist, delivers nothing new); a corrupt packet is skipped
(FFmpeg's decoder conceals it; an error from one packet does not end the stream). A source that
cannot be opened at all raises :class:`SourceError` (``video-lstm watch`` prints it as one line
and exits 2).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from video_lstm.errors import UsageError
from video_lstm.io.decode import output_size

__all__ = [
    "Gap",
    "LiveFrame",
    "LiveOptions",
    "LiveSource",
    "SourceError",
    "check_source",
    "source_kind",
    "stream_name",
]

_URL = re.compile(r"^(rtsp|rtsps|rtmp|rtmps|srt|udp|tcp|http|https|rtp)://", re.IGNORECASE)
# Resizing for the model as io.decode does it: bilinear (closest to decord, fastest); colour
# conversion alone bicubic, as the ffmpeg CLI. The same frames as ``annotate`` then reach the CNN.
_RESIZE = av.video.reformatter.Interpolation.BILINEAR
_CONVERT = av.video.reformatter.Interpolation.BICUBIC
_BACKOFF_FIRST_S, _BACKOFF_MAX_S = 0.25, 4.0


class SourceError(UsageError):
    """A live source that cannot be opened (nothing listening, a wrong URL, a missing device)."""


def source_kind(source: str) -> str:
    """``"url"``, ``"webcam"`` or ``"file"`` for a ``SOURCE`` argument."""
    if _URL.match(source):
        return "url"
    if source.isdigit() or re.fullmatch(r"/dev/video\d+", source):
        return "webcam"
    return "file"


def stream_name(source: str) -> str:
    """A folder name for a source's outputs: the file stem, the URL's host, port and path, or
    ``video0`` for a webcam (``OUT/<stream name>/``)."""
    from video_lstm.io.files import safe_name

    kind = source_kind(source)
    if kind == "file":
        return safe_name(Path(source).stem or "stream")
    if kind == "webcam":
        return f"video{source}" if source.isdigit() else Path(source).name
    rest = re.sub(r"^[a-z]+://", "", source, flags=re.IGNORECASE).split("?")[0]
    rest = re.sub(r"\.m3u8$", "", rest)
    return safe_name(re.sub(r"[^A-Za-z0-9._-]+", "_", rest).strip("_") or "stream")


@dataclass
class LiveOptions:
    """How a live source is opened and read.

    Args:
        realtime: Files only: deliver frames at the file's own frame rate (a replay, a test).
        follow: Files only: at the current end of the file wait for more (a file being written).
        reconnect_s: How long to keep reopening a lost stream (or, at start, one that does not
            open) before giving up; 0: never reopen.
        open_timeout_s: How long one open or read may block (a UDP port nobody sends to, a
            stalled server) before it counts as lost.
        follow_idle_s: With ``follow``: the file is finished once it has not grown for this long.
        rtsp_listen: ``rtsp://`` only: listen for a publisher (``ffmpeg -f rtsp`` pushes to us)
            instead of connecting to an RTSP server.
        size: Short side of the frames handed to the model (``None``: as decoded).
        keep_full: Also hand out the full-resolution frame (for clips and the preview).
        ffmpeg_options: Extra FFmpeg demuxer/protocol options (``{"rtsp_transport": "tcp"}``).
    """

    realtime: bool = False
    follow: bool = False
    reconnect_s: float = 10.0
    open_timeout_s: float = 5.0
    follow_idle_s: float = 5.0
    rtsp_listen: bool = False
    size: int | None = None
    keep_full: bool = False
    ffmpeg_options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("reconnect_s", "open_timeout_s", "follow_idle_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.open_timeout_s == 0:
            raise ValueError("open_timeout_s must be > 0")


@dataclass
class LiveFrame:
    """One decoded frame of a live source.

    Attributes:
        index: Frame number in stream time (since the watch began, counted across reconnects).
        time_s: Stream time in seconds (``index / fps``).
        wall: ``time.time()`` when it was decoded.
        image: uint8 ``(h, w, 3)`` RGB at the model's decode size.
        full: uint8 ``(H, W, 3)`` RGB as decoded (``None`` unless ``keep_full``).
        connection: Which connection it came from (1 for the first, +1 per reconnect).
    """

    index: int
    time_s: float
    wall: float
    image: np.ndarray
    full: np.ndarray | None
    connection: int


@dataclass
class Gap:
    """The stream was lost (``reason``) after frame ``index - 1``; frames go on at ``index``
    (stream time does not stop: the seconds without frames are skipped, not counted)."""

    index: int
    reason: str
    wall: float


def _webcam_path(source: str) -> str:
    return f"/dev/video{source}" if source.isdigit() else source


class _FollowFile:
    """A file object over a file that is still written: at its current end, ``read`` waits for
    more instead of returning ``b""``, until it has not grown for ``idle_s`` or ``stop`` is set."""

    def __init__(self, path: str, idle_s: float, stop: threading.Event) -> None:
        self.f = open(path, "rb")  # noqa: SIM115 (closed by close())
        self.idle_s, self.stop = idle_s, stop
        self.done = False

    def read(self, n: int = -1) -> bytes:
        waited = 0.0
        while True:
            data = self.f.read(n)
            if data or self.done or self.stop.is_set():
                return data
            if waited >= self.idle_s:
                self.done = True  # finished: FFmpeg reads the end more than once
                return data
            time.sleep(0.05)
            waited += 0.05

    def close(self) -> None:
        self.f.close()


def _open_container(source: str, options: LiveOptions, stop: threading.Event) -> Any:
    """The PyAV container of ``source``; raises ``av.error.FFmpegError`` / ``OSError``."""
    kind = source_kind(source)
    opts = dict(options.ffmpeg_options)
    timeout = options.open_timeout_s
    if kind == "webcam":
        path = _webcam_path(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such video device {path}")
        return av.open(path, format="v4l2", options=opts, timeout=timeout)
    if kind == "file":
        if options.follow:
            # A short probe: the default (5 MB or 5 s of stream) waits for the writer that long.
            opts = {"probesize": "131072", "analyzeduration": "1000000", **opts}
            return av.open(_FollowFile(source, options.follow_idle_s, stop), mode="r", options=opts)
        return av.open(source, options=opts)
    if source.lower().startswith("rtsp") and options.rtsp_listen:
        # FFmpeg 8's default listen timeout (-1, "forever") fails with ERANGE: give it one.
        opts.setdefault("rtsp_flags", "listen")
        opts.setdefault("listen_timeout", str(max(1, round(timeout))))
        return av.open(source, options=opts)
    return av.open(source, options=opts, timeout=(timeout, timeout))


def _describe(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def check_source(source: str, options: LiveOptions | None = None) -> None:
    """Fail early, before a model loads, on a source that cannot be a live source.

    Checks what can be checked without waiting: a file that does not exist, a webcam device
    that is missing, a URL with no host. (Whether a server answers is learnt by opening it.)

    Raises:
        SourceError: With one line naming the source and the problem.
    """
    kind = source_kind(source)
    if kind == "file":
        p = Path(source)
        if not p.exists():
            raise SourceError(f"{source}: source not found (a file, a URL such as "
                              "udp://127.0.0.1:5000, or a webcam such as /dev/video0)")  # fmt: skip
        if not p.is_file():
            raise SourceError(f"{source}: source is not a file")
    elif kind == "webcam":
        path = _webcam_path(source)
        if not os.path.exists(path):
            raise SourceError(f"{source}: no such video device {path} (webcams are read "
                              "through FFmpeg's v4l2 input, Linux only)")  # fmt: skip
    else:
        host = re.sub(r"^[a-z]+://", "", source, flags=re.IGNORECASE).split("/")[0]
        if not host.split("?")[0].strip(":"):
            raise SourceError(f"{source}: URL has no host")


class LiveSource:
    """Frames of a live source, reopened on loss (see the module docstring).

    Args:
        source: URL, webcam or file (:func:`source_kind`).
        options: :class:`LiveOptions`.
    """

    def __init__(self, source: str, options: LiveOptions | None = None) -> None:
        self.source = source
        self.kind = source_kind(source)
        self.options = options or LiveOptions()
        if self.kind != "file" and (self.options.realtime or self.options.follow):
            raise UsageError(f"{source}: realtime and follow are for files, not a {self.kind}")
        self.fps = 25.0
        self.width = self.height = 0
        self.connections = 0
        self.frames_decoded = 0
        self.corrupt_packets = 0
        self._next_index = 0
        self._container: Any = None

    def open(self, stop: threading.Event | None = None) -> None:
        """Open the source, retrying with backoff for ``reconnect_s`` seconds.

        Raises:
            SourceError: When it did not open in that time.
        """
        stop = stop or threading.Event()
        if not self._connect(stop, time.monotonic() + self.options.reconnect_s):
            raise SourceError(f"{self.source}: cannot open the source: {self._last_error}")

    def _connect(self, stop: threading.Event, deadline: float) -> bool:
        backoff = _BACKOFF_FIRST_S
        while not stop.is_set():
            try:
                container = _open_container(self.source, self.options, stop)
                if not container.streams.video:
                    container.close()
                    raise ValueError("it has no video stream")
            except (av.error.FFmpegError, OSError, ValueError, OverflowError) as exc:
                self._last_error = _describe(exc)
                if time.monotonic() + backoff > deadline:
                    return False
                stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            self._container = container
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if rate and 1 <= float(rate) <= 240:
                self.fps = float(rate)
            self.width = stream.codec_context.width
            self.height = stream.codec_context.height
            self.connections += 1
            return True
        return False

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def _decoded(self, stop: threading.Event) -> Iterator[av.VideoFrame]:
        """The frames of the current connection; ends on EOF or a lost stream."""
        container = self._container
        stream = container.streams.video[0]
        try:
            for packet in container.demux(stream):
                if stop.is_set():
                    return
                if packet.is_corrupt:
                    self.corrupt_packets += 1
                try:
                    yield from packet.decode()
                except av.error.InvalidDataError:
                    # One bad packet: FFmpeg conceals what it can; the stream goes on.
                    self.corrupt_packets += 1
        except (av.error.FFmpegError, OSError) as exc:
            self._last_error = _describe(exc)

    def frames(self, stop: threading.Event | None = None) -> Iterator[LiveFrame | Gap]:
        """Frames until the stream ends for good (or ``stop`` is set), and a :class:`Gap` as
        soon as a stream that delivered frames is lost (before it is reopened: what was open
        can be closed at once). :meth:`open` must have succeeded first.

        The stream ends when ``reconnect_s`` seconds pass without a new frame: a source that
        no longer opens, or one that opens but only replays what was seen (an HLS playlist that
        has ended, a progressive HTTP file: frames whose timestamps are not after the last one
        delivered are skipped after a reopen of an ``http(s)`` URL)."""
        stop = stop or threading.Event()
        reformatter = av.video.reformatter.VideoReformatter()
        last_new = time.monotonic()
        last_pts: float | None = None
        replay_guard = self.source.lower().startswith(("http://", "https://"))
        while not stop.is_set():
            t0_wall = time.monotonic()
            pts0: float | None = None
            delivered = False
            for frame in self._decoded(stop):
                seen = last_pts is not None and frame.time is not None and frame.time <= last_pts
                if replay_guard and seen:
                    continue
                now = time.monotonic()
                if self.options.realtime and frame.time is not None:
                    if pts0 is None:
                        pts0 = frame.time
                    # Deliver at the file's own pace: frame t at t0 + (pts - pts0).
                    delay = t0_wall + (frame.time - pts0) - now
                    if delay > 0 and stop.wait(delay):
                        return
                yield self._frame(frame, reformatter)
                delivered, last_new = True, time.monotonic()
                if frame.time is not None:
                    last_pts = frame.time if last_pts is None else max(last_pts, frame.time)
            self.close()
            if stop.is_set() or self.kind == "file":
                return  # a file's end is the end (with follow: it stopped growing)
            reason = f"stream lost: {self._last_error}" if self._has_error() else "stream ended"
            self._last_error = ""
            if delivered:
                yield Gap(self._next_index, reason, time.time())
            deadline = last_new + self.options.reconnect_s
            if time.monotonic() >= deadline or not self._connect(stop, deadline):
                return

    _last_error = ""

    def _has_error(self) -> bool:
        return bool(self._last_error)

    def _frame(self, frame: av.VideoFrame, reformatter: Any) -> LiveFrame:
        w, h = output_size(frame.width, frame.height, self.options.size)
        resize = (w, h) != (frame.width, frame.height)
        image = reformatter.reformat(
            frame, width=w, height=h, format="rgb24", interpolation=_RESIZE if resize else _CONVERT
        ).to_ndarray()
        full = None
        if self.options.keep_full:
            full = image if not resize else frame.to_ndarray(format="rgb24")
        index = self._next_index
        self._next_index += 1
        self.frames_decoded += 1
        return LiveFrame(index, index / self.fps, time.time(), image, full, self.connections)


def open_live(
    source: str, options: LiveOptions | None = None, stop: threading.Event | None = None
) -> LiveSource:
    """:class:`LiveSource` opened (with retries for ``options.reconnect_s``)."""
    live = LiveSource(source, options)
    live.open(stop)
    return live

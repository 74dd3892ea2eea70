"""Open a video and read frames by index, frame-exactly: decord first, PyAV when decord can't.

Every file is first probed with PyAV: the container is opened and the video packets are demuxed
(no decoding; what ``ffprobe -count_packets`` does). That gives the true number of frames, the
presentation timestamp of every frame and the keyframes, and it lets a bad file fail early with
a ``VideoError`` naming the file. decord is then used where it is safe:

* decord reads the container's nominal frame count. When that count disagrees with the packets
  (a truncated file, a container that over-reports), decord can decode past the real end and
  hang in native code holding the GIL (dmlc/decord#373). Such files go to PyAV, after a check
  that decodes the last GOP to find how many frames really decode.
* decord refuses Ogg and seeks MPEG program/transport streams to the wrong frame (measured: on a
  60-frame MPEG-1 ``.mpg`` ``vr[59]`` returned frame 2), so those containers go to PyAV
  (``backend="decord"`` refuses them with ``BackendUnavailableError``).
* decord's in-decoder resize returns mis-sized buffers for some target widths (16, 24, 48, 72
  measured); a resized reader is checked on frame 0 and falls back to PyAV.
* Any decord exception at open falls back to PyAV; indices are validated before decord sees
  them, so decord is never asked for a frame past the real end.

Frame ``i`` is the ``i``-th frame in presentation order. Indices may be negative, Python style
(``-1`` is the last frame); anything outside ``[-num_frames, num_frames)`` raises
``FrameIndexError``.

Resizing happens inside the decoder. ``size=(w, h)`` is used as is; ``size=s`` (an int) sets
the short side to ``s`` and scales the long side to keep the aspect ratio, rounded to the
nearest even number (yuv420p encoders need even sizes). Both backends get the same size.

Example:
    >>> with open_video("clip.mp4", size=224) as video:
    ...     clip = video.get_frames([0, 2, 4])  # 640x480 source: (3, 224, 298, 3) uint8
    ...     for start, frames in video.iter_chunks(64):
    ...         ...
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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
from video_lstm.types import VideoInfo

__all__ = ["BACKENDS", "VideoReader", "open_video", "output_size"]

BACKENDS = ("auto", "decord", "pyav")

# Demuxer names (PyAV ``container.format.name``) whose files always go to PyAV in "auto" mode.
_PYAV_ONLY_FORMATS = frozenset({"mpeg", "mpegts", "mpegvideo", "ogg"})

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
)


def output_size(width: int, height: int, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """The ``(width, height)`` frames are decoded to, for a source of ``width`` x ``height``.

    Args:
        width: Source width.
        height: Source height.
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


@dataclass(frozen=True)
class _Probe:
    """What a packet demux tells about a file (no decoding)."""

    format_name: str
    width: int  # source size
    height: int
    fps: float
    header_frames: int  # the container's nominal count (0 when absent)
    pts: np.ndarray  # (num_frames,) int64 presentation timestamps, index -> pts
    key_index: np.ndarray  # sorted frame indices of keyframes


def _classify_open_failure(path: Path, exc: BaseException) -> VideoError:
    with open(path, "rb") as f:
        head = f.read(16)
    if any(head[off : off + len(sig)] == sig for off, sig in _SIGNATURES):
        return CorruptVideoError(
            path, f"looks like a media container but cannot be opened (truncated or damaged): {exc}"
        )
    return NotAVideoError(path, f"not a video file any backend can open: {exc}")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoNotFoundError(path, "no such file")
    if not path.is_file():
        raise NotAVideoError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise EmptyVideoError(path, "file is empty (0 bytes)")


def _probe(path: Path) -> _Probe:
    """Open with PyAV and demux the video packets; raise a ``VideoError`` for a bad file."""
    _check_file(path)
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
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        pts: list[int] = []
        keys: list[int] = []  # pts of keyframes
        missing_pts = False
        try:
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                p = packet.pts if packet.pts is not None else packet.dts
                if p is None:
                    missing_pts = True
                    p = len(pts)
                pts.append(p)
                if packet.is_keyframe:
                    keys.append(p)
        except av.error.FFmpegError:
            pass  # a damaged tail: the packets read so far are what there is
        if not pts:
            raise EmptyVideoError(path, "the video stream holds no frames")
        if missing_pts:
            raise CorruptVideoError(path, "video packets carry no timestamps; cannot index frames")
        order = np.asarray(pts, dtype=np.int64)
        order.sort()
        if np.any(np.diff(order) == 0):
            raise CorruptVideoError(path, "two video frames share one timestamp")
        key_index = np.searchsorted(order, np.asarray(sorted(keys), dtype=np.int64))
        if not len(key_index) or key_index[0] != 0:
            key_index = np.concatenate([[0], key_index]).astype(np.int64)
        return _Probe(
            format_name=container.format.name,
            width=ctx.width,
            height=ctx.height,
            fps=float(rate) if rate else 0.0,
            header_frames=int(stream.frames or 0),
            pts=order,
            key_index=key_index,
        )


class _PyAVSource:
    """Frame-exact PyAV decoding: seek to the keyframe before a target, decode forward.

    Decoded frames are identified by their pts (not by counting), so a seek that lands early
    costs time but never returns the wrong frame. Sequential requests keep decoding without a
    new seek.
    """

    def __init__(
        self,
        path: Path,
        probe: _Probe,
        width: int,
        height: int,
        threads: int,
        *,
        frame_threads: bool = True,
    ) -> None:
        self.path = path
        self.frame_threads = frame_threads
        self.probe = probe
        self.width, self.height = width, height
        self.resize = (width, height) != (probe.width, probe.height)
        self.threads = threads
        self.pixel_format = "rgb24"  # set per read by VideoReader
        self.pts_to_index = {int(p): i for i, p in enumerate(probe.pts)}
        # One reformatter keeps its scaler between frames; ``frame.to_ndarray(width=...)`` builds
        # a new one per frame (360p -> 128 px RGB: 0.8 ms a frame against 0.14 ms reused).
        self._reformatter = av.video.reformatter.VideoReformatter()
        self._open()
        self._used = False  # whether the container has been read since it was opened
        self.num_seeks = 0  # seeks and rewinds so far (sequential reading should need none)
        self._frames: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._key_pos = 0  # position in probe.key_index where self._frames started
        self._pos = 0  # index of the next frame self._frames will yield (at least)

    def _open(self) -> None:
        self.container = av.open(str(self.path))
        self.stream = self.container.streams.video[0]
        # Frame threading is fastest, but after a damaged packet it drops the frames it holds;
        # damaged files are decoded with slice threads only, which loses just the bad frame.
        self.stream.thread_type = "AUTO" if self.frame_threads else "SLICE"
        self.stream.codec_context.thread_count = self.threads

    def _decode_from(self, key: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Yield ``(index, frame)`` in decode order, starting near keyframe index ``key``."""
        if key > 0 or self._used:
            self.num_seeks += 1
        if key == 0:
            if self._used:
                # Rewind by reopening: timestamp seeks in some containers cannot reach frame 0.
                self.container.close()
                self._open()
        else:
            self.container.seek(
                int(self.probe.pts[key]), stream=self.stream, backward=True, any_frame=False
            )
        self._used = True
        for packet in self.container.demux(self.stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # a damaged packet: its frame is reported missing when asked for
            for frame in frames:
                index = self.pts_to_index.get(frame.pts)
                if index is not None:
                    yield index, frame

    def _to_array(self, frame: av.VideoFrame) -> np.ndarray:
        if self.pixel_format == "yuv420p" and not self.resize:
            return frame.to_ndarray(format="yuv420p")  # (H * 3 // 2, W): no conversion
        rgb = self._reformatter.reformat(
            frame, width=self.width, height=self.height, format="rgb24", interpolation="BILINEAR"
        )
        return rgb.to_ndarray()

    def _start(self, key_pos: int) -> None:
        self._key_pos = key_pos
        key = int(self.probe.key_index[key_pos])
        self._frames = self._decode_from(key)
        self._pos = key

    def _advance_to(self, target: int) -> av.VideoFrame | None:
        """Decode forward to ``target``; None if it is passed or the stream ends first."""
        assert self._frames is not None
        for index, frame in self._frames:
            self._pos = index + 1
            if index == target:
                return frame
            if index > target:
                break
        self._frames = None
        return None

    def read(self, targets: np.ndarray, out: np.ndarray) -> None:
        """Decode sorted unique ``targets`` into ``out[i]``."""
        key_index = self.probe.key_index
        for slot, target in enumerate(targets.tolist()):
            key_pos = int(np.searchsorted(key_index, target, side="right") - 1)
            # Re-seek only when going back, or when a keyframe lies between here and the target
            # (seeking there is cheaper than decoding the frames before it).
            if self._frames is None or target < self._pos or key_index[key_pos] > self._pos:
                self._start(key_pos)
            frame = self._advance_to(target)
            if frame is None and self._key_pos > 0:
                # Byte-based seeking (MPEG-PS) can land just after the keyframe: the target is
                # then skipped. Try one GOP earlier, then from the very start.
                self._start(self._key_pos - 1)
                frame = self._advance_to(target)
                if frame is None and self._key_pos > 0:
                    self._start(0)
                    frame = self._advance_to(target)
            if frame is None:
                raise CorruptVideoError(self.path, f"frame {target} could not be decoded")
            out[slot] = self._to_array(frame)

    def count_decodable_tail(self) -> int:
        """Decode the last GOP and return the number of frames that really decode."""
        last = -1
        self._frames = None
        with contextlib.suppress(av.error.FFmpegError):
            for index, _ in self._decode_from(int(self.probe.key_index[-1])):
                last = max(last, index)
        self._frames = None
        if last < 0:
            # The whole last GOP is lost: fall back to the GOP before it, if any.
            keys = self.probe.key_index
            if len(keys) > 1:
                with contextlib.suppress(av.error.FFmpegError):
                    for index, _ in self._decode_from(int(keys[-2])):
                        last = max(last, index)
                self._frames = None
        return last + 1

    def close(self) -> None:
        self._frames = None
        self.container.close()


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


class VideoReader:
    """An open video. Use :func:`open_video` to create one; close it (or use ``with``).

    Attributes:
        path: The file.
        backend: ``"decord"`` or ``"pyav"``, the backend actually used for this file.
        num_frames: Frames that really decode (may be fewer than the container claims).
        fps: Average frame rate.
        width: Frame width after any resize.
        height: Frame height after any resize.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        backend: str = "auto",
        size: int | tuple[int, int] | None = None,
        num_threads: int = 0,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.path = Path(path)
        probe = _probe(self.path)
        self.width, self.height = output_size(probe.width, probe.height, size)
        self.fps = probe.fps
        resize = (self.width, self.height) != (probe.width, probe.height)
        packets = len(probe.pts)
        self.num_frames = packets
        self._source: _DecordSource | _PyAVSource | None = None

        use_decord = backend == "decord" or (
            backend == "auto" and probe.format_name not in _PYAV_ONLY_FORMATS
        )
        suspicious = probe.header_frames > 0 and probe.header_frames != packets
        vr = None
        if backend == "decord" and probe.format_name in _PYAV_ONLY_FORMATS:
            raise BackendUnavailableError(
                self.path,
                f"decord is not frame-exact on {probe.format_name!r} containers; "
                "use backend='auto' or 'pyav'",
            )
        if use_decord:
            try:
                vr = _open_decord(self.path, self.width, self.height, num_threads, resize)
            except BackendUnavailableError:
                if backend == "decord":
                    raise
            except Exception as exc:  # decord raises DECORDError / RuntimeError on any failure
                if backend == "decord":
                    raise CorruptVideoError(
                        self.path, f"decord cannot open it: {_first_line(exc)}"
                    ) from None
            if vr is not None and resize and not _decord_resize_works(vr, self.width, self.height):
                # decord 0.6.0 returns mis-sized buffers for some target widths (16, 24, 48, 72
                # measured) and then fails every read.
                if backend == "decord":
                    raise BackendUnavailableError(
                        self.path,
                        f"decord cannot resize to {self.width}x{self.height}; "
                        "use backend='auto' or 'pyav'",
                    )
                vr = None
            if vr is not None and len(vr) != packets:
                suspicious = True
                if backend == "auto":
                    vr = None  # decord's index disagrees with the packets: do not trust it

        if suspicious:
            # The container's count disagrees with the packets: find what really decodes.
            checker = _PyAVSource(
                self.path, probe, self.width, self.height, num_threads, frame_threads=False
            )
            try:
                self.num_frames = min(packets, checker.count_decodable_tail())
            finally:
                checker.close()
            if self.num_frames == 0:
                raise CorruptVideoError(self.path, "no frame of the video stream decodes")

        if vr is not None:
            self.backend = "decord"
            self._source = _DecordSource(vr)
        else:
            self.backend = "pyav"
            try:
                self._source = _PyAVSource(
                    self.path,
                    probe,
                    self.width,
                    self.height,
                    num_threads,
                    frame_threads=not suspicious,
                )
            except av.error.FFmpegError as exc:
                raise CorruptVideoError(self.path, f"PyAV cannot open it: {exc}") from None

    # ----------------------------------------------------------------------------- metadata

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
        )

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return (
            f"VideoReader({str(self.path)!r}, backend={self.backend!r}, num_frames={self.num_frames}, "
            f"fps={self.fps:g}, size={self.width}x{self.height})"
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
            raise FrameIndexError(
                self.path,
                f"frame index {int(idx[bad][0])} out of range for {n} frames "
                f"(valid: -{n}..{n - 1})",
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
        idx = self._normalize(indices)
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
            except Exception as exc:  # DECORDError: never let a native traceback escape
                source._pos = -1
                raise CorruptVideoError(
                    self.path, f"decord failed to decode: {_first_line(exc)}"
                ) from None
        else:
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
        ``get_frames(range(0, num_frames, step))``.

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
        for start in range(0, self.num_frames, span):
            stop = min(start + span, self.num_frames)
            yield start, self.get_frames(np.arange(start, stop, step), pixel_format=pixel_format)

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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def open_video(
    path: str | Path,
    *,
    backend: str = "auto",
    size: int | tuple[int, int] | None = None,
    num_threads: int = 0,
) -> VideoReader:
    """Open a video for frame-exact random access and streaming.

    Args:
        path: Video file.
        backend: ``"auto"`` (decord, PyAV where decord is unsafe or fails), ``"decord"`` or
            ``"pyav"``. ``reader.backend`` says which one was used.
        size: Decoder-side resize: ``None``, ``(w, h)``, or the short side as an int (long side
            keeps the aspect ratio, rounded to the nearest even number).
        num_threads: Decoder threads; 0 lets the decoder choose.

    Returns:
        An open :class:`VideoReader`.

    Raises:
        VideoNotFoundError, EmptyVideoError, NotAVideoError, NoVideoStreamError,
        CorruptVideoError, BackendUnavailableError: what is wrong with which file.
    """
    return VideoReader(path, backend=backend, size=size, num_threads=num_threads)

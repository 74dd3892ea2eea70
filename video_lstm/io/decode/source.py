"""What every decoder backend delivers: the :class:`FrameSource` protocol, the options a backend
is opened with (:class:`DecodeOptions`), and :class:`IndexedSource`, a base that turns one
``read(sorted unique indices)`` method into a whole source.

A source returns uint8 RGB frames ``(N, H, W, 3)`` (the one layout decoders return, STYLE.md
habit 4), indexed ``0 .. num_frames - 1`` with negative indices counting from the end, Python
style; anything outside raises :class:`~video_lstm.errors.FrameIndexError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from video_lstm.errors import FrameIndexError
from video_lstm.types import VideoInfo

__all__ = [
    "ON_ERROR",
    "DecodeOptions",
    "FrameSource",
    "IndexedSource",
    "clean_message",
    "normalize_indices",
    "output_size",
]

ON_ERROR = ("skip", "raise")


@runtime_checkable
class FrameSource(Protocol):
    """An open video: metadata, frames by index, streaming chunks; closed after use.

    ``open_video`` returns one for every backend; the writers (``io.video``) and the pipeline
    read only this.
    """

    num_frames: int
    fps: float
    width: int
    height: int

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames by index, in the order given: ``(N, H, W, 3)`` uint8 RGB."""
        ...

    def iter_chunks(self, chunk_size: int, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, frames)`` chunks in order: frames ``start, start + step, ...``."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class DecodeOptions:
    """How a file is to be decoded; every backend's opener is given one.

    Args:
        size: Decoder-side resize of the displayed frame: ``None``, ``(w, h)``, or the short
            side as an int (long side keeps the aspect ratio, rounded to the nearest even
            number).
        num_threads: Decoder threads; 0 lets the decoder choose.
        on_error: Damaged streams: ``"skip"`` keeps the frames FFmpeg decodes (``frames_lost``
            says how many are missing), ``"raise"`` refuses the file with
            ``CorruptVideoError``.
        hwaccel: Decode on this device through PyAV (``"cuda"``: NVDEC), where it opens; CPU
            decode otherwise (``reader.hwaccel`` says which). Implies PyAV with ``"auto"``.
    """

    size: int | tuple[int, int] | None = None
    num_threads: int = 0
    on_error: str = "skip"
    hwaccel: str | None = None

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")
        if self.num_threads < 0:
            raise ValueError(f"num_threads must be >= 0, got {self.num_threads}")
        output_size(2, 2, self.size)  # refuses a non-positive size now, not at the first read


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


def normalize_indices(
    path: str | Path, indices: Sequence[int] | np.ndarray | int, num_frames: int, lost: int = 0
) -> np.ndarray:
    """``indices`` as int64 in ``[0, num_frames)`` (negatives counted from the end).

    Args:
        path: The file, for the message.
        indices: An int or a 1-D sequence of ints.
        num_frames: Frames of the source.
        lost: Frames a damaged stream lost (said in the message).

    Raises:
        TypeError: Not a 1-D sequence of ints.
        FrameIndexError: An index outside ``[-num_frames, num_frames)``.
    """
    idx = np.asarray(indices)
    if idx.ndim == 0:
        idx = idx.reshape(1)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise TypeError(
            f"{path}: indices must be a 1-D sequence of ints, got {idx.dtype} {idx.shape}"
        )
    idx = idx.astype(np.int64, copy=False)
    n = num_frames
    bad = (idx < -n) | (idx >= n)
    if bad.any():
        why = f"; {lost} frames of the damaged stream do not decode" if lost else ""
        raise FrameIndexError(
            path,
            f"frame index {int(idx[bad][0])} out of range for {n} frames "
            f"(valid: -{n}..{n - 1}){why}",
        )
    return np.where(idx < 0, idx + n, idx)


class IndexedSource:
    """A :class:`FrameSource` built from one method, :meth:`read`.

    Subclasses set ``path``, ``num_frames``, ``fps``, ``width`` and ``height`` and implement
    ``read(targets)`` for sorted, unique, valid indices; this class validates indices (negative
    ones, range errors naming the file), handles any order and repeats, streams chunks, and is
    a context manager.
    """

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    backend: str = ""  # the name it was opened under (open_video sets it)
    rotation: int = 0  # clockwise display rotation already applied to the frames

    def read(self, targets: np.ndarray, **kwargs: Any) -> np.ndarray:
        """Frames ``targets`` (sorted, unique, in range): ``(len(targets), H, W, 3)`` uint8."""
        raise NotImplementedError

    @property
    def frames_lost(self) -> int:
        """Frames of a damaged stream that do not decode (0 unless a backend knows better)."""
        return 0

    @property
    def duration(self) -> float:
        """Length in seconds (``num_frames / fps``)."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    @property
    def info(self) -> VideoInfo:
        """Metadata as a :class:`~video_lstm.types.VideoInfo` (what the result JSON records)."""
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

    def measure(self) -> int:
        """Make ``num_frames`` exact and return it (already exact unless a backend says so)."""
        return self.num_frames

    def get_frames(self, indices: Sequence[int] | np.ndarray, **kwargs: Any) -> np.ndarray:
        """Decode frames by index, in the order given (repeats allowed).

        Args:
            indices: Frame indices; negatives count from the end (``-1`` = last frame).
            **kwargs: Passed on to :meth:`read` (e.g. the reader's ``pixel_format``).

        Returns:
            ``(N, H, W, 3)`` uint8 RGB, ``out[k]`` is frame ``indices[k]``.

        Raises:
            FrameIndexError: An index outside ``[-num_frames, num_frames)``.
        """
        idx = normalize_indices(self.path, indices, self.num_frames, self.frames_lost)
        if idx.size > 1 and not bool(np.all(idx[1:] > idx[:-1])):
            targets, inverse = np.unique(idx, return_inverse=True)
            return self.read(targets, **kwargs)[inverse]
        return self.read(idx, **kwargs)

    def iter_chunks(
        self, chunk_size: int, step: int = 1, **kwargs: Any
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Stream the video in chunks (bounded memory).

        Chunk ``k`` holds the frames ``start, start + step, ..., start + (n - 1) * step`` where
        ``start = k * chunk_size * step`` is the *source frame index* of its first frame and
        ``n <= chunk_size`` (only the last chunk is shorter). With ``step=1`` that is frames
        ``start .. start + n - 1``; concatenated, the chunks equal
        ``get_frames(range(0, num_frames, step))``. If a damaged stream turns out to lose
        frames on the way, ``num_frames`` shrinks and the chunks follow FFmpeg's numbering
        from there.

        Args:
            chunk_size: Frames per chunk (after subsampling).
            step: Keep every ``step``-th frame.
            **kwargs: Passed on to :meth:`get_frames` (e.g. ``pixel_format``).

        Yields:
            ``(start, frames)``, a new array each time (callers may draw on it).
        """
        if chunk_size <= 0 or step <= 0:
            raise ValueError(f"chunk_size and step must be positive, got {chunk_size}, {step}")
        span = chunk_size * step
        start = 0
        while start < self.num_frames:
            before = self.num_frames
            stop = min(start + span, before)
            try:
                frames = self.get_frames(np.arange(start, stop, step), **kwargs)
            except FrameIndexError:
                if self.num_frames != before:
                    continue  # the damaged stream was re-measured: this chunk, renumbered
                raise
            yield start, frames
            start += span

    def close(self) -> None:
        """Release what the source holds. Safe to call twice."""

    def __len__(self) -> int:
        return self.num_frames

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# decord prefixes its messages with a timestamp and its own source path
# ("[11:14:52] /github/workspace/src/video/video_reader.cc:270: [file] Failed to ...") and may
# append a native stack trace.
_LOG_PREFIX = re.compile(r"\[\d{2}:\d{2}:\d{2}\]\s+\S+:\d+:\s*")


def clean_message(exc: BaseException) -> str:
    """One line of what went wrong, without third-party log noise (timestamps, source paths)."""
    for line in str(exc).strip().splitlines():
        line = _LOG_PREFIX.sub("", line).strip()
        line = re.sub(r"^\[[^\]]*\]\s*", "", line)  # decord's "[file name]" prefix
        if line and not line.lower().startswith(("stack trace", "traceback")):
            return line[:300]
    return type(exc).__name__

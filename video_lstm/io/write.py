"""Writers: H.264 video through PyAV, written atomically (temp file + rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    A crash or interrupt leaves no half-written file under the final name.

    Args:
        path: Final destination. Parent folders are created.

    Yields:
        A temporary path in the same folder (same suffix, so container formats are inferred).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f"{path.suffix}.part", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


class VideoWriter:
    """Encode RGB uint8 frames to an H.264 MP4 (yuv420p, plays in browsers) atomically.

    Example:
        >>> with VideoWriter("out.mp4", fps=30, width=320, height=240) as w:
        ...     w.write(frames)  # (N, H, W, 3) or (H, W, 3) uint8 RGB

    Args:
        path: Output file; it appears under this name only when the writer closes without error.
        fps: Frame rate (may be fractional, e.g. 29.97).
        width: Frame width; must be even for yuv420p.
        height: Frame height; must be even for yuv420p.
        crf: x264 quality (lower is better; 18 is visually lossless, 23 is x264's default).
        preset: x264 speed preset.
        codec: PyAV encoder name; ``"libx264"`` by default, ``"ffv1"`` (with ``.mkv``) for lossless.
        gop: Keyframe interval in frames.
        threads: Encoder threads (0 lets the encoder choose).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float,
        width: int,
        height: int,
        crf: int = 23,
        preset: str = "veryfast",
        codec: str = "libx264",
        gop: int | None = None,
        threads: int = 0,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"{path}: frame size must be positive, got {width}x{height}")
        if codec == "libx264" and (width % 2 or height % 2):
            raise ValueError(
                f"{path}: H.264 (yuv420p) needs even width and height, got {width}x{height}"
            )
        if fps <= 0:
            raise ValueError(f"{path}: fps must be positive, got {fps}")
        self.path = Path(path)
        self.width, self.height = width, height
        self.num_written = 0
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            fmt = "matroska" if self.path.suffix.lower() == ".mkv" else None
            self._container = av.open(str(tmp), mode="w", format=fmt or "mp4")
            rate = Fraction(fps).limit_denominator(1001)
            self._stream = self._container.add_stream(codec, rate=rate)
            self._stream.width, self._stream.height = width, height
            if codec == "libx264":
                self._stream.pix_fmt = "yuv420p"
                self._stream.options = {"crf": str(crf), "preset": preset}
            elif codec == "ffv1":
                self._stream.pix_fmt = "bgr0"  # RGB without chroma subsampling: bit-exact round trip
            if gop is not None:
                self._stream.codec_context.gop_size = gop
            self._stream.codec_context.thread_count = threads
        except BaseException:
            self._atomic.__exit__(None, None, None)
            raise

    def write(self, frames: np.ndarray) -> None:
        """Encode one frame ``(H, W, 3)`` or a batch ``(N, H, W, 3)`` of RGB uint8."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(
                f"{self.path}: expected frames (N, {self.height}, {self.width}, 3), got {frames.shape}"
            )
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(frame, dtype=np.uint8), format="rgb24"
            )
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        self.num_written += len(frames)

    def close(self) -> None:
        """Flush the encoder and move the file into place."""
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop everything written so far; no file appears under ``path``."""
        self._container.close()
        self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

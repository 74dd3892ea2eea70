"""Shared test fixtures: small real videos with a frame index drawn into every frame.

Helpers (import them: ``from tests.conftest import ...`` or ``from conftest import ...``):

* ``pattern_frame(index, width, height) -> (H, W, 3) uint8``: frame ``index`` (0..255) drawn as
  a 4 x 2 grid of large black/white blocks, bit ``b`` of the index in block ``b`` (row-major).
  The blocks fill the whole frame, so the pattern survives H.264/MPEG-4 compression and any
  resize down to about 16 x 8 pixels.
* ``read_frame_index(frame) -> int``: the index back from a decoded (possibly lossy, resized)
  RGB frame.
* ``write_pattern_video(path, num_frames=60, width=96, height=64, fps=30, codec="ffv1", gop=None)``
  writes ``pattern_frame(0..num_frames-1)``. ``codec``: ``"ffv1"`` (lossless .mkv, bit-exact
  RGB), ``"libx264"`` (H.264 .mp4 via PyAV), ``"mp4v"`` (MPEG-4 Part 2 .mp4 via OpenCV),
  ``"mpeg1video"`` (MPEG-1 in an MPEG-PS .mpg), ``"libvpx"`` (VP8 in Ogg .ogv; PyAV has no
  Theora encoder here). ``faststart=True`` (H.264 only) puts the MP4 index first.
* ``write_audio_only(path)``, ``write_text_file(path)``, ``truncate_copy(src, dst, fraction)``.

Session fixtures (files are written once per test session, read-only by convention):

* ``pattern_videos``: ``dict[str, Path]`` with keys ``"ffv1_mkv"``, ``"h264_mp4"``,
  ``"mp4v_mp4"``, ``"mpeg1_mpg"``, ``"vp8_ogv"``; each ``PATTERN_NUM_FRAMES`` frames of
  ``PATTERN_WIDTH`` x ``PATTERN_HEIGHT`` at ``PATTERN_FPS``.
* ``bad_videos``: ``dict[str, Path]``: ``"missing"`` (does not exist), ``"empty"`` (0 bytes),
  ``"text"`` (text named .mp4), ``"audio_only"`` (AAC in .m4a), ``"truncated_mp4"`` (an MP4 cut
  in half: its index, at the end, is lost), ``"truncated_mkv"`` (FFV1 MKV cut in half: opens,
  fewer frames), ``"overreported_mp4"`` (faststart H.264 cut at 75%: the header still claims
  every frame; ``OVERREPORTED_HEADER_FRAMES`` in the header, fewer decode).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

PATTERN_NUM_FRAMES = 60
PATTERN_WIDTH = 96
PATTERN_HEIGHT = 64
PATTERN_FPS = 30
OVERREPORTED_HEADER_FRAMES = 90

_GRID_COLS, _GRID_ROWS = 4, 2  # 8 blocks = 8 bits


def pattern_frame(
    index: int, width: int = PATTERN_WIDTH, height: int = PATTERN_HEIGHT
) -> np.ndarray:
    """Frame ``index`` as a 4 x 2 grid of black (bit 0) / white (bit 1) blocks.

    Args:
        index: Frame number, 0..255.
        width: Frame width (at least 8).
        height: Frame height (at least 4).

    Returns:
        ``(height, width, 3)`` uint8 RGB.
    """
    if not 0 <= index < 256:
        raise ValueError(f"pattern frames encode indices 0..255, got {index}")
    frame = np.empty((height, width, 3), dtype=np.uint8)
    for bit in range(8):
        r, c = divmod(bit, _GRID_COLS)
        y0, y1 = r * height // _GRID_ROWS, (r + 1) * height // _GRID_ROWS
        x0, x1 = c * width // _GRID_COLS, (c + 1) * width // _GRID_COLS
        frame[y0:y1, x0:x1] = 255 if (index >> bit) & 1 else 0
    return frame


def read_frame_index(frame: np.ndarray) -> int:
    """Read back the index of a decoded pattern frame (any size, lossy codecs are fine).

    Args:
        frame: ``(H, W, 3)`` uint8 RGB.

    Returns:
        The frame index drawn by :func:`pattern_frame`.
    """
    height, width = frame.shape[:2]
    index = 0
    for bit in range(8):
        r, c = divmod(bit, _GRID_COLS)
        bh, bw = height / _GRID_ROWS, width / _GRID_COLS
        # The middle half of each block: edges blur under compression and resizing.
        y0, y1 = int(r * bh + bh / 4), int(r * bh + 3 * bh / 4) + 1
        x0, x1 = int(c * bw + bw / 4), int(c * bw + 3 * bw / 4) + 1
        if frame[y0:y1, x0:x1].mean() > 127:
            index |= 1 << bit
    return index


def read_frame_indices(frames: np.ndarray) -> list[int]:
    """:func:`read_frame_index` for each frame of ``(N, H, W, 3)``."""
    return [read_frame_index(f) for f in frames]


def write_pattern_video(
    path: str | Path,
    num_frames: int = PATTERN_NUM_FRAMES,
    width: int = PATTERN_WIDTH,
    height: int = PATTERN_HEIGHT,
    fps: float = PATTERN_FPS,
    codec: str = "ffv1",
    *,
    gop: int | None = None,
    faststart: bool = False,
) -> Path:
    """Write ``pattern_frame(0), ..., pattern_frame(num_frames - 1)`` to ``path``.

    Args:
        path: Output file; use the extension that fits ``codec`` (see the module docstring).
        num_frames: Frames to write (at most 256).
        width: Frame width (even for all codecs but ffv1).
        height: Frame height (even for all codecs but ffv1).
        fps: Frame rate.
        codec: ``"ffv1"``, ``"libx264"``, ``"mp4v"`` (OpenCV), ``"mpeg1video"`` or ``"libvpx"``.
        gop: Keyframe interval (PyAV codecs).
        faststart: MP4 index at the front of the file (``movflags=faststart``).

    Returns:
        ``Path(path)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if codec == "mp4v":
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {path}")
        for i in range(num_frames):
            writer.write(np.ascontiguousarray(pattern_frame(i, width, height)[..., ::-1]))
        writer.release()
        return path
    fmt = {"mpeg1video": "mpeg", "libvpx": "ogg", "ffv1": "matroska"}.get(codec, "mp4")
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", format=fmt, options=options) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = width, height
        stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i, width, height), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """An AAC file with no video stream (silence)."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=44100)
        for i in range(int(seconds * 44100) // 1024):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 44100, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_text_file(path: str | Path) -> Path:
    """A text file (named like a video by the caller)."""
    path = Path(path)
    path.write_text("this is not a video\n" * 20, encoding="utf-8")
    return path


def truncate_copy(src: str | Path, dst: str | Path, fraction: float) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (a file cut short)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


@pytest.fixture(scope="session")
def pattern_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small pattern videos in every container the decoder must handle (see module docstring)."""
    root = tmp_path_factory.mktemp("pattern_videos")
    return {
        "ffv1_mkv": write_pattern_video(root / "ffv1.mkv", codec="ffv1"),
        "h264_mp4": write_pattern_video(root / "h264.mp4", codec="libx264", gop=12),
        "mp4v_mp4": write_pattern_video(root / "mp4v.mp4", codec="mp4v"),
        "mpeg1_mpg": write_pattern_video(root / "mpeg1.mpg", codec="mpeg1video", gop=12),
        "vp8_ogv": write_pattern_video(root / "vp8.ogv", codec="libvpx", gop=12),
    }


@pytest.fixture(scope="session")
def bad_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files every reader must refuse (or read partially) with a clear ``VideoError``."""
    root = tmp_path_factory.mktemp("bad_videos")
    empty = root / "empty.mp4"
    empty.touch()
    full_mp4 = write_pattern_video(root / "full.mp4", codec="libx264", gop=12)
    full_mkv = write_pattern_video(root / "full.mkv", codec="ffv1")
    # Noise makes the frames large, so the MP4 index (written first) is small next to the data.
    full_fast = root / "full_faststart.mp4"
    _write_noisy_h264(full_fast, OVERREPORTED_HEADER_FRAMES)
    bad = {
        "missing": root / "does_not_exist.mp4",
        "empty": empty,
        "text": write_text_file(root / "text.mp4"),
        "audio_only": write_audio_only(root / "audio_only.m4a"),
        "truncated_mp4": truncate_copy(full_mp4, root / "truncated.mp4", 0.5),
        "truncated_mkv": truncate_copy(full_mkv, root / "truncated.mkv", 0.5),
        "overreported_mp4": truncate_copy(full_fast, root / "overreported.mp4", 0.75),
    }
    return bad


def _write_noisy_h264(path: Path, num_frames: int) -> None:
    rng = np.random.default_rng(0)
    width, height = 160, 128
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=PATTERN_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = 30
        for i in range(num_frames):
            img = pattern_frame(i, width, height)
            noise = rng.integers(0, 64, (height, width, 3), dtype=np.uint8)
            img = np.where(img > 0, img - noise, img + noise).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="session")
def real_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real-world corpus of ``tests/corpus.py`` (AVI B-frames, edit lists, rotation, ...)."""
    from corpus import build_corpus

    return build_corpus(tmp_path_factory.mktemp("real_corpus"))

"""io.decode's backend table: plugin backends by name, ``auto`` walking the table, the
FrameSource protocol, open_video's one signature, no private decord API (issue 19)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pytest

import video_lstm.io.decode.reader as reader_module
from video_lstm.errors import FrameIndexError, NotAVideoError
from video_lstm.io.decode import (
    DecodeOptions,
    FrameSource,
    IndexedSource,
    VideoReader,
    get_backend,
    list_backends,
    open_video,
    output_size,
    register_backend,
)
from video_lstm.io.video import VideoWriter

ROOT = Path(__file__).resolve().parents[1]


class NpyFrames(IndexedSource):
    """Frames saved with ``np.save`` as ``(N, H, W, 3)`` uint8: a backend in a few lines."""

    def __init__(self, path: Path, options: DecodeOptions) -> None:
        self.path = Path(path)
        if self.path.suffix != ".npy":
            raise NotAVideoError(self.path, "not a .npy file of frames")
        self.frames = np.load(self.path, mmap_mode="r")
        self.num_frames = len(self.frames)
        self.width, self.height = output_size(
            self.frames.shape[2], self.frames.shape[1], options.size
        )
        self.fps = 10.0
        self.closed = False

    def read(self, targets: np.ndarray) -> np.ndarray:
        return np.array(self.frames[targets])

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def table(monkeypatch):
    """The backend table, restored afterwards (registrations here do not leak)."""
    monkeypatch.setattr(reader_module, "_BACKENDS", dict(reader_module._BACKENDS))
    return reader_module._BACKENDS


@pytest.fixture(scope="module")
def npy_video(tmp_path_factory) -> tuple[Path, np.ndarray]:
    frames = np.stack([np.full((8, 12, 3), 10 * i, dtype=np.uint8) for i in range(20)])
    path = tmp_path_factory.mktemp("npy") / "frames.npy"
    np.save(path, frames)
    return path, frames


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mp4") / "clip.mp4"
    with VideoWriter(path, fps=10, width=32, height=24) as w:
        for i in range(10):
            w.write(np.full((24, 32, 3), 20 * i, dtype=np.uint8))
    return path


def test_builtin_backends_are_rows_of_the_table():
    assert list_backends()[:1] == ("auto",)
    assert {"decord", "pyav"} <= set(list_backends())
    assert get_backend("decord").priority > get_backend("pyav").priority
    assert get_backend("pyav").hwaccel and not get_backend("decord").hwaccel


def test_plugin_backend_by_name(table, npy_video):
    path, frames = npy_video
    register_backend("npy", NpyFrames)
    assert "npy" in list_backends()
    with open_video(path, backend="npy") as video:
        assert isinstance(video, FrameSource) and isinstance(video, NpyFrames)
        assert (video.num_frames, video.width, video.height) == (20, 12, 8)
        assert (video.info.backend, video.info.num_frames, video.duration) == ("npy", 20, 2.0)
        np.testing.assert_array_equal(video.get_frames([3, -1, 3, 0]), frames[[3, 19, 3, 0]])
        chunks = list(video.iter_chunks(6, step=2))
        assert [start for start, _ in chunks] == [0, 12]
        np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), frames[::2])
        with pytest.raises(FrameIndexError, match=rf"^{path}: frame index 20 out of range"):
            video.get_frames([20])
        assert video.get_frames([]).shape[0] == 0
    assert video.closed
    with pytest.raises(NotAVideoError, match="not a .npy file"):
        open_video(path.with_suffix(".mp4"), backend="npy")


def test_register_refuses_auto_and_duplicates(table):
    with pytest.raises(ValueError, match="cannot be named 'auto'"):
        register_backend("auto", NpyFrames)
    with pytest.raises(ValueError, match="'pyav' is already registered"):
        register_backend("pyav", NpyFrames)
    with pytest.raises(ValueError, match=r"backend must be one of \('auto', .*got 'nope'"):
        open_video("x.mp4", backend="nope")


def test_auto_walks_the_table_by_priority(table, mp4):
    seen = []

    def tagged(path: Path, options: DecodeOptions) -> FrameSource:
        seen.append(path)
        return VideoReader(path, options, backend="pyav")

    register_backend("h264_first", tagged, accepts=lambda probe: probe.codec == "h264", priority=30)
    with open_video(mp4) as video:
        assert seen == [mp4] and video.backend == "pyav"
    # A backend that raises a VideoError hands the file over to the next one in the table.
    register_backend("h264_first", NpyFrames, accepts=lambda p: True, priority=30, replace=True)
    with open_video(mp4) as video:
        assert isinstance(video, VideoReader) and video.backend == "decord"
    # One that accepts nothing is never chosen; without accepts it is by name only.
    register_backend("h264_first", tagged, accepts=lambda p: False, priority=30, replace=True)
    register_backend("by_name", tagged, priority=40)
    seen.clear()
    with open_video(mp4) as video:
        assert video.backend == "decord" and seen == []


def test_auto_with_hwaccel_passes_over_backends_without_it(table, mp4):
    with open_video(mp4, hwaccel="cuda") as video:  # CPU decode where no device opens
        assert video.backend == "pyav"


def test_open_video_keywords_are_decode_options():
    params = inspect.signature(open_video).parameters
    fields = [f.name for f in dataclasses.fields(DecodeOptions)]
    assert list(params) == ["path", "backend", "skip", *fields]  # skip: the passes of auto
    assert all(params[name].kind is inspect.Parameter.KEYWORD_ONLY for name in fields)
    assert {f: params[f].default for f in fields} == dataclasses.asdict(DecodeOptions())
    with pytest.raises(TypeError, match="sise"):
        open_video("x.mp4", sise=3)
    with pytest.raises(ValueError, match="on_error"):
        DecodeOptions(on_error="ignore")
    with pytest.raises(ValueError, match="size must be positive"):
        DecodeOptions(size=0)


def test_io_video_uses_the_one_frame_source():
    from video_lstm.io import video

    assert video.FrameSource is FrameSource


def test_no_private_decord_api():
    """decord is used through its public API only (no ``decord._ffi`` and the like)."""
    found = []
    for path in sorted((ROOT / "video_lstm").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("decord"):
                names = [node.module, *(a.name for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("decord")]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                names = [node.attr] if node.value.id == "decord" else []
            if any(part.startswith("_") for n in names for part in n.split(".")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def test_a_static_ending_keeps_decord(tmp_path):
    """decord's padding check (last frame equal to the one before) also fires on a video that
    ends on identical frames: FFmpeg counts the same frames, so decord stays and the frames
    are the right ones."""
    path = tmp_path / "static_end.mp4"
    frames = [np.full((24, 32, 3), 20 * min(i, 6), dtype=np.uint8) for i in range(10)]
    with VideoWriter(path, fps=10, width=32, height=24) as w:
        w.write(np.stack(frames))
    with open_video(path) as video:
        assert video.backend == "decord"
        last = video.get_frames([-1])
        assert (video.backend, video.num_frames, video.frames_lost) == ("decord", 10, 0)
        assert abs(float(last.mean()) - 120) < 2
        streamed = np.concatenate([f for _, f in video.iter_chunks(4)])
    assert [round(float(f.mean()) / 20) for f in streamed] == [0, 1, 2, 3, 4, 5, 6, 6, 6, 6]

"""Window scores of one video: stream -> shared per-frame features -> sliding windows.

The video is decoded in chunks of every ``frame_interval``-th frame, resized in the decoder
(inline, or a few chunks ahead in a DataLoader worker process); the CNN runs once per sampled
frame; a rolling buffer keeps the features of the last ``clip_len`` sampled frames and every
sliding window is scored (temporal model + head, batched) as soon as it is complete. Only the
window scores (K floats each) are kept. ``pass_backends`` is the decoder backend policy.

The scorer is runtime-neutral: features are torch tensors from the torch runtime and numpy
arrays from ONNX Runtime (``inference.runtime``), and torch is imported only for torch's
features or a prefetching worker, so ONNX inference runs without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from video_lstm.data.sampling import (
    fit_to_length,
    sampled_frames,
    sliding_window_starts,
    window_frame_spans,
)
from video_lstm.errors import VideoError

if TYPE_CHECKING:
    from video_lstm.inference.predictor import Predictor

__all__ = [
    "WindowScores",
    "open_args",
    "pass_backends",
    "score_video",
    "score_video_batched",
    "score_video_naive",
    "stack_features",
    "to_numpy",
]

# ---------------------------------------------------------------------------------------------
# First pass: window scores
# ---------------------------------------------------------------------------------------------


@dataclass
class WindowScores:
    """Per-window class probabilities and their source-frame spans ``[start, end)``."""

    starts: np.ndarray  # (W,) window start in sampled frames
    spans: np.ndarray  # (W, 2) source frames [start, end)
    probs: np.ndarray  # (W, K) float32
    num_sampled: int


def _spans(starts: np.ndarray, clip_len: int, interval: int, num_frames: int) -> np.ndarray:
    return window_frame_spans(
        starts, window=clip_len, frame_interval=interval, num_frames=num_frames
    )


# Features are torch tensors (torch runtime) or numpy arrays (ONNX Runtime): the few array ops
# the scorer needs, for either, without importing torch for numpy.
def _cat(parts: list[Any]) -> Any:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import torch

    return torch.cat(parts)


def stack_features(parts: list[Any]) -> Any:
    """``parts`` stacked on a new first axis: numpy arrays or torch tensors, either runtime's."""
    if isinstance(parts[0], np.ndarray):
        return np.stack(parts)
    import torch

    return torch.stack(parts)


def _copy(x: Any) -> Any:
    return x.copy() if isinstance(x, np.ndarray) else x.clone()


def to_numpy(x: Any) -> np.ndarray:
    """A numpy array (ONNX Runtime's) as it is, a CPU torch tensor as numpy."""
    return x if isinstance(x, np.ndarray) else x.numpy()


def _pad_window(feats: Any, clip_len: int) -> Any:
    """A video shorter than one window: repeat its last frame's features up to ``clip_len``."""
    if len(feats) >= clip_len:
        return feats
    shape = (clip_len - len(feats), *feats.shape[1:])
    last = feats[-1:]
    tail = np.broadcast_to(last, shape) if isinstance(feats, np.ndarray) else last.expand(*shape)
    return _cat([feats, tail])


class _StreamingScorer:
    """Consumes per-frame features in order and scores windows as soon as they are complete.

    Holds at most ``clip_len + chunk`` sampled frames' features (a rolling buffer) and up to
    ``window_batch`` windows waiting for one batched head pass.
    """

    def __init__(self, predictor: Predictor, clip_len: int, stride: int) -> None:
        self.predictor, self.clip_len, self.stride = predictor, clip_len, stride
        self.buf: Any = None  # (n, ...) features: a torch tensor or a numpy array
        self.buf_lo = 0  # sampled position of buf[0]
        self.seen = 0  # sampled frames pushed so far
        self.next_start = 0
        self.ready: list[tuple[int, Any]] = []
        self.starts: list[int] = []
        self.probs: list[Any] = []

    def _flush(self) -> None:
        if self.ready:
            batch = stack_features([w for _, w in self.ready])  # (w, L, ...)
            self.probs.append(self.predictor.score_windows(batch))
            self.starts += [s for s, _ in self.ready]
            self.ready = []

    def push(self, feats: Any) -> None:
        self.buf = feats if self.buf is None else _cat([self.buf, feats])
        self.seen += len(feats)
        while self.next_start + self.clip_len <= self.seen:
            lo = self.next_start - self.buf_lo
            self.ready.append((self.next_start, self.buf[lo : lo + self.clip_len]))
            self.next_start += self.stride
            if len(self.ready) >= self.predictor.window_batch:
                self._flush()
        # Keep what the next window needs, and always the last clip_len frames (for the tail).
        keep_from = min(self.next_start, self.seen - self.clip_len)
        if keep_from > self.buf_lo:
            # clone: a slice would keep the whole old buffer alive.
            self.buf = _copy(self.buf[keep_from - self.buf_lo :])
            self.buf_lo = keep_from

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        m, L = self.seen, self.clip_len
        if m == 0:
            raise ValueError("no frames were decoded")
        if m < L:
            self.ready.append((0, _pad_window(self.buf, L)))
        elif self.next_start - self.stride + L < m:  # the regular windows miss the tail
            lo = m - L - self.buf_lo
            self.ready.append((m - L, self.buf[lo : lo + L]))
        self._flush()
        return np.asarray(self.starts, dtype=np.int64), to_numpy(_cat(self.probs))


def _chunks(reader: Any, chunk_size: int, step: int, prefetch: int, *, pin: bool) -> Iterator[Any]:
    """``reader.iter_chunks``, decoded inline or ``prefetch`` chunks ahead in a worker process."""
    if prefetch <= 0:
        yield from reader.iter_chunks(chunk_size, step=step)
        return
    import torch  # prefetching is the one part of scoring that needs torch (its DataLoader)

    from video_lstm.inference.prefetch import ChunkStream

    loader = torch.utils.data.DataLoader(
        ChunkStream(reader, chunk_size, step),
        batch_size=None,
        num_workers=1,
        prefetch_factor=prefetch,
        pin_memory=pin,
    )
    for item in loader:
        if isinstance(item, VideoError):
            raise item
        if isinstance(item, int):
            if item != reader.num_frames:
                reader.measure()  # the worker found the stream damaged: the same count here
            continue
        yield item


def score_video(
    predictor: Predictor,
    reader: Any,
    *,
    stride: int | None = None,
    chunk_size: int = 64,
    prefetch: int | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> WindowScores:
    """Stream a video and score every sliding window, sharing per-frame features.

    Args:
        predictor: The model.
        reader: An open video (``video_lstm.open_video``), ideally resized in the decoder.
        stride: Window stride in sampled frames (default ``clip_len // 4``, at least 1).
        chunk_size: Sampled frames decoded per chunk.
        prefetch: Chunks decoded ahead in a worker process (0 = inline; ``None``: 2 on GPU, 0
            on CPU, where decoder and CNN compete for the same cores).
        on_frames: Called with the number of source frames covered by each chunk (progress).

    Returns:
        :class:`WindowScores`.
    """
    meta = predictor.meta
    L, interval = meta.clip_len, meta.frame_interval
    stride = stride or max(1, L // 4)
    scorer = _StreamingScorer(predictor, L, stride)
    cuda = predictor.device.type == "cuda"
    if prefetch is None:
        prefetch = 2 if cuda else 0
    for _, frames in _chunks(reader, chunk_size, interval, prefetch, pin=cuda):
        scorer.push(predictor.features(frames))
        if on_frames is not None:
            on_frames(len(frames) * interval)
    starts, probs = scorer.finish()
    spans = _spans(starts, L, interval, reader.num_frames)
    return WindowScores(starts, spans, probs, scorer.seen)


def score_video_batched(
    predictor: Predictor, reader: Any, *, stride: int | None = None
) -> WindowScores:
    """Reference: every sampled frame decoded at once, all windows in one head pass.

    Holds the whole video in memory; for tests (it must equal :func:`score_video`).
    """
    meta = predictor.meta
    L, interval = meta.clip_len, meta.frame_interval
    stride = stride or max(1, L // 4)
    idx = sampled_frames(reader.num_frames, interval)
    feats = predictor.features(reader.get_frames(idx))  # (M, ...)
    m = len(feats)
    starts = sliding_window_starts(m, L, stride)
    windows = stack_features([_pad_window(feats[s : s + L], L) for s in starts])  # (W, L, ...)
    saved = predictor.window_batch
    predictor.window_batch = len(windows)
    try:
        probs = to_numpy(predictor.score_windows(windows))
    finally:
        predictor.window_batch = saved
    return WindowScores(starts, _spans(starts, L, interval, reader.num_frames), probs, m)


def score_video_naive(
    predictor: Predictor, reader: Any, *, stride: int | None = None
) -> WindowScores:
    """The naive way (as MMAction2's long-video demo): decode each window's frames and run the
    full model on it, recomputing the CNN for every overlapping window. For benchmarks/tests."""
    meta = predictor.meta
    L, interval = meta.clip_len, meta.frame_interval
    stride = stride or max(1, L // 4)
    idx = sampled_frames(reader.num_frames, interval)
    starts = sliding_window_starts(len(idx), L, stride)
    probs = []
    for s in starts:
        window = idx[fit_to_length(np.arange(s, s + L), len(idx), "repeat_last")]
        probs.append(predictor.predict_clip(reader.get_frames(window)))
    probs = to_numpy(stack_features(probs))
    return WindowScores(starts, _spans(starts, L, interval, reader.num_frames), probs, len(idx))


def pass_backends(backend: str, device: Any) -> tuple[str, str]:
    """Decoder backends of the two passes: (model input, annotated video and clips).

    A forced backend (``"decord"``, ``"pyav"``) is used for both. ``"auto"`` means:

    - model input: PyAV on CPU. decord keeps decoding ahead in a background thread after each
      read, which fights the CNN's OpenMP threads for the cores: on 2 cores the interleaved
      decode + CNN of a 60 s 360p video took 3.2-3.8 s with decord (0.55 s decode and 1.3 s CNN
      when run apart) and 2.2 s with PyAV, which decodes only when asked (1.6 s since PyAV
      reuses its scaler, see ``io.decode``). On GPU the CNN leaves the cores free, so decord's
      read-ahead is overlap, not contention: ``"auto"``.
    - annotated video: PyAV. With a decord reader open while x264 encodes, peak RSS grew by
      ~0.7 MB per written 360p frame (1.2 GB for 1 min); PyAV stayed flat (~0.3 GB).
    """
    if backend != "auto":
        return backend, backend
    return ("pyav" if device.type == "cpu" else "auto"), "pyav"


def open_args(requested: str, chosen: str) -> dict[str, Any]:
    """``open_video``'s backend keywords for a pass whose :func:`pass_backends` pick is ``chosen``.

    Under ``"auto"`` the pick says PyAV rather than decord; a plugin's backend whose ``accepts``
    takes the file still comes first (the table's ``auto``, decord passed over), so
    ``--backend auto`` honours ``register_backend(..., accepts=...)`` as ``open_video`` does.
    """
    if requested == "auto" and chosen == "pyav":
        return {"backend": "auto", "skip": ("decord",)}
    return {"backend": chosen}

"""Which frames to decode: clip samplers and sliding windows. Pure arithmetic, no file access.

Every sampler returns int64 frame indices. Training clips, evaluation views, cached-feature clips
and annotation windows all come from here, so a change of rule reaches all of them at once.

Two units appear below:

- *frames*: indices into the source video, ``0 .. num_frames - 1``;
- *steps*: positions in a sequence that is already subsampled (every ``frame_interval``-th frame,
  e.g. the per-frame features cached to disk or streamed by the annotation pipeline).

Short videos (fewer frames than a clip needs) are never an error. The ``short`` rule decides what
fills the clip past the last frame:

- ``"repeat_last"`` (default): indices are clamped, so the last frame repeats;
- ``"loop"``: indices wrap around to the start, so the motion repeats.

Sliding windows are given by their start steps (an int64 ``(W,)`` array; window ``w`` covers steps
``[starts[w], starts[w] + window)``). :func:`window_steps`, :func:`window_frames` and
:func:`window_frame_spans` turn starts into step indices, source frame indices and source-frame
spans ``[start, end)``. The inference pipeline decodes frames ``0, k, 2k, ...``
(:func:`sampled_frames`), slides windows over those steps (:func:`sliding_window_starts`) and
reports each window's source-frame span.

Bad arguments (``num_frames <= 0``, ``clip_len < 1``, a non-integer count, an unknown ``short``)
raise ``ValueError``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Short = Literal["repeat_last", "loop"]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        # bool is an int subclass; True as a clip length is a bug, not 1.
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def fit_to_length(indices: np.ndarray, length: int, short: Short = "repeat_last") -> np.ndarray:
    """Map indices past ``length - 1`` back into range by the ``short`` rule.

    Args:
        indices: Non-negative int indices.
        length: Number of available frames (or steps).
        short: ``"repeat_last"`` clamps to the last one; ``"loop"`` wraps modulo ``length``.

    Returns:
        int64 indices in ``[0, length)``.
    """
    _check_positive(length=length)
    indices = np.asarray(indices, dtype=np.int64)
    if short == "repeat_last":
        return np.minimum(indices, length - 1)
    if short == "loop":
        return indices % length
    raise ValueError(f"short must be 'repeat_last' or 'loop', got {short!r}")


def clip_starts(
    num_steps: int,
    clip_len: int,
    *,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Start positions of clips of ``clip_len`` consecutive steps in a sequence of ``num_steps``.

    Args:
        num_steps: Length of the sequence.
        clip_len: Steps per clip.
        num_clips: Evaluation views (ignored when ``rng`` is given).
        rng: Training: one start drawn uniformly from every possible start.

    Returns:
        int64 starts: one random start (training), the centre start (``num_clips == 1``) or
        ``num_clips`` starts spread evenly from the first to the last possible start. A sequence
        shorter than the clip gets start 0.
    """
    _check_positive(num_steps=num_steps, clip_len=clip_len, num_clips=num_clips)
    last = max(0, num_steps - clip_len)
    if rng is not None:
        return np.array([rng.integers(0, last + 1)], dtype=np.int64)
    if num_clips == 1:
        return np.array([last // 2], dtype=np.int64)
    # floor(x + 0.5): half rounds up (np.round would round half to even: 2.5 -> 2 but 3.5 -> 4).
    return np.floor(np.linspace(0, last, num_clips) + 0.5).astype(np.int64)


def clip_indices(
    num_frames: int,
    *,
    clip_len: int,
    frame_interval: int = 1,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
    short: Short = "repeat_last",
) -> np.ndarray:
    """Frame indices of clips of ``clip_len`` frames, ``frame_interval`` apart.

    Training passes ``rng`` (one random clip, SlowFast/MMAction2 ``SampleFrames`` style);
    evaluation passes ``num_clips`` (views spread evenly over the video, the centre clip for 1).

    Args:
        num_frames: Frames in the video.
        clip_len: Frames per clip.
        frame_interval: Distance between consecutive clip frames.
        num_clips: Evaluation views (ignored when ``rng`` is given).
        rng: Random start for training.
        short: Rule for videos shorter than a clip (see the module docstring).

    Returns:
        int64 ``(V, clip_len)``; ``V = 1`` in training, ``num_clips`` in evaluation.
    """
    _check_positive(num_frames=num_frames, clip_len=clip_len, frame_interval=frame_interval)
    span = (clip_len - 1) * frame_interval + 1
    starts = clip_starts(num_frames, span, num_clips=num_clips, rng=rng)
    offsets = np.arange(clip_len, dtype=np.int64) * frame_interval
    return fit_to_length(starts[:, None] + offsets[None, :], num_frames, short)


def uniform_segments(
    num_frames: int,
    num_segments: int,
    *,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """TSN sampling: split the video into ``num_segments`` equal parts, take one frame from each.

    Args:
        num_frames: Frames in the video.
        num_segments: Parts (= frames returned).
        rng: Training: a random frame inside each part. Evaluation (``None``): each part's centre.

    Returns:
        int64 ``(num_segments,)`` non-decreasing indices. With fewer frames than segments some
        frames repeat (the parts are narrower than a frame).
    """
    _check_positive(num_frames=num_frames, num_segments=num_segments)
    width = num_frames / num_segments
    offset = rng.uniform(0.0, width, size=num_segments) if rng is not None else width / 2
    idx = np.floor(np.arange(num_segments) * width + offset).astype(np.int64)
    return np.clip(idx, 0, num_frames - 1)


def sliding_window_starts(num_steps: int, window: int, stride: int) -> np.ndarray:
    """Starts of sliding windows over a sequence, the tail always covered.

    Windows start every ``stride`` steps; when that leaves steps after the last window, one more
    window is added that ends exactly at the last step. A sequence shorter than ``window`` gets one
    window at 0 (filled by the ``short`` rule of whoever takes it). Every step is covered when
    ``stride <= window``; a larger stride skips steps between windows (sparse views).

    Args:
        num_steps: Length of the (subsampled) sequence.
        window: Steps per window.
        stride: Steps between window starts.

    Returns:
        int64 ``(W,)`` increasing starts; windows are ``[start, start + window)``.
    """
    _check_positive(num_steps=num_steps, window=window, stride=stride)
    if num_steps <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, num_steps - window + 1, stride, dtype=np.int64)
    if starts[-1] + window < num_steps:
        starts = np.append(starts, num_steps - window)
    return starts


def sampled_frames(num_frames: int, frame_interval: int = 1) -> np.ndarray:
    """Source frames a model running at ``frame_interval`` sees: ``0, k, 2k, ...``."""
    _check_positive(num_frames=num_frames, frame_interval=frame_interval)
    return np.arange(0, num_frames, frame_interval, dtype=np.int64)


def window_steps(
    starts: np.ndarray, *, window: int, num_steps: int, short: Short = "repeat_last"
) -> np.ndarray:
    """Step indices of windows ``[start, start + window)`` over a sequence of ``num_steps``.

    Args:
        starts: Window starts in steps (e.g. from :func:`sliding_window_starts`).
        window: Steps per window.
        num_steps: Length of the sequence; steps past its end follow ``short``.
        short: Rule for windows that run past the end (only when ``num_steps < window``).

    Returns:
        int64 ``(W, window)`` indices in ``[0, num_steps)``.
    """
    _check_positive(window=window, num_steps=num_steps)
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    return fit_to_length(starts[:, None] + np.arange(window)[None, :], num_steps, short)


def window_frames(
    starts: np.ndarray,
    *,
    window: int,
    num_frames: int,
    frame_interval: int = 1,
    short: Short = "repeat_last",
) -> np.ndarray:
    """Source frame indices of windows whose ``starts`` are in sampled steps.

    Step ``i`` is source frame ``i * frame_interval`` (see :func:`sampled_frames`).

    Returns:
        int64 ``(W, window)`` source frame indices, to pass to the decoder.
    """
    frames = sampled_frames(num_frames, frame_interval)
    return frames[window_steps(starts, window=window, num_steps=len(frames), short=short)]


def dense_clips(
    num_frames: int,
    *,
    clip_len: int,
    frame_interval: int = 1,
    stride: int | None = None,
    short: Short = "repeat_last",
) -> np.ndarray:
    """Every clip of a video at a fixed stride: the sliding windows, as source frame indices.

    Args:
        num_frames: Frames in the video.
        clip_len: Frames per clip.
        frame_interval: Distance between consecutive clip frames.
        stride: Sampled frames between clip starts (default ``clip_len``: clips do not overlap).
        short: Rule for videos shorter than a clip.

    Returns:
        int64 ``(W, clip_len)`` source frame indices; the last clip ends at the last sampled frame.
    """
    num_steps = len(sampled_frames(num_frames, frame_interval))
    starts = sliding_window_starts(num_steps, clip_len, clip_len if stride is None else stride)
    return window_frames(
        starts, window=clip_len, num_frames=num_frames, frame_interval=frame_interval, short=short
    )


def window_frame_spans(
    starts: np.ndarray, *, window: int, frame_interval: int, num_frames: int
) -> np.ndarray:
    """Source-frame spans ``[start, end)`` of windows given in sampled steps.

    Every source frame belongs to its nearest sampled frame (step ``j`` at frame ``j * k`` owns
    the frames from ``j * k - k // 2`` to ``j * k - k // 2 + k``; the first step from frame 0,
    the last step to the video's end), and a window of steps ``[s, s + window)`` spans the frames
    its steps own. So a span is centred on the frames the window saw (the labels of training
    windows and the frames a window's scores go to at inference agree with what the model saw;
    a span running on to the next step's frame put every boundary ``k / 2`` frames late), and
    the spans of windows from :func:`sliding_window_starts` cover every source frame.

    Args:
        starts: Window starts in sampled steps.
        window: Steps per window.
        frame_interval: ``k``, source frames per step.
        num_frames: Frames in the source video.

    Returns:
        int64 ``(W, 2)`` spans.
    """
    _check_positive(window=window, frame_interval=frame_interval, num_frames=num_frames)
    starts = np.asarray(starts, dtype=np.int64)
    k, half = frame_interval, frame_interval // 2
    last = starts + window - 1  # the window's last step
    begin = np.where(starts > 0, starts * k - half, 0)
    end = np.where(last >= (num_frames - 1) // k, num_frames, last * k - half + k)
    begin = np.minimum(begin, num_frames - 1)
    end = np.minimum(end, num_frames)
    return np.stack([begin, np.maximum(end, begin + 1)], axis=1)

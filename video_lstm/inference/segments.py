"""Window scores -> smoothed per-frame class probabilities -> action segments (pure numpy).

The pipeline scores sliding windows (possibly overlapping) and keeps, per window, its class
probabilities ``(W, K)`` and its source-frame span ``[start, end)``. Those are small (K floats
per window), so they can be collected incrementally while the video streams and turned into
segments once at the end:

    frame_probs = window_to_frame_probs(window_probs, spans, num_frames)   # (N, K)
    frame_probs = smooth(frame_probs, kernel_frames=round(0.5 * fps))
    segments = frames_to_segments(frame_probs, fps=fps, class_names=names)

or in one call with :func:`scores_to_segments`. The ``(N, K)`` array is the only per-frame state
(a 1 h video at 30 fps with 10 classes is 1.08 M floats, ~9 MB in float64).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from video_lstm.types import Segment

__all__ = [
    "CALIBRATION_GRID",
    "calibrate_rules",
    "frame_labels_from_segments",
    "frames_to_segments",
    "scores_to_segments",
    "smooth",
    "window_to_frame_probs",
]


def window_to_frame_probs(
    probs: np.ndarray,
    spans: np.ndarray | Sequence[tuple[int, int]],
    num_frames: int,
    *,
    weighting: str = "uniform",
) -> np.ndarray:
    """Spread per-window probabilities onto the frames each window covers.

    Each frame gets the weighted average of the windows covering it. ``"uniform"`` weighs every
    covering window equally; ``"triangular"`` weighs a window by how central the frame is in it
    (weight ``min(i + 1, L - i)`` at offset ``i`` of a window of length ``L``), so a window's
    opinion counts most in its middle, where the model saw context on both sides.

    Frames no window covers (only possible if the sampler drops the tail or leaves gaps) take the
    values of the nearest covered frame, so a missing tail does not read as "no action".

    Args:
        probs: ``(W, K)`` class probabilities per window.
        spans: ``(W, 2)`` source-frame spans ``[start, end)`` of the windows.
        num_frames: Length of the video in frames.
        weighting: ``"uniform"`` or ``"triangular"``.

    Returns:
        ``(num_frames, K)`` float64 per-frame probabilities.

    Raises:
        ValueError: On mismatched shapes, spans outside ``[0, num_frames]``, empty spans, or no
            window at all while ``num_frames > 0``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    if probs.ndim != 2 or len(probs) != len(spans):
        raise ValueError(
            f"probs must be (W, K) with one row per span; got {probs.shape} and {len(spans)} spans"
        )
    if weighting not in ("uniform", "triangular"):
        raise ValueError(f"weighting must be 'uniform' or 'triangular', got {weighting!r}")
    num_classes = probs.shape[1]
    if num_frames <= 0:
        return np.zeros((0, num_classes))
    if len(spans) == 0:
        raise ValueError(f"no window scores for a video of {num_frames} frames")
    starts, ends = spans[:, 0], spans[:, 1]
    if (starts < 0).any() or (ends > num_frames).any() or (ends <= starts).any():
        bad = int(np.flatnonzero((starts < 0) | (ends > num_frames) | (ends <= starts))[0])
        raise ValueError(
            f"window {bad} has span [{starts[bad]}, {ends[bad]}) outside [0, {num_frames}) or empty"
        )

    # Flatten every (window, frame) pair: frame index, owning window, weight.
    lengths = ends - starts
    window_of = np.repeat(np.arange(len(spans)), lengths)  # (sum L,)
    offset = np.arange(len(window_of)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    frame_of = starts[window_of] + offset
    if weighting == "uniform":
        weight = np.ones(len(window_of))
    else:
        weight = np.minimum(offset + 1, lengths[window_of] - offset).astype(np.float64)

    total = np.bincount(frame_of, weights=weight, minlength=num_frames)  # (N,)
    out = np.empty((num_frames, num_classes))
    for k in range(num_classes):
        out[:, k] = np.bincount(
            frame_of, weights=weight * probs[window_of, k], minlength=num_frames
        )
    covered = total > 0
    out[covered] /= total[covered, None]
    if not covered.all():
        # Nearest covered frame (ties go to the earlier one).
        idx = np.flatnonzero(covered)
        pos = np.searchsorted(idx, np.arange(num_frames))
        left = idx[np.clip(pos - 1, 0, len(idx) - 1)]
        right = idx[np.clip(pos, 0, len(idx) - 1)]
        frames = np.arange(num_frames)
        nearest = np.where(np.abs(frames - left) <= np.abs(right - frames), left, right)
        out[~covered] = out[nearest[~covered]]
    return out


def smooth(probs: np.ndarray, kernel_frames: int, *, method: str = "mean") -> np.ndarray:
    """Smooth per-frame probabilities along time with a centred window.

    The window spans ``kernel_frames // 2`` frames on each side (so an even kernel acts like the
    next odd one). It is edge-aware: near the ends it averages only the frames that exist, instead
    of padding with zeros (which would fake "no action" at the start and end).

    Args:
        probs: ``(N, K)`` per-frame probabilities.
        kernel_frames: Window length in frames; ``<= 1`` returns an unchanged copy.
        method: ``"mean"`` (moving average) or ``"median"`` (per class; keeps sharp edges,
            removes isolated flicker shorter than half the kernel).

    Returns:
        ``(N, K)`` float64 smoothed probabilities.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {probs.shape}")
    if method not in ("mean", "median"):
        raise ValueError(f"method must be 'mean' or 'median', got {method!r}")
    half = int(kernel_frames) // 2
    n = len(probs)
    if half <= 0 or n == 0:
        return probs.copy()
    if method == "mean":
        csum = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, axis=0)])
        lo = np.clip(np.arange(n) - half, 0, n)
        hi = np.clip(np.arange(n) + half + 1, 0, n)
        return (csum[hi] - csum[lo]) / (hi - lo)[:, None]
    padded = np.pad(probs, ((half, half), (0, 0)), constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=0)  # (N, K, k)
    return np.nanmedian(windows, axis=-1)


def frames_to_segments(
    probs: np.ndarray,
    *,
    fps: float,
    class_names: Sequence[str],
    threshold: float = 0.5,
    min_duration_s: float = 0.5,
    merge_gap_s: float = 0.25,
    background: str | None = None,
) -> list[Segment]:
    """Turn per-frame probabilities into action segments.

    Steps:
        1. Per frame, the arg-max class; frames whose top probability is below ``threshold``,
           or whose top class is ``background``, are "no action".
        2. Contiguous runs of one label become segments.
        3. Same-label neighbours separated by fewer than ``merge_gap_s`` seconds of frames are
           merged (the gap frames join the segment).
        4. Segments shorter than ``min_duration_s`` are dropped (their frames become no action).
        5. Step 3 again: a dropped short interloper (e.g. one flickering frame of another class)
           can leave two same-label neighbours with a small gap, which are then joined.

    The score is the mean probability of the segment's label over all its frames (gap frames
    included); ``start_s = start_frame / fps`` and ``end_s = end_frame / fps`` (end exclusive).

    Args:
        probs: ``(N, K)`` per-frame probabilities (usually smoothed).
        fps: Frame rate, for durations and timestamps.
        class_names: ``K`` names, in the model's class order.
        threshold: Minimum top probability for a frame to count as an action.
        min_duration_s: Shortest segment kept, in seconds.
        merge_gap_s: Same-label segments closer than this are merged.
        background: Optional class name that means "no action" (never becomes a segment).

    Returns:
        Segments sorted by start frame, non-overlapping.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(class_names):
        raise ValueError(
            f"probs must be (N, {len(class_names)}) for {len(class_names)} class names, "
            f"got shape {probs.shape}"
        )
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if background is not None and background not in class_names:
        raise ValueError(f"background class {background!r} is not one of {list(class_names)}")
    if len(probs) == 0:
        return []

    labels = probs.argmax(axis=1)
    active = probs.max(axis=1) >= threshold
    if background is not None:
        active &= labels != list(class_names).index(background)
    labels = np.where(active, labels, -1)

    # Run-length encoding of the label track: [start, end, label] for the non-background runs.
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(labels)]])
    runs = [
        [int(s), int(e), int(labels[s])]
        for s, e in zip(starts, ends, strict=True)
        if labels[s] >= 0
    ]

    # A small tolerance so that e.g. 0.5 s at 30 fps (15 frames) counts as 0.5 s, not 0.49999.
    eps = 1e-9
    max_gap = merge_gap_s * fps - eps
    min_len = min_duration_s * fps - eps

    def merge(runs: list[list[int]]) -> list[list[int]]:
        out: list[list[int]] = []
        for run in runs:
            if out and out[-1][2] == run[2] and run[0] - out[-1][1] < max_gap:
                out[-1][1] = run[1]
            else:
                out.append(list(run))
        return out

    runs = merge(runs)
    runs = merge([r for r in runs if r[1] - r[0] >= min_len])

    return [
        Segment(
            start_frame=s,
            end_frame=e,
            label=str(class_names[k]),
            score=float(probs[s:e, k].mean()),
            start_s=s / fps,
            end_s=e / fps,
        )
        for s, e, k in runs
    ]


def scores_to_segments(
    window_probs: np.ndarray,
    spans: np.ndarray | Sequence[tuple[int, int]],
    *,
    num_frames: int,
    fps: float,
    class_names: Sequence[str],
    smoothing_s: float = 0.5,
    smoothing: str = "mean",
    weighting: str = "uniform",
    threshold: float = 0.5,
    min_duration_s: float = 0.5,
    merge_gap_s: float = 0.25,
    background: str | None = None,
) -> tuple[np.ndarray, list[Segment]]:
    """Window scores -> per-frame probabilities -> segments, in one call.

    Args:
        window_probs: ``(W, K)`` class probabilities per window.
        spans: ``(W, 2)`` source-frame spans ``[start, end)``.
        num_frames: Video length in frames.
        fps: Frame rate.
        class_names: ``K`` class names.
        smoothing_s: Smoothing window in seconds (``round(smoothing_s * fps)`` frames; 0 = off).
        smoothing: ``"mean"`` or ``"median"``, see :func:`smooth`.
        weighting: ``"uniform"`` or ``"triangular"``, see :func:`window_to_frame_probs`.
        threshold: See :func:`frames_to_segments`.
        min_duration_s: See :func:`frames_to_segments`.
        merge_gap_s: See :func:`frames_to_segments`.
        background: See :func:`frames_to_segments`.

    Returns:
        ``(frame_probs, segments)``: the smoothed ``(num_frames, K)`` probabilities (for the
        overlay's per-frame confidence) and the segments.
    """
    frame_probs = window_to_frame_probs(window_probs, spans, num_frames, weighting=weighting)
    frame_probs = smooth(frame_probs, round(smoothing_s * fps), method=smoothing)
    segments = frames_to_segments(
        frame_probs,
        fps=fps,
        class_names=class_names,
        threshold=threshold,
        min_duration_s=min_duration_s,
        merge_gap_s=merge_gap_s,
        background=background,
    )
    return frame_probs, segments


def frame_labels_from_segments(
    segments: Sequence[Segment], num_frames: int, class_names: Sequence[str]
) -> np.ndarray:
    """Per-frame class index from segments (``-1`` where no segment covers the frame).

    This is what the annotated video shows as "current label", so the overlay agrees with the
    segment files rather than with the raw, flickering per-frame arg-max.

    Args:
        segments: Segments with labels from ``class_names``.
        num_frames: Video length in frames.
        class_names: The model's class names.

    Returns:
        ``(num_frames,)`` int64 array.
    """
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.full(num_frames, -1, dtype=np.int64)
    for seg in segments:
        if seg.label not in index:
            raise ValueError(f"segment label {seg.label!r} is not one of {list(class_names)}")
        labels[max(seg.start_frame, 0) : min(seg.end_frame, num_frames)] = index[seg.label]
    return labels


# ---------------------------------------------------------------------------------------------
# Calibration of the segment rules (``inference.settings.SegmentRules``) on validation videos
# ---------------------------------------------------------------------------------------------

CALIBRATION_GRID: dict[str, tuple[float, ...]] = {
    "threshold": (0.0, 0.3, 0.4, 0.5, 0.6, 0.7),
    "smoothing_s": (0.0, 0.25, 0.5, 1.0),
    "min_duration_s": (0.0, 0.25, 0.5, 1.0),
    "merge_gap_s": (0.0, 0.25, 0.5, 1.0),
}


def calibrate_rules(
    videos: Sequence[dict[str, Any]],
    class_names: Sequence[str],
    *,
    background: str | None = None,
    grid: dict[str, Sequence[float]] | None = None,
    tiou: float = 0.5,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Choose threshold, smoothing, minimum duration and merge gap on validation videos.

    Every combination of ``grid`` turns each video's window scores into segments
    (:func:`scores_to_segments`) and is scored by the mean of frame accuracy (idle frames count
    as background) and segment mAP at ``tiou`` (ActivityNet protocol); the best wins, ties going
    to the earlier (simpler) grid value.

    Args:
        videos: Per video ``{"probs" (W, K), "spans" (W, 2), "num_frames", "fps", "truth":
            [(start_s, end_s, label), ...]}``.
        class_names: The model's ``K`` classes.
        background: The model's no-action class, if any.
        grid: Values to try per rule (default :data:`CALIBRATION_GRID`).
        tiou: tIoU of the mAP term.

    Returns:
        ``(best, table)``: the best row (the four rules as plain values, and the scores reached:
        ``frame_accuracy``, ``mAP``, ``objective``) and one row per combination, in grid order.
    """
    import itertools

    from video_lstm.inference.metrics import detection_map

    grid = {**CALIBRATION_GRID, **(grid or {})}
    names = list(class_names)
    index = {c: i for i, c in enumerate(names)}
    actions = [c for c in names if c != background]
    if not videos:
        raise ValueError("calibration needs at least one validation video")
    truth_labels, truth = [], {}
    frames_base = []  # per video: the unsmoothed frame probabilities
    for i, v in enumerate(videos):
        n, fps = int(v["num_frames"]), float(v["fps"])
        labels = np.full(n, index[background] if background else -1)
        for s, e, lab in v["truth"]:
            labels[max(0, round(s * fps)) : max(0, round(e * fps))] = index[lab]
        truth_labels.append(labels)
        truth[str(i)] = [tuple(t) for t in v["truth"]]
        frames_base.append(window_to_frame_probs(v["probs"], v["spans"], n))
    table = []
    best: dict[str, Any] | None = None
    for smoothing_s in grid["smoothing_s"]:
        smoothed = [
            smooth(p, round(smoothing_s * float(v["fps"])))
            for p, v in zip(frames_base, videos, strict=True)
        ]
        for threshold, min_d, gap in itertools.product(
            grid["threshold"], grid["min_duration_s"], grid["merge_gap_s"]
        ):
            correct = total = 0
            preds = {}
            for i, (p, v) in enumerate(zip(smoothed, videos, strict=True)):
                segs = frames_to_segments(
                    p,
                    fps=float(v["fps"]),
                    class_names=names,
                    threshold=threshold,
                    min_duration_s=min_d,
                    merge_gap_s=gap,
                    background=background,
                )
                got = frame_labels_from_segments(segs, len(p), names)
                if background:
                    got = np.where(got < 0, index[background], got)
                correct += int((got == truth_labels[i]).sum())
                total += len(got)
                preds[str(i)] = [(g.start_s, g.end_s, g.label, g.score) for g in segs]
            acc = correct / max(total, 1)
            m = detection_map(truth, preds, actions, (tiou,))["mAP"][f"{tiou:g}"] or 0.0
            row = {
                "threshold": float(threshold),
                "smoothing_s": float(smoothing_s),
                "min_duration_s": float(min_d),
                "merge_gap_s": float(gap),
                "frame_accuracy": acc,
                "mAP": m,
                "objective": 0.5 * (acc + m),
            }
            table.append(row)
            if best is None or row["objective"] > best["objective"] + 1e-12:
                best = row
    assert best is not None
    return best, table

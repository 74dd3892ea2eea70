"""Window scores -> per-frame probabilities -> segments, on synthetic arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from video_lstm.inference.segments import (
    frame_labels_from_segments,
    frames_to_segments,
    scores_to_segments,
    smooth,
    window_to_frame_probs,
)

NAMES = ["walk", "jump", "idle"]


def one_hot_track(labels: list[int], k: int = 3, p: float = 0.9) -> np.ndarray:
    """(N, k) probabilities: ``p`` on the given class, the rest spread evenly; -1 = uniform."""
    out = np.full((len(labels), k), 1.0 / k)
    for i, lab in enumerate(labels):
        if lab >= 0:
            out[i] = (1 - p) / (k - 1)
            out[i, lab] = p
    return out


def spans_of(segs):
    return [(s.start_frame, s.end_frame, s.label) for s in segs]


# ---------------------------------------------------------------- window -> frame


def test_window_to_frame_uniform_exact_average():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    spans = [(0, 4), (2, 6), (4, 8)]
    out = window_to_frame_probs(probs, spans, 8)
    expected = np.array(
        [[1, 0], [1, 0], [0.5, 0.5], [0.5, 0.5], [0.25, 0.75], [0.25, 0.75], [0.5, 0.5], [0.5, 0.5]]
    )
    np.testing.assert_allclose(out, expected)


def test_window_to_frame_triangular_weights_centre():
    # Windows of length 4 have weights 1,2,2,1; frame 2 is offset 2 (w=2) in win 0, offset 0 (w=1) in win 1.
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = window_to_frame_probs(probs, [(0, 4), (2, 6)], 6, weighting="triangular")
    np.testing.assert_allclose(out[2], [2 / 3, 1 / 3])
    np.testing.assert_allclose(out[3], [1 / 3, 2 / 3])
    np.testing.assert_allclose(out[0], [1.0, 0.0])
    np.testing.assert_allclose(out[5], [0.0, 1.0])


def test_window_to_frame_uncovered_frames_take_nearest():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = window_to_frame_probs(probs, [(2, 4), (6, 7)], 10)
    # frames 0,1 -> frame 2; frame 4 -> 3 (nearer); 5 -> 6 (nearer); 7..9 -> 6
    assert out[:, 1].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]


@pytest.mark.parametrize(
    "spans, n",
    [([(0, 5)], 4), ([(-1, 2)], 4), ([(2, 2)], 4), ([(3, 1)], 4)],
)
def test_window_to_frame_rejects_bad_spans(spans, n):
    with pytest.raises(ValueError, match="span"):
        window_to_frame_probs(np.ones((1, 2)), spans, n)


def test_window_to_frame_rejects_mismatch_and_no_windows():
    with pytest.raises(ValueError, match="one row per span"):
        window_to_frame_probs(np.ones((2, 2)), [(0, 1)], 4)
    with pytest.raises(ValueError, match="no window"):
        window_to_frame_probs(np.ones((0, 2)), np.zeros((0, 2)), 4)


# ---------------------------------------------------------------- smoothing


def test_smooth_mean_is_edge_aware():
    x = np.array([[1.0], [1.0], [1.0], [4.0]])
    out = smooth(x, 3)
    np.testing.assert_allclose(out[:, 0], [1.0, 1.0, 2.0, 2.5])
    np.testing.assert_allclose(smooth(x, 1), x)  # kernel 1: unchanged


def test_smooth_constant_stays_constant_at_edges():
    x = np.full((20, 3), 0.7)
    for method in ("mean", "median"):
        np.testing.assert_allclose(smooth(x, 9, method=method), x)


def test_smooth_median_removes_single_frame_spike():
    x = np.zeros((9, 1))
    x[4] = 1.0
    np.testing.assert_allclose(smooth(x, 3, method="median")[:, 0], np.zeros(9))


# ---------------------------------------------------------------- segments


def test_clean_two_action_sequence():
    probs = one_hot_track([0] * 30 + [1] * 20)
    segs = frames_to_segments(probs, fps=10, class_names=NAMES)
    assert spans_of(segs) == [(0, 30, "walk"), (30, 50, "jump")]
    assert segs[0].score == pytest.approx(0.9)
    assert segs[1].start_s == pytest.approx(3.0) and segs[1].end_s == pytest.approx(5.0)


def test_flicker_removed_by_smoothing():
    labels = [0] * 30
    for i in (7, 15, 22):  # isolated one-frame flips to "jump"
        labels[i] = 1
    probs = one_hot_track(labels, p=0.8)
    raw = frames_to_segments(probs, fps=10, class_names=NAMES, min_duration_s=0, merge_gap_s=0)
    assert len(raw) == 7  # the flicker really is there
    segs = frames_to_segments(smooth(probs, 5), fps=10, class_names=NAMES, merge_gap_s=0)
    assert spans_of(segs) == [(0, 30, "walk")]


def test_threshold_makes_gap():
    probs = np.concatenate([one_hot_track([0] * 10), one_hot_track([0] * 10, p=0.4)])
    probs = np.concatenate([probs, one_hot_track([0] * 10)])
    segs = frames_to_segments(probs, fps=10, class_names=NAMES, merge_gap_s=0)
    assert spans_of(segs) == [(0, 10, "walk"), (20, 30, "walk")]
    lower = frames_to_segments(probs, fps=10, class_names=NAMES, threshold=0.3, merge_gap_s=0)
    assert spans_of(lower) == [(0, 30, "walk")]


@pytest.mark.parametrize("gap, merged", [(2, True), (3, False), (4, False)])
def test_merge_gap(gap, merged):
    # merge_gap_s=0.25 at fps 10 -> gaps under 2.5 frames are merged.
    probs = one_hot_track([1] * 10 + [-1] * gap + [1] * 10)
    segs = frames_to_segments(probs, fps=10, class_names=NAMES, merge_gap_s=0.25)
    if merged:
        assert spans_of(segs) == [(0, 20 + gap, "jump")]
        # Score averages over the gap frames too.
        assert segs[0].score == pytest.approx((20 * 0.9 + gap / 3) / (20 + gap))
    else:
        assert spans_of(segs) == [(0, 10, "jump"), (10 + gap, 20 + gap, "jump")]


def test_min_duration_drop_and_exact_boundary():
    # fps 30, min 0.5 s = 15 frames: a 15-frame run stays, a 14-frame run goes.
    probs = one_hot_track([0] * 15 + [-1] * 20 + [1] * 14)
    segs = frames_to_segments(probs, fps=30, class_names=NAMES)
    assert spans_of(segs) == [(0, 15, "walk")]


def test_short_interloper_dropped_then_neighbours_merged():
    probs = one_hot_track([0] * 20 + [1] * 2 + [0] * 20)
    segs = frames_to_segments(probs, fps=10, class_names=NAMES, merge_gap_s=0.25)
    assert spans_of(segs) == [(0, 42, "walk")]


def test_background_class_is_no_action():
    probs = one_hot_track([2] * 10 + [0] * 10 + [2] * 10)
    segs = frames_to_segments(probs, fps=10, class_names=NAMES, background="idle")
    assert spans_of(segs) == [(10, 20, "walk")]
    with_idle = frames_to_segments(probs, fps=10, class_names=NAMES)
    assert [s.label for s in with_idle] == ["idle", "walk", "idle"]
    with pytest.raises(ValueError, match="background"):
        frames_to_segments(probs, fps=10, class_names=NAMES, background="nope")


def test_frames_to_segments_validates():
    with pytest.raises(ValueError, match="class names"):
        frames_to_segments(np.ones((5, 2)), fps=10, class_names=NAMES)
    with pytest.raises(ValueError, match="fps"):
        frames_to_segments(np.ones((5, 3)), fps=0, class_names=NAMES)
    assert frames_to_segments(np.ones((0, 3)), fps=10, class_names=NAMES) == []


def test_scores_to_segments_end_to_end_with_sliding_windows():
    # 100 frames, windows of 16 with stride 4 (last one covers the tail), walk then jump at 50.
    n, length, stride = 100, 16, 4
    starts = list(range(0, n - length + 1, stride))
    if starts[-1] + length < n:
        starts.append(n - length)
    spans = np.array([(s, s + length) for s in starts])
    centre = spans.mean(axis=1)
    window_probs = np.where((centre < 50)[:, None], [0.9, 0.05, 0.05], [0.05, 0.9, 0.05])
    frame_probs, segs = scores_to_segments(
        window_probs, spans, num_frames=n, fps=25, class_names=NAMES, smoothing_s=0.2
    )
    assert frame_probs.shape == (n, 3)
    assert [s.label for s in segs] == ["walk", "jump"]
    assert segs[0].start_frame == 0 and segs[-1].end_frame == n
    assert abs(segs[0].end_frame - 50) <= 2 and segs[0].end_frame == segs[1].start_frame


def test_frame_labels_from_segments():
    probs = one_hot_track([0] * 10 + [-1] * 5 + [1] * 10)
    segs = frames_to_segments(probs, fps=10, class_names=NAMES, merge_gap_s=0)
    labels = frame_labels_from_segments(segs, 25, NAMES)
    assert labels.tolist() == [0] * 10 + [-1] * 5 + [1] * 10

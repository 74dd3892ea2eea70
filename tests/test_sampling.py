"""Samplers are arithmetic: tables of expected indices, plus properties over many shapes."""

import numpy as np
import pytest

from video_lstm.data.sampling import (
    clip_indices,
    clip_starts,
    dense_clips,
    fit_to_length,
    sampled_frames,
    sliding_window_starts,
    uniform_segments,
    window_frame_spans,
    window_frames,
    window_steps,
)


@pytest.mark.parametrize(
    ("indices", "length", "short", "expected"),
    [
        ([0, 1, 2, 3, 4], 3, "repeat_last", [0, 1, 2, 2, 2]),
        ([0, 1, 2, 3, 4], 3, "loop", [0, 1, 2, 0, 1]),
        ([5, 6], 10, "loop", [5, 6]),
    ],
)
def test_fit_to_length(indices, length, short, expected):
    np.testing.assert_array_equal(fit_to_length(np.array(indices), length, short), expected)


@pytest.mark.parametrize(
    ("num_steps", "clip_len", "num_clips", "expected"),
    [
        (10, 4, 1, [3]),  # centre: last start 6 -> 3
        (10, 4, 3, [0, 3, 6]),
        (10, 4, 4, [0, 2, 4, 6]),
        (3, 4, 2, [0, 0]),  # shorter than a clip
        (4, 4, 1, [0]),
        (9, 4, 3, [0, 3, 5]),  # linspace 0, 2.5, 5: half rounds up
        (12, 4, 3, [0, 4, 8]),
    ],
)
def test_clip_starts_eval(num_steps, clip_len, num_clips, expected):
    np.testing.assert_array_equal(clip_starts(num_steps, clip_len, num_clips=num_clips), expected)


def test_clip_starts_random_covers_every_start_and_is_seeded():
    rng = np.random.default_rng(0)
    seen = {int(clip_starts(10, 4, rng=rng)[0]) for _ in range(500)}
    assert seen == set(range(7))
    a = clip_starts(100, 8, rng=np.random.default_rng(3))
    b = clip_starts(100, 8, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("num_frames", "clip_len", "interval", "num_clips", "short", "expected"),
    [
        (20, 4, 2, 1, "repeat_last", [[6, 8, 10, 12]]),  # span 7, last start 13, centre 6
        (20, 4, 2, 2, "repeat_last", [[0, 2, 4, 6], [13, 15, 17, 19]]),
        (5, 4, 2, 1, "repeat_last", [[0, 2, 4, 4]]),
        (5, 4, 2, 1, "loop", [[0, 2, 4, 1]]),
        (1, 3, 1, 1, "repeat_last", [[0, 0, 0]]),
    ],
)
def test_clip_indices_eval(num_frames, clip_len, interval, num_clips, short, expected):
    got = clip_indices(
        num_frames, clip_len=clip_len, frame_interval=interval, num_clips=num_clips, short=short
    )
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("num_frames", [1, 7, 16, 33, 100])
@pytest.mark.parametrize("interval", [1, 2, 4])
def test_clip_indices_random_in_range_and_evenly_spaced(num_frames, interval):
    rng = np.random.default_rng(num_frames)
    for _ in range(20):
        (clip,) = clip_indices(num_frames, clip_len=8, frame_interval=interval, rng=rng)
        assert clip.shape == (8,) and clip.min() >= 0 and clip.max() < num_frames
        assert np.all(np.diff(clip) >= 0)
        if num_frames >= 7 * interval + 1:
            assert np.all(np.diff(clip) == interval)


@pytest.mark.parametrize(
    ("num_frames", "segments", "expected"),
    [
        (10, 5, [1, 3, 5, 7, 9]),
        (8, 4, [1, 3, 5, 7]),
        (3, 6, [0, 0, 1, 1, 2, 2]),
        (100, 1, [50]),
    ],
)
def test_uniform_segments_eval(num_frames, segments, expected):
    np.testing.assert_array_equal(uniform_segments(num_frames, segments), expected)


@pytest.mark.parametrize("num_frames", [1, 3, 8, 41])
@pytest.mark.parametrize("interval", [1, 3])
@pytest.mark.parametrize("num_clips", [1, 2, 5])
def test_clip_indices_eval_views_shape_range_order(num_frames, interval, num_clips):
    views = clip_indices(num_frames, clip_len=6, frame_interval=interval, num_clips=num_clips)
    assert views.shape == (num_clips, 6) and views.dtype == np.int64
    assert views.min() >= 0 and views.max() < num_frames
    assert np.all(np.diff(views, axis=1) >= 0)  # sorted within a clip
    assert np.all(np.diff(views[:, 0]) >= 0)  # views ordered by start


@pytest.mark.parametrize("num_frames", [1, 5, 17, 64])
@pytest.mark.parametrize("segments", [1, 4, 8])
def test_uniform_segments_train_in_range_and_sorted(num_frames, segments):
    rng = np.random.default_rng(num_frames * 10 + segments)
    for _ in range(20):
        idx = uniform_segments(num_frames, segments, rng=rng)
        assert idx.shape == (segments,) and idx.dtype == np.int64
        assert idx.min() >= 0 and idx.max() < num_frames and np.all(np.diff(idx) >= 0)


def test_uniform_segments_seeded():
    a = uniform_segments(100, 8, rng=np.random.default_rng(5))
    b = uniform_segments(100, 8, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_uniform_segments_train_one_frame_per_segment():
    rng = np.random.default_rng(1)
    for _ in range(100):
        idx = uniform_segments(40, 8, rng=rng)
        np.testing.assert_array_equal(idx // 5, np.arange(8))  # frame k lies in segment k


@pytest.mark.parametrize(
    ("num_steps", "window", "stride", "expected"),
    [
        (16, 8, 4, [0, 4, 8]),
        (18, 8, 4, [0, 4, 8, 10]),  # tail: one more window ending at step 17
        (8, 8, 4, [0]),
        (5, 8, 4, [0]),
        (20, 4, 8, [0, 8, 16]),
        (21, 4, 8, [0, 8, 16, 17]),
    ],
)
def test_sliding_window_starts(num_steps, window, stride, expected):
    np.testing.assert_array_equal(sliding_window_starts(num_steps, window, stride), expected)


@pytest.mark.parametrize("num_steps", [1, 5, 16, 17, 99])
@pytest.mark.parametrize(("window", "stride"), [(8, 4), (8, 8), (4, 1), (16, 5)])
def test_sliding_windows_cover_every_step(num_steps, window, stride):
    starts = sliding_window_starts(num_steps, window, stride)
    covered = np.zeros(num_steps, bool)
    for s in starts:
        covered[s : s + window] = True
    assert covered.all()
    assert starts[-1] + window >= num_steps and np.all(np.diff(starts) > 0)


@pytest.mark.parametrize(
    ("starts", "window", "num_steps", "short", "expected"),
    [
        ([0, 2], 3, 5, "repeat_last", [[0, 1, 2], [2, 3, 4]]),
        ([0], 5, 3, "repeat_last", [[0, 1, 2, 2, 2]]),
        ([0], 5, 3, "loop", [[0, 1, 2, 0, 1]]),
    ],
)
def test_window_steps(starts, window, num_steps, short, expected):
    got = window_steps(np.array(starts), window=window, num_steps=num_steps, short=short)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("starts", "window", "num_frames", "interval", "expected"),
    [
        # 10 frames at interval 3: steps 0..3 are frames 0, 3, 6, 9
        ([0, 2], 2, 10, 3, [[0, 3], [6, 9]]),
        ([0], 6, 10, 3, [[0, 3, 6, 9, 9, 9]]),
        ([1, 3], 3, 6, 1, [[1, 2, 3], [3, 4, 5]]),
    ],
)
def test_window_frames(starts, window, num_frames, interval, expected):
    got = window_frames(
        np.array(starts), window=window, num_frames=num_frames, frame_interval=interval
    )
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("num_frames", [1, 7, 30, 101])
@pytest.mark.parametrize("interval", [1, 2, 5])
@pytest.mark.parametrize(("window", "stride"), [(4, 2), (8, 8), (5, 3), (4, 1)])
def test_inference_windows_cover_every_source_frame(num_frames, interval, window, stride):
    # The annotation pipeline: decode 0, k, 2k, ...; slide windows over those steps.
    num_steps = len(sampled_frames(num_frames, interval))
    starts = sliding_window_starts(num_steps, window, stride)
    frames = window_frames(starts, window=window, num_frames=num_frames, frame_interval=interval)
    assert frames.shape == (len(starts), window)
    assert frames.min() >= 0 and frames.max() < num_frames
    assert np.all(frames % interval == 0) and np.all(np.diff(frames, axis=1) >= 0)
    spans = window_frame_spans(
        starts, window=window, frame_interval=interval, num_frames=num_frames
    )
    covered = np.zeros(num_frames, bool)
    for (lo, hi), f in zip(spans, frames, strict=True):
        assert lo <= f[0] and f[-1] < hi <= num_frames  # the span holds the window's frames
        # ... centred on them: at most half a step before the first and after the last.
        assert (
            f[0] - lo <= interval // 2
            and hi - 1 - f[-1] <= interval - interval // 2 - 1
            or (hi == num_frames)
        )
        covered[lo:hi] = True
    assert covered.all()


def test_dense_clips_and_spans():
    np.testing.assert_array_equal(sampled_frames(10, 3), [0, 3, 6, 9])
    clips = dense_clips(20, clip_len=4, frame_interval=2, stride=2)
    # sampled frames 0,2,..,18 (10 steps); window starts 0,2,4,6
    np.testing.assert_array_equal(clips[:, 0], [0, 4, 8, 12])
    np.testing.assert_array_equal(clips[-1], [12, 14, 16, 18])
    spans = window_frame_spans(np.array([0, 2, 4, 6]), window=4, frame_interval=2, num_frames=20)
    # Each sampled frame owns itself and the frame after... less the half step before it.
    np.testing.assert_array_equal(spans, [[0, 7], [3, 11], [7, 15], [11, 20]])
    np.testing.assert_array_equal(dense_clips(3, clip_len=4), [[0, 1, 2, 2]])
    np.testing.assert_array_equal(dense_clips(3, clip_len=4, short="loop"), [[0, 1, 2, 0]])
    # default stride = clip_len; the tail clip ends at the last frame
    np.testing.assert_array_equal(
        dense_clips(10, clip_len=4), [[0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9]]
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: clip_indices(0, clip_len=4),
        lambda: clip_indices(10, clip_len=0),
        lambda: sliding_window_starts(10, 4, 0),
        lambda: fit_to_length(np.arange(3), 2, "bounce"),
        lambda: uniform_segments(10, 0),
        lambda: uniform_segments(-3, 2),
        lambda: clip_indices(10, clip_len=2.5),
        lambda: clip_indices(10, clip_len=True),
        lambda: clip_indices(10, clip_len=4, frame_interval=0),
        lambda: clip_indices(10, clip_len=4, short="bounce"),
        lambda: clip_starts(10, 4, num_clips=0),
        lambda: sampled_frames(0),
        lambda: dense_clips(10, clip_len=4, stride=0),
        lambda: window_steps(np.array([0]), window=4, num_steps=0),
    ],
)
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()

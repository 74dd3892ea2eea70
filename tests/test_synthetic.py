"""Synthetic action videos: shapes, determinism, pair separation only by order, sequences, writer."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from video_lstm.data.datasets import load_manifest
from video_lstm.data.synthetic import (
    ACTIONS,
    MIRRORED,
    make_action_sequence,
    render_action,
    sample_appearance,
    write_dataset,
)


def _decode(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _foreground(frames: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Object masks ``(T, H, W)``: with no noise and no distractors, anything not background."""
    return np.abs(frames.astype(np.int16) - background.astype(np.int16)).max(-1) > 0


@pytest.mark.parametrize("action", ACTIONS)
def test_render_shape_dtype_and_determinism(action):
    a = render_action(action, num_frames=12, size=(48, 64), rng=3)
    assert a.shape == (12, 48, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, render_action(action, num_frames=12, size=(48, 64), rng=3))
    assert not np.array_equal(a, render_action(action, num_frames=12, size=(48, 64), rng=4))
    # The scene changes over the clip: it is a video, not a still.
    assert np.abs(a[-1].astype(int) - a[0].astype(int)).max() > 50


def test_render_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown action"):
        render_action("jump", num_frames=8, size=32, rng=0)
    with pytest.raises(ValueError, match="num_frames"):
        render_action("grow", num_frames=1, size=32, rng=0)


def _clip_features(action: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(order-agnostic, temporal) features of the object in one clip."""
    size = 64
    rng = np.random.default_rng(seed)
    app = sample_appearance(size, rng, distractors=0)
    frames = render_action(action, num_frames=16, size=size, rng=rng, appearance=app, noise_std=0)
    fg = _foreground(frames, app.background)
    t = np.arange(len(frames), dtype=float)
    area = fg.sum((1, 2)).astype(float)
    yy, xx = np.mgrid[0:size, 0:size]
    cx = (fg * xx).sum((1, 2)) / area
    cy = (fg * yy).sum((1, 2)) / area
    # Order-agnostic: statistics of the set of frames (permuting frames leaves them unchanged).
    pooled = np.array([cx.mean(), cy.mean(), area.mean(), cx.std(), cy.std(), area.std()])
    # Temporal: trends over time and rotation sense from optical flow (curl around the object).
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    curl = 0.0
    for i in range(len(frames) - 1):
        flow = cv2.calcOpticalFlowFarneback(gray[i], gray[i + 1], None, 0.5, 2, 9, 3, 5, 1.1, 0)
        m = fg[i]
        rx, ry = xx[m] - cx[i], yy[m] - cy[i]
        curl += float((rx * flow[..., 1][m] - ry * flow[..., 0][m]).mean())
    temporal = np.array([np.polyfit(t, v, 1)[0] for v in (cx, cy, np.log(area))] + [curl])
    return pooled, temporal


def _loo_nearest_centroid(x: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out accuracy of a nearest-centroid classifier on standardised features."""
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    hits = 0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        centroids = [x[keep & (y == c)].mean(0) for c in (0, 1)]
        pred = int(np.argmin([np.linalg.norm(x[i] - c) for c in centroids]))
        hits += pred == y[i]
    return hits / len(x)


@pytest.mark.parametrize("action", ["move_right", "move_down", "grow", "rotate_cw"])
def test_pairs_separate_by_order_only(action):
    mirror = MIRRORED[action]
    n = 24
    # Disjoint seeds: with one seed, a clip and its mirror share everything but the direction.
    feats = [_clip_features(action, s) for s in range(n)]
    feats += [_clip_features(mirror, s) for s in range(1000, 1000 + n)]
    pooled = np.stack([f[0] for f in feats])
    temporal = np.stack([f[1] for f in feats])
    y = np.repeat([0, 1], n)
    # A frame-set model is at chance on the pair, a model of the order gets it right.
    assert _loo_nearest_centroid(pooled, y) <= 0.7
    assert _loo_nearest_centroid(temporal, y) >= 0.95


@pytest.mark.parametrize(
    ("action", "feature", "sign"),
    [
        ("move_right", 0, 1),
        ("move_left", 0, -1),
        ("move_down", 1, 1),
        ("move_up", 1, -1),
        ("grow", 2, 1),
        ("shrink", 2, -1),
        ("rotate_cw", 3, 1),  # clockwise on screen is a positive curl with the y axis down
        ("rotate_ccw", 3, -1),
    ],
)
def test_actions_move_the_named_way(action, feature, sign):
    signs = [np.sign(_clip_features(action, seed)[1][feature]) for seed in range(6)]
    assert all(s == sign for s in signs)


def test_sequence_ground_truth_matches_frames():
    actions = ["move_right", "grow", "rotate_ccw", "move_up"]
    frames, segments = make_action_sequence(
        actions,
        frames_per_action=(10, 14),
        gap_frames=5,
        size=64,
        fps=20.0,
        rng=7,
        distractors=0,
        noise_std=0,
    )
    assert [s.label for s in segments] == actions
    assert frames.shape[1:] == (64, 64, 3) and frames.dtype == np.uint8
    # Gap, action, gap, ..., gap: every gap is 5 frames.
    ends = [0] + [s.end_frame for s in segments]
    for prev_end, seg in zip(ends, segments, strict=False):
        assert seg.start_frame - prev_end == 5
        assert 10 <= seg.num_frames <= 14
        assert seg.start_s == pytest.approx(seg.start_frame / 20.0)
    assert len(frames) == segments[-1].end_frame + 5

    covered = np.zeros(len(frames), bool)
    for s in segments:
        covered[s.start_frame : s.end_frame] = True
    background = frames[0]
    # Object absent in every gap frame (the scene is exactly the background) ...
    for i in np.flatnonzero(~covered):
        np.testing.assert_array_equal(frames[i], background)
    # ... and present in every action frame.
    fg = _foreground(frames, background)
    assert fg[covered].sum((1, 2)).min() > 20

    # The object does what the segment says.
    xx = np.arange(64)
    right, grow = segments[0], segments[1]
    cx = [(fg[i] * xx).sum() / fg[i].sum() for i in range(right.start_frame, right.end_frame)]
    assert cx[-1] - cx[0] > 10
    area = fg[grow.start_frame : grow.end_frame].sum((1, 2))
    assert area[-1] > 2 * area[0]


def test_sequence_static_gaps_hold_the_last_pose():
    frames, segments = make_action_sequence(
        ["move_left", "move_down"],
        frames_per_action=10,
        gap_frames=4,
        gap="static",
        size=48,
        rng=1,
        distractors=0,
        noise_std=0,
    )
    first, second = segments
    for i in range(first.end_frame, second.start_frame):
        np.testing.assert_array_equal(frames[i], frames[first.end_frame - 1])
    # Without gaps, actions follow each other directly.
    _, adjacent = make_action_sequence(["grow", "shrink"], frames_per_action=8, size=48, rng=0)
    assert [(s.start_frame, s.end_frame) for s in adjacent] == [(0, 8), (8, 16)]


def test_write_dataset_ucf101_layout_and_splits(tmp_path):
    kwargs = dict(
        videos_per_class=6,
        classes=["move_left", "rotate_cw"],
        num_frames=(8, 10),
        size=32,
        fps=15.0,
        seed=5,
        test_fraction=0.34,
        clips_per_group=2,
        splits=2,
        sequences=1,
        actions_per_sequence=3,
    )
    root = write_dataset(tmp_path / "a", workers=2, **kwargs)
    assert (root / "splits" / "classInd.txt").read_text() == "1 move_left\n2 rotate_cw\n"
    assert (root / "videos" / "rotate_cw" / "v_rotate_cw_g03_c02.mp4").is_file()

    def group(path):
        return path.stem.split("_g")[1].split("_")[0]

    test_groups_per_split = []
    for split in (1, 2):
        train = load_manifest("ucf101", root, split=split, subset="train", missing="error")
        test = load_manifest("ucf101", root, split=split, subset="test", missing="error")
        assert train.class_names == test.class_names == ["move_left", "rotate_cw"]
        assert len(train) == 8 and len(test) == 4
        assert train.class_counts() == {"move_left": 4, "rotate_cw": 4}
        assert {group(p) for p in train.paths}.isdisjoint({group(p) for p in test.paths})
        assert all(p.parent.name == test.class_names[y] for p, y in test.samples)
        test_groups_per_split.append({group(p) for p in test.paths})
    assert test_groups_per_split[0] != test_groups_per_split[1]

    video = _decode(train.paths[0])
    assert video.shape[1:] == (32, 32, 3) and 8 <= len(video) <= 10

    truth = json.loads((root / "demo" / "seq_000.json").read_text())
    assert len(_decode(root / "demo" / "seq_000.mp4")) == truth["num_frames"]
    assert len(truth["segments"]) == 3
    assert all(s["label"] in ACTIONS for s in truth["segments"])

    # Clips are a function of the seed, not of the worker count. The comparison is of decoded
    # frames, so it allows for x264 itself: at 32x32 it encodes the very same frames differently
    # from run to run now and then (measured: 10 of 144 repeated encodes, mean difference 1-3.3
    # levels). Two different clips differ by ~80.
    other = write_dataset(tmp_path / "b", workers=1, **kwargs)
    for rel in ("move_left/v_move_left_g02_c01.mp4", "rotate_cw/v_rotate_cw_g03_c02.mp4"):
        a, b = _decode(root / "videos" / rel), _decode(other / "videos" / rel)
        assert a.shape == b.shape
        assert np.abs(a.astype(np.int16) - b).mean() < 8, rel
    with pytest.raises(FileExistsError):
        write_dataset(tmp_path / "a", **kwargs)


def test_untrimmed_defaults_are_one_spec_for_the_function_the_cli_and_the_recipe(tmp_path):
    """``make-untrimmed`` with only the size and counts given writes what
    ``write_untrimmed_dataset(root, UntrimmedSpec(...))`` writes (as the recipe calls it): the
    same spec, annotations and frames (up to the encoder's rounding)."""
    from pipelines.cli import main
    from video_lstm.data.synthetic import UntrimmedSpec, write_untrimmed_dataset

    small = dict(videos={"train": 1, "val": 0, "test": 1}, size=48, frames_per_action=8,
                 gap_frames=4)  # fmt: skip
    a = write_untrimmed_dataset(tmp_path / "a", UntrimmedSpec(**small), workers=1)
    assert main(["make-untrimmed", "--out", str(tmp_path / "b"), "--train", "1", "--val", "0",
                 "--test", "1", "--size", "48", "--frames", "8", "--gap_frames", "4",
                 "--workers", "1"]) == 0  # fmt: skip
    b = tmp_path / "b"
    spec_a, spec_b = (json.loads((r / "untrimmed.json").read_text()) for r in (a, b))
    assert spec_a == spec_b and spec_a["scene"] == "camera"
    assert spec_a["actions_per_video"] == {"train": [1, 2], "val": [4, 6], "test": [4, 6]}
    for name in ("annotations.csv", "activitynet.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    for rel in ("videos/train/train_000.mp4", "videos/test/test_000.mp4"):
        x, y = _decode(a / rel), _decode(b / rel)
        assert x.shape == y.shape and np.abs(x.astype(np.int16) - y).mean() < 2, rel
    # a changed scene takes that scene's classes and idle kinds, not the defaults' resolved ones
    objects = UntrimmedSpec(**small, scene="objects")
    assert objects.class_names() == list(ACTIONS) and "absent" in objects.gap_kinds()
    with pytest.raises(ValueError, match="classes must be distinct names"):
        UntrimmedSpec(classes=["grow"])  # an objects class in the camera scene

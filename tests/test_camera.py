"""Camera motion over real photos: each class moves the picture the way its name says (measured
with OpenCV's optical flow on the rendered frames and on the encoded videos), pairs are each
other played backwards, idle stretches hold still or jitter without drift, and each subset films
photos of its own."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from video_lstm.data.datasets import load_manifest
from video_lstm.data.synthetic import write_untrimmed_dataset
from video_lstm.data.synthetic.camera import (
    BUNDLED_SPLIT,
    CAMERA_ACTIONS,
    bundled_photos,
    load_photos,
    make_camera_sequence,
    split_photos,
)
from video_lstm.models.temporal import StepInput, step_correlation


@pytest.fixture(scope="module")
def photos():
    return bundled_photos()


def _flow_model(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """Mean flow (vx, vy), divergence and curl (image axes, y down) from frame a to b."""
    ga, gb = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (a, b))
    flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    h, w = ga.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    m = 8  # the border's flow is unreliable
    x, y = xx[m:-m, m:-m].ravel() - w / 2, yy[m:-m, m:-m].ravel() - h / 2
    design = np.stack([x, y, np.ones_like(x)], 1)
    ax = np.linalg.lstsq(design, flow[m:-m, m:-m, 0].ravel(), rcond=None)[0]
    ay = np.linalg.lstsq(design, flow[m:-m, m:-m, 1].ravel(), rcond=None)[0]
    return ax[2], ay[2], ax[0] + ay[1], ay[0] - ax[1]


# What the picture does when the camera does the named thing: (vx, vy, divergence, curl) signs.
EXPECTED = {
    "pan_left": (1, 0, 0, 0),  # camera turns left: the picture slides right
    "pan_right": (-1, 0, 0, 0),
    "tilt_up": (0, 1, 0, 0),  # camera looks up: the picture slides down
    "tilt_down": (0, -1, 0, 0),
    "zoom_in": (0, 0, 1, 0),  # the picture grows
    "zoom_out": (0, 0, -1, 0),
    "rotate_cw": (0, 0, 0, -1),  # camera rolls clockwise: the picture turns counter-clockwise
    "rotate_ccw": (0, 0, 0, 1),
}


def _motion_signs(frames: np.ndarray, start: int, end: int) -> np.ndarray:
    mid = (start + end) // 2
    vx, vy, div, curl = _flow_model(frames[mid - 2], frames[mid + 2])
    signs = []
    for value, scale in ((vx, 1.0), (vy, 1.0), (div, 0.01), (curl, 0.01)):
        signs.append(0 if abs(value) < scale else int(np.sign(value)))
    return np.array(signs)


@pytest.mark.parametrize("action", CAMERA_ACTIONS)
def test_each_action_moves_the_picture_as_named(photos, action):
    for seed in range(3):
        frames, segments = make_camera_sequence(
            [action], [photos["astronaut"], photos["camera"]], frames_per_action=40,
            gap_frames=10, size=96, rng=seed, distractors=0, noise_std=0.0, handheld_prob=0.0,
        )  # fmt: skip
        (seg,) = segments
        assert (seg.start_frame, seg.end_frame - seg.start_frame, seg.label) == (10, 40, action)
        assert len(frames) == 60 and frames.shape[1:] == (96, 96, 3)
        signs = _motion_signs(frames, seg.start_frame, seg.end_frame)
        expected = np.array(EXPECTED[action])
        on = expected != 0
        assert (signs[on] == expected[on]).all(), (action, seed, signs)


def test_idle_stretches_hold_still_or_jitter_without_drift(photos):
    kw = dict(frames_per_action=20, gap_frames=30, size=64, distractors=0, noise_std=0.0,
              handheld_prob=0.0)  # fmt: skip
    still, segs = make_camera_sequence(["pan_left"], [photos["brick"]], gap="still", rng=3, **kw)
    held, segs2 = make_camera_sequence(["pan_left"], [photos["brick"]], gap="handheld", rng=3, **kw)
    assert (
        [(s.start_frame, s.end_frame) for s in segs]
        == [(30, 50)]
        == [(s.start_frame, s.end_frame) for s in segs2]
    )
    tail_still, tail_held = still[50:].astype(int), held[50:].astype(int)
    assert np.abs(np.diff(tail_still, axis=0)).max() == 0  # a still camera: nothing moves
    assert np.abs(np.diff(tail_held, axis=0)).mean() > 1.0  # the frame jitters
    # ... around one place: the first and last idle frames nearly agree (no drift).
    vx, vy, _, _ = _flow_model(held[50], held[-1])
    assert abs(vx) < 2.5 and abs(vy) < 2.5
    with pytest.raises(ValueError, match="gap must be"):
        make_camera_sequence(["pan_left"], [photos["brick"]], gap="static", rng=1, **kw)
    with pytest.raises(ValueError, match="unknown camera action"):
        make_camera_sequence(["move_left"], [photos["brick"]], rng=1, **kw)


def test_a_pair_is_the_same_motion_played_backwards(photos):
    """Time-reversal augmentation (``data.time_reverse_swap``) relies on it."""
    for action, partner in (("pan_left", "pan_right"), ("zoom_in", "zoom_out")):
        frames, (seg,) = make_camera_sequence(
            [action], [photos["astronaut"]], frames_per_action=30, size=64, rng=0, distractors=0,
            noise_std=0.0, handheld_prob=0.0,
        )  # fmt: skip
        backwards = frames[seg.start_frame : seg.end_frame][::-1]
        assert (_motion_signs(backwards, 0, len(backwards)) == np.array(EXPECTED[partner])).any()
        forward = _motion_signs(frames, seg.start_frame, seg.end_frame)
        assert (forward == -_motion_signs(backwards, 0, len(backwards))).all()


def test_photos_are_split_by_subset(tmp_path, photos):
    names = sorted(photos)
    split = split_photos(names, ["train", "val", "test"])
    assert split["test"] == list(BUNDLED_SPLIT["test"]) and split["val"] == list(
        BUNDLED_SPLIT["val"]
    )
    assert not set(split["train"]) & (set(split["val"]) | set(split["test"]))
    assert set(split["train"]) | set(split["val"]) | set(split["test"]) == set(names)
    own = split_photos([f"p{i}.jpg" for i in range(10)], ["train", "val", "test", "extra"])
    assert len(own["val"]) == len(own["test"]) == 2 and len(own["train"]) == 6
    assert own["extra"] == own["train"]
    with pytest.raises(ValueError, match="2 photos cannot"):
        split_photos(["a.jpg", "b.jpg"], ["train", "val", "test"])

    folder = tmp_path / "photos"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        load_photos(folder)
    (folder / "notes.txt").write_text("not a photo")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(ValueError, match="broken.jpg: not a readable image"):
        load_photos(folder)


def test_camera_dataset_from_a_folder_of_photos(tmp_path, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "brick", "camera", "chelsea", "coffee", "rocket", "grass"):
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(photos[name], cv2.COLOR_RGB2BGR))
    root = write_untrimmed_dataset(
        tmp_path / "u", videos={"train": 2, "val": 1, "test": 1}, scene="camera", images=folder,
        actions_per_video=2, frames_per_action=16, gap_frames=(4, 6), size=64, workers=1,
    )  # fmt: skip
    import json

    info = json.loads((root / "untrimmed.json").read_text())
    assert info["scene"] == "camera" and info["classes"] == list(CAMERA_ACTIONS)
    used = {s: set(v) for s, v in info["photos"].items()}
    assert not used["train"] & used["test"] and not used["train"] & used["val"]
    for subset, count in (("train", 2), ("val", 1), ("test", 1)):
        m = load_manifest("segments_csv", root, annotations="annotations.csv", subset=subset)
        assert len(m) == count and all(len(v.segments) == 2 for v in m.videos)
        assert all(g.label in CAMERA_ACTIONS for v in m.videos for g in v.segments)
    # The encoded video moves as its first segment says.
    import av

    m = load_manifest("segments_csv", root, annotations="annotations.csv", subset="train")
    with av.open(str(m.paths[0])) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    seg = m.videos[0].segments[0]
    start, end = round(seg.start_s * 25), round(seg.end_s * 25)
    expected = np.array(EXPECTED[seg.label])
    assert (_motion_signs(frames, start, end)[expected != 0] == expected[expected != 0]).all()
    with pytest.raises(ValueError, match="scene must be"):
        write_untrimmed_dataset(tmp_path / "v", scene="street")


def test_step_correlation_peaks_where_the_content_came_from():
    x = torch.randn(2, 1, 8, 6, 6)
    steps = [x[:, 0]]
    for _ in range(3):
        steps.append(torch.roll(steps[-1], 1, dims=3))  # content moves one cell right per step
    maps = torch.stack(steps, 1)
    corr = step_correlation(maps, 1)
    assert corr.shape == (2, 4, 9, 6, 6) and corr[:, 0].abs().max() == 0
    # At an inner position the best match is one cell to the left: displacement (dy 0, dx -1).
    assert (corr[:, 1:, :, 2:4, 2:4].argmax(dim=2) == 3).all()
    for kw in (dict(frame_diff=True, proj_channels=4), dict(proj_channels=4), dict()):
        out = StepInput(8, motion_radius=1, **kw)(maps)
        assert out.shape[:2] == (2, 4) and out.shape[2] == (kw.get("proj_channels") or 8 + 9)
    with pytest.raises(ValueError, match="need maps"):
        StepInput(8, motion_radius=1)(torch.randn(2, 4, 8))

"""ClipDataset: clip index arithmetic, per-epoch determinism, eval views, broken videos."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from video_lstm.data.clip_dataset import ClipDataset
from video_lstm.data.datasets import load_manifest
from video_lstm.data.synthetic import write_dataset
from video_lstm.data.transforms import eval_transform
from video_lstm.errors import VideoError

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def make_tiny_dataset(root: Path, *, frames: int = 16, size: int = 64) -> Path:
    """2 classes x 4 videos (2 train + 2 test per class) of real H.264 files."""
    return write_dataset(
        root,
        videos_per_class=4,
        classes=["move_left", "move_right"],
        num_frames=frames,
        size=size,
        clips_per_group=2,
        test_fraction=0.5,
        workers=1,
        distractors=0,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def _dataset(tiny: Path, subset: str, **kw) -> ClipDataset:
    m = load_manifest("ucf101", tiny, subset=subset)
    kw.setdefault("transform", eval_transform(size=48, mean=MEAN, std=STD))
    return ClipDataset(m.samples, m.class_names, clip_len=6, frame_interval=1, decode_size=56, **kw)


def test_train_item_shape_and_epoch_determinism(tiny: Path):
    ds = _dataset(tiny, "train", train=True, seed=3)
    a, b = ds[1], ds[1]
    assert a["clip"].shape == (1, 6, 3, 48, 48) and a["clip"].dtype == torch.float32
    assert a["label"] == ds.samples[1][1]
    torch.testing.assert_close(a["clip"], b["clip"])  # same seed + epoch + index
    seen = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        seen.add(ds[1]["clip"][0, 0].sum().item())
    assert len(seen) > 1  # clips move in time across epochs


def test_eval_views_cover_the_video(tiny: Path):
    ds = _dataset(tiny, "test", train=False, num_clips=3)
    item = ds[0]
    assert item["clip"].shape == (3, 6, 3, 48, 48)
    # 16 frames, clip 6: views start at 0, 5, 10 -> the first frames differ
    firsts = item["clip"][:, 0]
    assert not torch.allclose(firsts[0], firsts[2])


def test_broken_video_substituted_in_training_raised_in_eval(tiny: Path, tmp_path: Path, caplog):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    m = load_manifest("ucf101", tiny, subset="train")
    samples = [(bad, 0), *m.samples]
    ds = ClipDataset(
        samples,
        m.class_names,
        transform=eval_transform(size=48, mean=MEAN, std=STD),
        clip_len=6,
        train=True,
    )
    with caplog.at_level(logging.WARNING):
        item = ds[0]
        ds.set_epoch(1)
        ds[0]
    assert item["index"] != 0 and item["clip"].shape == (1, 6, 3, 48, 48)
    assert str(bad) in ds.broken
    assert sum(str(bad) in r.getMessage() for r in caplog.records) == 1  # logged once
    ds_eval = ClipDataset(
        samples, m.class_names, transform=eval_transform(size=48, mean=MEAN, std=STD), clip_len=6
    )
    with pytest.raises(VideoError, match="broken.mp4"):
        ds_eval[0]

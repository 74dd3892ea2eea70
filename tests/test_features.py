"""Feature cache: fp16 memory-mapped files equal the backbone, resume, refusal, clip sampling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_clip_dataset import make_tiny_dataset

from video_lstm.data.datasets import load_manifest
from video_lstm.data.features import (
    FeatureClipDataset,
    adapt_features,
    check_compatible,
    extract_features,
    load_index,
    take_clip,
    video_id,
)
from video_lstm.data.transforms import eval_transform
from video_lstm.io.decode import open_video
from video_lstm.models import create_model

SIZE = 64


def tiny_model(**kw) -> torch.nn.Module:
    args = dict(
        backbone="mobilenet_v3_small",
        temporal="convlstm",
        stage=3,
        frame_size=SIZE,
        num_classes=2,
        freeze="all",
    )
    args.update(kw)
    if args["temporal"].startswith("conv"):
        args["temporal_args"] = {"hidden_sizes": [8], **args.get("temporal_args", {})}
    return create_model("convlstm_resnet18", **args).eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny_feat"))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return tiny_model()


@pytest.fixture(scope="module")
def cache(model, tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The train subset extracted once; tests that modify it work on a copy."""
    out = tmp_path_factory.mktemp("cache") / "train"
    _extract(model, tiny, out)
    return out


def _extract(model, tiny: Path, out: Path, subset: str = "train", samples=None):
    m = load_manifest("ucf101", tiny, subset=subset)
    samples = samples if samples is not None else [(str(p), y) for p, y in m.samples]
    return extract_features(
        model, samples, m.class_names, out, frame_size=SIZE, frame_interval=2, progress=False
    )


def test_cached_features_are_fp16_mmap_and_match_the_backbone(model, cache: Path):
    index = load_index(cache)
    assert index["class_names"] == ["move_left", "move_right"]
    assert len(index["videos"]) == 4 and index["failed"] == []
    entry = index["videos"][0]
    arr = np.load(cache / "videos" / f"{entry['id']}.npy", mmap_mode="r")
    assert isinstance(arr, np.memmap) and arr.dtype == np.float16
    assert arr.shape[0] == entry["num_steps"] == 8  # 16 frames, every 2nd
    with open_video(entry["path"], size=SIZE) as r:
        frames = r.get_frames(np.arange(0, r.num_frames, 2))
    clip = eval_transform(size=SIZE, mean=model.mean, std=model.std)(frames)[None]
    with torch.inference_mode():
        live = model.forward_features(clip)[0]
    torch.testing.assert_close(
        torch.from_numpy(np.asarray(arr, np.float32)), live, atol=2e-2, rtol=2e-2
    )


def test_resume_recomputes_only_missing_videos(model, tiny: Path, cache: Path, tmp_path: Path):
    out = tmp_path / "train"
    shutil.copytree(cache, out)
    first = load_index(out)
    files = sorted((out / "videos").glob("*.npy"))
    removed = files[1]
    before = {f: f.stat().st_mtime_ns for f in files if f != removed}
    saved = np.load(removed)
    removed.unlink()
    (out / "index.json").unlink()  # as if interrupted before the index was written
    second = _extract(model, tiny, out)
    assert {f: f.stat().st_mtime_ns for f in before} == before  # untouched
    np.testing.assert_allclose(np.load(removed), saved, atol=1e-3)
    assert second["videos"] == first["videos"]
    assert not list((out / "videos").glob(".*part"))  # no temporary files left


def test_a_killed_save_leaves_a_temporary_that_resume_removes(model, tiny, cache, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "train"
    shutil.copytree(cache, out)
    target = sorted((out / "videos").glob("*.npy"))[0]
    target.unlink()
    # A real process killed (kill -9) inside the cache's np.save, after the data hit the disk.
    code = (
        "import os, sys, numpy as np; from video_lstm.data import features as f\n"
        "save = np.save\n"
        "f.np.save = lambda fh, a: (save(fh, a), fh.flush(), os.kill(os.getpid(), 9))\n"
        "f._save_npy(f.Path(sys.argv[1]), np.zeros((8, 4), np.float16))\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code, str(target)], cwd=root, check=False)
    assert not target.exists() and len(list((out / "videos").glob(".*.part"))) == 1
    _extract(model, tiny, out)
    assert target.is_file() and not list(out.rglob("*.part"))


def test_other_backbone_setup_is_refused(tiny: Path, cache: Path):
    other = tiny_model(stage=2)
    with pytest.raises(ValueError, match="another model or preprocessing"):
        _extract(other, tiny, cache, samples=[])
    index = load_index(cache)
    check_compatible(tiny_model(temporal="lstm", pool_size=2), index, cache)  # derived vectors
    adapter = tiny_model(
        temporal="adapter_lstm", temporal_args={"proj_channels": 4, "pool_size": 2}
    )
    check_compatible(adapter, index, cache)
    with pytest.raises(ValueError, match="cached with"):
        check_compatible(other, index, cache)


def test_unreadable_video_is_reported_not_fatal(model, tiny: Path, tmp_path: Path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    m = load_manifest("ucf101", tiny, subset="test")
    samples = [(str(bad), 0), (str(m.samples[0][0]), m.samples[0][1])]
    index = _extract(model, tiny, tmp_path / "test", "test", samples=samples)
    assert [f["path"] for f in index["failed"]] == [str(bad)]
    assert len(index["videos"]) == 1
    assert json.loads((tmp_path / "test" / "index.json").read_text())["failed"][0]["path"] == str(
        bad
    )


def test_adapt_features_equals_the_vector_backbone(model):
    maps_model = model
    vec_model = tiny_model(temporal="lstm", pool_size=2)
    vec_model.backbone.load_state_dict(maps_model.backbone.state_dict())
    clip = torch.randn(2, 3, 3, SIZE, SIZE)
    with torch.inference_mode():
        maps = maps_model.forward_features(clip)
        vec = vec_model.forward_features(clip)
    torch.testing.assert_close(adapt_features(maps, vec_model.config), vec)
    assert adapt_features(maps, maps_model.config) is maps


def test_feature_clip_dataset_train_and_eval_views(cache: Path):
    train = FeatureClipDataset(cache, clip_len=5, train=True, seed=1)
    item = train[0]
    assert item["features"].shape[:2] == (1, 5) and item["features"].dtype == torch.float32
    torch.testing.assert_close(train[0]["features"], item["features"])
    ev = FeatureClipDataset(cache, clip_len=5, train=False, num_clips=3)
    assert ev[0]["features"].shape[:2] == (3, 5)
    assert ev.labels == [v["label"] for v in load_index(cache)["videos"]]
    long = FeatureClipDataset(cache, clip_len=12, train=False)
    assert long[0]["features"].shape[1] == 12  # 8 cached steps, last one repeated


def test_take_clip_pads_and_video_id_is_stable():
    a = np.arange(3, dtype=np.float16)[:, None]
    assert take_clip(a, 1, 4)[:, 0].tolist() == [1, 2, 2, 2]
    assert video_id("/x/a.mp4") == video_id("/x/a.mp4") != video_id("/y/a.mp4")

"""Real-world files through the folder pipeline (``video-lstm run``): every valid file of the
corpus is annotated with FFmpeg's frame count, the display rotation applied to the annotated
video and reported in the JSON and the manifest; a damaged one is annotated on the frames FFmpeg
decodes with the loss reported (``on_error="skip"``), or failed with one line (``"raise"``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from corpus import DAMAGED, VALID, ffmpeg_frames

from pipelines.batch import run_folder
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.models import DEFAULT_MODEL, create_model
from video_lstm.models.checkpoint import ModelMeta, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model(DEFAULT_MODEL, num_classes=2, frame_size=32)
    meta = ModelMeta.for_model(model, ["sit", "stand"], clip_len=4, frame_interval=2)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt", model, meta)


def _folder(real_corpus: dict[str, Path], names, root: Path) -> Path:
    root.mkdir(parents=True)
    for name in names:
        shutil.copy(real_corpus[name], root / name)
    return root


def _decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def check_outputs(out: Path, name: str, record: dict, ref: np.ndarray) -> None:
    """The JSON and the annotated video of one video against FFmpeg's decode ``ref``."""
    assert record["status"] == "done", (name, record)
    files = {Path(p).suffix: out / p for p in record["outputs"]}
    doc = json.loads(files[".json"].read_text())
    video = doc["video"]
    n, h, w = ref.shape[:3]
    assert video["num_frames"] == record["num_frames"] == n, name
    assert (video["width"], video["height"]) == (w, h), name
    assert video["rotation"] == record["rotation"]
    assert video["frames_lost"] == record["frames_lost"]
    annotated = _decoded(files[".mp4"])
    assert len(annotated) == n, f"{name}: annotated video has {len(annotated)} frames, ffmpeg {n}"
    # Odd sizes are padded by one row/column for H.264; the picture is upright, like ffmpeg's.
    assert annotated.shape[1:3] == (h + h % 2, w + w % 2), name
    band = slice(h // 4, 3 * h // 4)  # clear of the label box and the timeline bar
    diff = np.abs(annotated[:, band, :w].astype(np.int16) - ref[:, band]).mean()
    assert diff < 12, f"{name}: annotated frames differ from ffmpeg's by {diff:.1f} levels"


FEW = [
    "mpeg4_asp_bframes.avi",
    "cut_editlist.mp4",
    "rotate90.mp4",
    "rotate180.mp4",
    "theora.ogv",
    "h264.m2ts",
    "flipped_middle.avi",
]


def test_run_annotates_real_world_files(real_corpus, checkpoint, tmp_path):
    folder = _folder(real_corpus, FEW, tmp_path / "in")
    out = tmp_path / "out"
    settings = AnnotateSettings.from_flat(outputs=["json", "video"], device="cpu", threshold=0.0)
    summary = run_folder(str(folder), str(checkpoint), str(out), settings, progress=False)
    assert sorted(summary.done) == sorted(FEW) and not summary.failed
    manifest = json.loads((out / "manifest.json").read_text())
    for name in FEW:
        record = manifest["videos"][name]
        ref = ffmpeg_frames(real_corpus[name], threads=1 if name in DAMAGED else None).frames
        check_outputs(out, name, record, ref)
    assert manifest["videos"]["rotate90.mp4"]["rotation"] == 270
    assert manifest["videos"]["flipped_middle.avi"]["frames_lost"] == 3
    assert manifest["videos"]["mpeg4_asp_bframes.avi"]["frames_lost"] == 0


def test_run_refuses_damaged_files_with_on_error_raise(real_corpus, checkpoint, tmp_path):
    folder = _folder(real_corpus, ["flipped_middle.avi", "h264_bframes.avi"], tmp_path / "in")
    out = tmp_path / "out"
    settings = AnnotateSettings.from_flat(
        outputs=["json"], device="cpu", threshold=0.0, on_error="raise"
    )
    summary = run_folder(str(folder), str(checkpoint), str(out), settings, progress=False)
    assert summary.done == ["h264_bframes.avi"]
    reason = summary.failed["flipped_middle.avi"]
    assert "damaged stream: 3 of 75 frames do not decode" in reason and "\n" not in reason


@pytest.mark.slow
def test_cli_run_on_the_whole_corpus(real_corpus, checkpoint, tmp_path):
    """``video-lstm run`` over every corpus file: valid ones annotated frame-exact, damaged ones
    annotated on ffmpeg's frames (or failed with one line when nothing decodes)."""
    names = [*VALID, *DAMAGED]
    folder = _folder(real_corpus, names, tmp_path / "in")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipelines.cli", "run", str(folder), str(checkpoint), str(out)]
    cmd += ["--outputs", "[json,video]", "--progress", "false", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    manifest = json.loads((out / "manifest.json").read_text())
    for name in names:
        threads = 1 if name in DAMAGED else None  # deterministic concealment (corpus.py)
        ref = ffmpeg_frames(real_corpus[name], threads=threads).frames
        record = manifest["videos"][name]
        if len(ref) == 0:
            assert record["status"] == "failed" and "\n" not in record["reason"], name
            continue
        check_outputs(out, name, record, ref)
    assert proc.returncode == (
        1 if any(v["status"] == "failed" for v in manifest["videos"].values()) else 0
    ), proc.stderr[-2000:]

"""The GPU path: encoder choice (NVENC only on a CUDA run where it opens, x264 otherwise), and,
on a CUDA machine, NVENC output that decodes back and a CUDA annotation that matches the CPU one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_batch import make_checkpoint, write_video

from video_lstm.inference.annotate import annotate_video
from video_lstm.inference.settings import AnnotateSettings, RuntimeOptions
from video_lstm.io.decode import open_video
from video_lstm.io.video import VideoWriter, _nvenc_opens, h264_encoder

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_encoder_choice_follows_device_and_availability():
    nvenc = _nvenc_opens()
    assert h264_encoder("auto", "cpu") == "libx264"  # a CPU run never takes the GPU encoder
    assert h264_encoder("auto", "cuda:0") == ("h264_nvenc" if nvenc else "libx264")
    assert h264_encoder("libx264", "cuda") == "libx264"
    if not nvenc:
        with pytest.raises(ValueError, match="h264_nvenc does not open here"):
            h264_encoder("h264_nvenc", "cuda")
    with pytest.raises(ValueError, match="encoder must be"):
        h264_encoder("vp9")
    with pytest.raises(ValueError, match="encoder must be"):
        RuntimeOptions(encoder="h265")


def test_cpu_run_records_the_x264_encoder(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    video = write_video(tmp_path / "v.mp4", 20)
    settings = AnnotateSettings.from_flat(outputs=["json", "video"], device="cpu")
    annotate_video(str(video), str(ckpt), str(tmp_path / "out"), settings, progress=False)
    doc = json.loads((tmp_path / "out" / "v.json").read_text())
    assert doc["settings"]["runtime"]["encoder"] == "libx264"


@pytest.mark.gpu
@needs_cuda
@pytest.mark.skipif(not _nvenc_opens(), reason="h264_nvenc does not open here")
def test_nvenc_writes_a_video_that_decodes_back(tmp_path):
    frames = np.zeros((30, 144, 256, 3), np.uint8)
    frames[:, :, :128] = 200  # left half bright
    with VideoWriter(tmp_path / "n.mp4", fps=30, width=256, height=144, codec="h264_nvenc") as w:
        w.write(frames)
    with open_video(tmp_path / "n.mp4") as r:
        assert r.num_frames == 30
        back = r.get_frames(np.arange(30)).astype(int)
    assert np.abs(back - frames).mean() < 4


@pytest.mark.gpu
@needs_cuda
def test_cuda_annotation_matches_cpu_within_tolerance(tmp_path):
    """Autocast (bf16/fp16) on CUDA, with CPU decode and with NVDEC, against fp32 on CPU:
    window probabilities within half-precision tolerance, and the same label on every frame
    that is not a near tie."""
    ckpt = make_checkpoint(tmp_path / "m.pt")
    video = write_video(tmp_path / "v.mp4", 90)
    results = {}
    for key, device, hwaccel in (
        ("cpu", "cpu", None),
        ("cuda", "cuda", None),
        ("nvdec", "cuda", "cuda"),
    ):
        settings = AnnotateSettings.from_flat(
            outputs=["json"], device=device, threshold=0.0, save_window_scores=True, hwaccel=hwaccel
        )
        results[key] = annotate_video(
            str(video), str(ckpt), str(tmp_path / key), settings, progress=False
        )
    cpu = results["cpu"]
    for gpu in (results["cuda"], results["nvdec"]):
        np.testing.assert_allclose(gpu.windows.probs, cpu.windows.probs, atol=2e-2)
    top2 = np.sort(cpu.frame_probs, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.05
    assert clear.any()
    for gpu in (results["cuda"], results["nvdec"]):
        np.testing.assert_array_equal(
            gpu.frame_probs.argmax(1)[clear], cpu.frame_probs.argmax(1)[clear]
        )


def test_hwaccel_decode_gives_the_cpu_frames(tmp_path):
    """``hwaccel="cuda"`` decodes with NVDEC where it opens, else falls back to CPU decode:
    here (no GPU) the very same frames; on a GPU, within 2 levels on average (NV12 download)."""
    video = write_video(tmp_path / "v.mp4", 40, width=96, height=64)
    with open_video(video, backend="pyav") as r:
        cpu = r.get_frames(np.arange(40))
    with open_video(video, hwaccel="cuda") as r:
        assert r.backend == "pyav"
        got = r.get_frames(np.arange(40))
        streamed = np.concatenate([c for _, c in r.iter_chunks(16)])
        used = r.hwaccel
    if used is None:
        np.testing.assert_array_equal(got, cpu)
    else:
        assert used == "cuda" and np.abs(got.astype(int) - cpu).mean() < 2
    np.testing.assert_array_equal(streamed, got)
    with pytest.raises(ValueError, match="hwaccel must be"):
        RuntimeOptions(hwaccel="vaapi")

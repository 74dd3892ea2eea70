"""Predictor: device/precision plan, batched features + window heads equal the full model."""

from __future__ import annotations

import platform

import numpy as np
import pytest
import torch

from video_lstm.inference.predictor import Predictor, keep_freed_memory, resolve_device
from video_lstm.models import DEFAULT_MODEL, create_model
from video_lstm.models.checkpoint import ModelMeta, save_checkpoint

CLASSES = ["clap", "jump", "wave"]


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(DEFAULT_MODEL, num_classes=len(CLASSES), frame_size=64)


def make_predictor(model: torch.nn.Module | None = None, **kwargs) -> Predictor:
    model = model if model is not None else make_model()
    meta = ModelMeta.for_model(model, CLASSES, clip_len=6, frame_interval=2)
    kwargs.setdefault("device", "cpu")
    return Predictor(model, meta, **kwargs)


def test_cpu_plan_is_fp32_channels_last():
    plan = resolve_device("cpu", "auto")
    assert plan.device.type == "cpu"
    assert plan.amp_dtype is None and plan.precision == "fp32"
    assert plan.channels_last


def test_cpu_defaults_small_batches_and_keeps_freed_memory():
    plan = resolve_device("cpu")
    assert (plan.frame_batch, plan.window_batch) == (8, 32)
    pred = make_predictor()
    assert (pred.frame_batch, pred.window_batch) == (8, 32)
    pred = make_predictor(frame_batch=3, window_batch=5)
    assert (pred.frame_batch, pred.window_batch) == (3, 5)
    # A CPU predictor has asked glibc to keep freed blocks (asking again is harmless).
    expected = platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected and keep_freed_memory() is expected


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_on_cpu_is_refused(precision):
    with pytest.raises(ValueError, match="CPU"):
        resolve_device("cpu", precision)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        resolve_device("cpu", "int3")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_auto_without_gpu_is_cpu_and_cuda_request_fails():
    assert resolve_device("auto", "auto").device.type == "cpu"
    with pytest.raises(ValueError, match="CUDA"):
        resolve_device("cuda", "auto")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_on_gpu_uses_half_precision_autocast():
    plan = resolve_device("auto", "auto")
    assert plan.device.type == "cuda"
    assert plan.amp_dtype in (torch.bfloat16, torch.float16)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float().cpu(), b.float().cpu()
    return float((a - b).norm() / b.norm())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("precision", "tol"), [("fp32", 1e-4), ("bf16", 6e-2), ("fp16", 1.5e-2)])
def test_cuda_predictor_equals_cpu(precision, tol, monkeypatch):
    """Pinned uint8 transfer, normalisation on the GPU, autocast: the CPU fp32 result within the
    dtype's tolerance. Measured on an H100 (relative error of the features): fp32 1.4e-6 with TF32
    off (PyTorch lets cuDNN convolutions use TF32 by default: 2.3e-3), fp16 4.0e-3, bf16 3.4e-2."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    cpu = make_predictor(frame_batch=4, window_batch=2)
    gpu = make_predictor(frame_batch=4, window_batch=2, device="cuda", precision=precision)
    assert gpu.describe()["precision"] == precision and gpu.device.type == "cuda"
    # Frames at the model's size: no resize. (Resizing differs below 1/255 between CPU and GPU,
    # uint8 vs float kernels, which on random noise moved fp32 features by 1.7%.)
    frames = np.random.default_rng(0).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    feats_cpu, feats_gpu = cpu.features(frames), gpu.features(frames)
    assert feats_gpu.device.type == "cuda" and feats_gpu.shape == feats_cpu.shape
    assert torch.isfinite(feats_gpu).all()
    assert _rel_err(feats_gpu, feats_cpu) < tol
    # A torch uint8 input (a non-contiguous slice) goes the same way as a numpy array.
    assert _rel_err(gpu.features(torch.from_numpy(frames)[::2]), feats_gpu[::2]) < tol

    def windows(feats):
        return torch.stack([feats[s : s + 6] for s in (0, 2, 4)])

    probs_cpu = cpu.score_windows(windows(feats_cpu))
    probs_gpu = gpu.score_windows(windows(feats_gpu))
    assert probs_gpu.device.type == "cpu" and probs_gpu.dtype == torch.float32
    torch.testing.assert_close(probs_gpu, probs_cpu, rtol=0, atol=tol)
    for i, s in enumerate((0, 2, 4)):
        clip = gpu.predict_clip(frames[s : s + 6])
        assert clip.device.type == "cpu"
        torch.testing.assert_close(clip, probs_gpu[i], rtol=0, atol=tol)


def test_features_and_heads_equal_the_full_model():
    pred = make_predictor(frame_batch=4, window_batch=2)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (10, 72, 96, 3), dtype=np.uint8)
    feats = pred.features(frames)  # CNN in batches of 4 frames
    assert feats.shape[0] == 10 and torch.isfinite(feats).all()
    windows = torch.stack([feats[s : s + 6] for s in (0, 2, 4)])  # (3, 6, ...)
    probs = pred.score_windows(windows)
    assert probs.shape == (3, len(CLASSES)) and probs.dtype == torch.float32
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    for i, s in enumerate((0, 2, 4)):
        torch.testing.assert_close(
            pred.predict_clip(frames[s : s + 6]), probs[i], rtol=1e-4, atol=1e-5
        )


def test_from_checkpoint_roundtrip(tmp_path):
    model = make_model()
    pred = make_predictor(model)
    path = save_checkpoint(tmp_path / "m.pt", model, pred.meta)
    loaded = Predictor.from_checkpoint(path, device="cpu")
    assert loaded.class_names == CLASSES and loaded.checkpoint == str(path)
    frames = np.random.default_rng(1).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    torch.testing.assert_close(loaded.predict_clip(frames), pred.predict_clip(frames))
    assert loaded.describe()["precision"] == "fp32"


def test_bad_batch_sizes_are_refused():
    with pytest.raises(ValueError, match="frame_batch"):
        make_predictor(frame_batch=0)


def test_predictor_folds_batchnorm_into_a_copy():
    """Inference runs a BatchNorm-folded copy: same outputs, the caller's model untouched."""
    model = make_model().eval()
    keys = set(model.state_dict())
    pred = make_predictor(model)
    # Every conv->BN pair, the temporal model's input projection included.
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in pred.model.modules())
    assert set(model.state_dict()) == keys  # still trainable and saveable as before
    frames = np.random.default_rng(2).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    with torch.inference_mode():
        want = model.forward_features(pred.preprocess(frames)[None])[0]
    torch.testing.assert_close(pred.features(frames), want, atol=1e-4, rtol=1e-4)

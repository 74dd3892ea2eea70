"""Checkpoint -> model on a device with the right precision; batched features and window heads.

Inference is split the way the model contract is split (``forward_features`` / ``forward_head``):

    predictor = Predictor.from_checkpoint("model.pt")            # device + precision decided once
    feats = predictor.features(frames)                          # uint8 (T, H, W, 3) -> (T, ...)
    probs = predictor.score_windows(window_feats)               # (W, L, ...) -> (W, K) on CPU

so a pipeline computes the CNN once per sampled frame and runs only the (cheap) temporal model
and head per sliding window. This is the torch runtime; ``inference.runtime`` puts it and the
ONNX Runtime one (``runtime.ort.OnnxPredictor``, the same interface on numpy) behind
``--runtime``.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from video_lstm.models.backbone import fold_batchnorm

__all__ = ["DevicePlan", "Predictor", "keep_freed_memory", "resolve_device"]

_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class DevicePlan:
    """Where and how inference runs.

    Args:
        device: The torch device.
        amp_dtype: Autocast dtype, or ``None`` for plain fp32.
        channels_last: Convert the model (and CNN inputs) to channels-last memory format.
        frame_batch: Default frames per CNN pass.
        window_batch: Default windows per temporal-model/head pass.
    """

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    frame_batch: int
    window_batch: int

    @property
    def precision(self) -> str:
        """``"fp32"``, ``"bf16"`` or ``"fp16"``."""
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for this plan (a no-op context for fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)


def resolve_device(device: str = "auto", precision: str = "auto") -> DevicePlan:
    """The one place that picks the inference device and autocast dtype.

    ``"auto"`` means CUDA when present, with bf16 autocast where the GPU supports it and fp16
    otherwise; on CPU always fp32: bf16 on the CPUs we measured is 7-30x slower than fp32, so
    asking for it there is an error rather than a silent slowdown. Channels-last is used on
    both (1.2-1.5x for CNNs on CPU with ``inference_mode``; tensor-core friendly on GPU).
    Batches are smaller on CPU, where a big batch's tensors outgrow the allocator's reuse (see
    :func:`keep_freed_memory`): the CNN runs 8 frames per pass (the compact trunk on 2 cores: 950
    frames/s at 8, 480 at 32) and the window heads 32 windows (10% faster than 64); on GPU 32
    and 64.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    Returns:
        The :class:`DevicePlan`.

    Raises:
        ValueError: Unknown precision, CUDA requested without a GPU, or half precision on CPU.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if dev.type == "cpu":
        if precision in ("bf16", "fp16"):
            raise ValueError(
                f"precision {precision!r} on CPU is much slower than fp32 here; use 'fp32' or "
                "'auto' (half precision is for CUDA)"
            )
        return DevicePlan(dev, None, channels_last=True, frame_batch=8, window_batch=32)
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return DevicePlan(dev, _DTYPES[precision], channels_last=True, frame_batch=32, window_batch=64)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc malloc.h
_kept_freed_memory = False


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of handing it back to the OS (once per process).

    CPU inference allocates and frees megabytes per layer. By default glibc serves blocks above
    a (dynamic) threshold with ``mmap`` and returns them on free, and trims the heap top, so the
    next layer page-faults fresh memory in: a 50 MB activation took 15-20 ms to allocate and
    fill against 2 ms to copy into a reused buffer. Serving blocks up to 32 MB (glibc's largest
    allowed threshold) from the heap and trimming only above 512 MB made the compact trunk 1.5x
    faster on 2 cores (frame batch 8: 600 -> 950 frames/s). Peak memory stays the same; freed
    memory stays with the process. A no-op outside glibc.

    Returns:
        Whether the settings are in effect.
    """
    global _kept_freed_memory
    if not _kept_freed_memory and platform.libc_ver()[0] == "glibc":
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:
            return False
        _kept_freed_memory = bool(
            libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 512 << 20)
        )
    return _kept_freed_memory


class Predictor:
    """A classifier ready for inference: preprocessing, per-frame features, window heads.

    Args:
        model: A ``VideoClassifier`` (``forward_features`` / ``forward_head``).
        meta: Its ``ModelMeta`` (class names, clip length, frame interval, size, mean/std).
        device: See :func:`resolve_device`.
        precision: See :func:`resolve_device`.
        frame_batch: Frames per CNN forward pass (bounds activation memory); ``None``: the
            device's default (8 on CPU, 32 on GPU; see :func:`resolve_device`).
        window_batch: Windows per temporal-model/head pass; ``None``: the device's default (32
            on CPU, 64 on GPU).
        checkpoint: Where the model came from (recorded in outputs).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        meta: Any,
        *,
        device: str = "auto",
        precision: str = "auto",
        frame_batch: int | None = None,
        window_batch: int | None = None,
        checkpoint: str | None = None,
    ) -> None:
        from video_lstm.data.transforms import eval_transform

        self.plan = resolve_device(device, precision)
        if frame_batch is None:
            frame_batch = self.plan.frame_batch
        if window_batch is None:
            window_batch = self.plan.window_batch
        if frame_batch < 1 or window_batch < 1:
            raise ValueError(
                f"frame_batch and window_batch must be >= 1, got {frame_batch}, {window_batch}"
            )
        if self.plan.device.type == "cpu":
            keep_freed_memory()
        self.meta = meta
        self.checkpoint = checkpoint
        self.frame_batch = frame_batch
        self.window_batch = window_batch
        # A copy: BatchNorm is folded into the convs before it for inference (the backbone's:
        # 1.3x on the compact model's CPU trunk; the temporal model's input projection), which
        # must not change the caller's trainable model.
        model = copy.deepcopy(model).eval()
        fold_batchnorm(model)
        model = model.to(self.plan.device)
        if self.plan.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.transform = eval_transform(size=meta.frame_size, mean=meta.mean, std=meta.std)

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs: Any) -> Predictor:
        """Load a checkpoint (``models.checkpoint.load_checkpoint``) and wrap it.

        Args:
            path: Checkpoint file.
            **kwargs: Passed to :class:`Predictor` (``device``, ``precision``, batch sizes).
        """
        from video_lstm.models.checkpoint import load_checkpoint

        model, meta = load_checkpoint(path)
        return cls(model, meta, checkpoint=str(path), **kwargs)

    @property
    def device(self) -> torch.device:
        return self.plan.device

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.class_names)

    @property
    def threads(self) -> int:
        """torch's intra-op threads (what the decoder is given too)."""
        return torch.get_num_threads()

    def describe(self) -> dict[str, Any]:
        """Plain-value description for result files."""
        return {
            "checkpoint": self.checkpoint,
            "runtime": "torch",
            "device": str(self.plan.device),
            "precision": self.plan.precision,
            "class_names": self.class_names,
            "meta": self.meta.to_dict() if hasattr(self.meta, "to_dict") else dict(self.meta),
        }

    def _to_device(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames onto the device; pinned memory makes the host->GPU copy asynchronous."""
        x = (
            torch.as_tensor(np.ascontiguousarray(frames))
            if isinstance(frames, np.ndarray)
            else frames
        )
        if self.plan.device.type == "cuda":
            # uint8 is 4x smaller than float: transfer first, normalise on the GPU.
            return x.pin_memory().to(self.plan.device, non_blocking=True)
        return x

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``(T, H, W, 3)`` frames -> float ``(T, 3, S, S)`` on the device."""
        return self.transform(self._to_device(frames))

    def _batches(self, n: int, size: int) -> Iterator[slice]:
        for lo in range(0, n, size):
            yield slice(lo, min(lo + size, n))

    @torch.inference_mode()
    def features(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Per-frame backbone features, ``frame_batch`` frames per CNN pass.

        Args:
            frames: uint8 ``(T, H, W, 3)``.

        Returns:
            ``(T, D)`` vectors or ``(T, C, h, w)`` maps on the device (fp32 or autocast dtype).
        """
        out = []
        for sl in self._batches(len(frames), self.frame_batch):
            x = self.preprocess(frames[sl])  # (t, 3, S, S)
            if self.plan.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.plan.autocast():
                f = self.model.forward_features(x[None])  # (1, t, ...): time is the batch here
            out.append(f[0])
        if not out:
            raise ValueError("features() needs at least one frame")
        return torch.cat(out)

    @torch.inference_mode()
    def score_windows(self, window_feats: torch.Tensor) -> torch.Tensor:
        """Class probabilities of windows of precomputed features, ``window_batch`` at a time.

        Args:
            window_feats: ``(W, L, D)`` or ``(W, L, C, h, w)`` features on the device.

        Returns:
            ``(W, K)`` float32 probabilities on the CPU.
        """
        out = []
        for sl in self._batches(len(window_feats), self.window_batch):
            with self.plan.autocast():
                logits = self.model.forward_head(window_feats[sl])  # (w, K)
            out.append(logits.float().softmax(-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, len(self.class_names))

    @torch.inference_mode()
    def predict_clip(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The full model on one clip (no feature sharing): the naive per-window reference.

        Args:
            frames: uint8 ``(L, H, W, 3)`` sampled frames of one window.

        Returns:
            ``(K,)`` float32 probabilities on the CPU.
        """
        x = self.preprocess(frames)[None]  # (1, L, 3, S, S)
        with self.plan.autocast():
            logits = self.model(x)  # (1, K)
        return logits.float().softmax(-1)[0].cpu()

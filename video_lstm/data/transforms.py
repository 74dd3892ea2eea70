"""Clip transforms: pure tensor functions plus two presets (train, eval).

Decoders return uint8 ``(T, H, W, C)``; models take float ``(T, C, H, W)`` per clip (``(B, T, C, H,
W)`` batched). Every op works on the last three dims ``(..., C, H, W)`` with torch ops only, so the
same code runs on a CPU clip in a DataLoader worker and on a GPU batch. A random op draws its
parameters once per call, so all frames of a clip get the same crop, flip and colour change
(per-frame randomness would add motion that is not in the video).

Mean and std are arguments: they come from the backbone's weights (``model.mean``/``model.std``),
never retyped here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

Clip = torch.Tensor | np.ndarray


def to_float_clip(clip: Clip) -> torch.Tensor:
    """uint8 ``(..., H, W, C)`` -> float32 ``(..., C, H, W)`` in ``[0, 1]``."""
    x = torch.as_tensor(clip)
    if x.ndim < 3 or x.shape[-1] != 3:
        raise ValueError(f"expected a clip (..., H, W, 3), got shape {tuple(x.shape)}")
    x = x.movedim(-1, -3)  # (..., C, H, W)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear antialiased resize of ``(..., C, H, W)`` to ``size = (h, w)``."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    lead = x.shape[:-3]
    y = F.interpolate(
        x.reshape(-1, *x.shape[-3:]),
        size=size,
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    return y.reshape(*lead, *y.shape[-3:])


def resize_short_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(..., C, H, W)`` so that its shorter side is ``size``, keeping the aspect ratio."""
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    return _resize(x, (max(size, round(h * scale)), max(size, round(w * scale))))


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Crop the central ``size x size`` region of ``(..., C, H, W)``."""
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot crop {size}x{size} from {h}x{w}; resize first")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def random_resized_crop(
    x: torch.Tensor,
    size: int,
    *,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    rng: np.random.Generator,
) -> torch.Tensor:
    """Inception-style crop (area fraction ``scale``, aspect ``ratio``), resized to ``size``.

    One box for the whole clip. Falls back to the central square crop when no box fits in 10 draws.
    """
    h, w = x.shape[-2:]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return _resize(x[..., top : top + ch, left : left + cw], (size, size))
    side = min(h, w)
    return _resize(center_crop(x, side), (size, size))


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror ``(..., C, H, W)`` left-right. NB: this turns "move left" into "move right"."""
    return x.flip(-1)


def color_jitter(
    x: torch.Tensor,
    *,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    rng: np.random.Generator,
) -> torch.Tensor:
    """Scale brightness, contrast and saturation of a float ``[0, 1]`` clip by factors drawn once.

    Each factor is uniform in ``[1 - amount, 1 + amount]``; the result is clamped to ``[0, 1]``.
    """
    if brightness > 0:
        x = x * rng.uniform(1 - brightness, 1 + brightness)
    gray = None
    if contrast > 0 or saturation > 0:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        gray = (x * weights.view(3, 1, 1)).sum(-3, keepdim=True)  # (..., 1, H, W)
    if contrast > 0:
        factor = rng.uniform(1 - contrast, 1 + contrast)
        x = (x - gray.mean(dim=(-3, -2, -1), keepdim=True)) * factor + gray.mean(
            dim=(-3, -2, -1), keepdim=True
        )
    if saturation > 0:
        factor = rng.uniform(1 - saturation, 1 + saturation)
        x = (x - gray) * factor + gray
    return x.clamp_(0.0, 1.0)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of ``(..., C, H, W)``."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return (x - m) / s


class ClipTransform(Protocol):
    def __call__(self, clip: Clip, rng: np.random.Generator | None = None) -> torch.Tensor: ...


class EvalTransform:
    """Resize the short side, centre-crop ``size``, normalise: uint8 THWC -> float TCHW.

    Args:
        size: Output side in pixels.
        mean: Per-channel mean of the backbone's weights.
        std: Per-channel std of the backbone's weights.
        resize: Short side before the crop (default ``size``: the crop keeps the whole short side).
    """

    def __init__(
        self, *, size: int, mean: Sequence[float], std: Sequence[float], resize: int | None = None
    ) -> None:
        self.size, self.resize = size, resize or size
        self.mean, self.std = list(mean), list(std)

    def __call__(self, clip: Clip, rng: np.random.Generator | None = None) -> torch.Tensor:
        x = resize_short_side(to_float_clip(clip), self.resize)
        return normalize(center_crop(x, self.size), self.mean, self.std)


class TrainTransform:
    """Random resized crop, optional flip, light colour jitter, normalise.

    Args:
        size: Output side in pixels.
        mean: Per-channel mean of the backbone's weights.
        std: Per-channel std of the backbone's weights.
        scale: Area fraction range of the random crop.
        hflip_prob: Probability of a left-right flip. 0 by default: flipping swaps direction
            classes (move left / right, rotate clockwise / anticlockwise).
        jitter: Brightness, contrast and saturation amount.
        seed: Seed of the generator used when a call passes no ``rng``.
    """

    def __init__(
        self,
        *,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        scale: tuple[float, float] = (0.6, 1.0),
        hflip_prob: float = 0.0,
        jitter: float = 0.1,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= hflip_prob <= 1.0:
            raise ValueError(f"hflip_prob must be in [0, 1], got {hflip_prob}")
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        self.size, self.scale, self.hflip_prob, self.jitter = size, tuple(scale), hflip_prob, jitter
        self.mean, self.std = list(mean), list(std)
        self._rng = np.random.default_rng(seed)

    def __call__(self, clip: Clip, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = rng if rng is not None else self._rng
        x = random_resized_crop(to_float_clip(clip), self.size, scale=self.scale, rng=rng)
        if self.hflip_prob > 0 and rng.uniform() < self.hflip_prob:
            x = hflip(x)
        if self.jitter > 0:
            x = color_jitter(
                x, brightness=self.jitter, contrast=self.jitter, saturation=self.jitter, rng=rng
            )
        return normalize(x, self.mean, self.std)


# The presets by their functional names (``train_transform(size=..., mean=..., std=...)``).
train_transform = TrainTransform
eval_transform = EvalTransform
